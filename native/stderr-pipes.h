/* stderr-pipes.c: handlers' stderr pipes read in one epoll set; JS hears only of what was written. */
#ifndef SOCKETEER_STDERR_PIPES_H
#define SOCKETEER_STDERR_PIPES_H

#include <node_api.h>

struct addon_state;

napi_value js_stderr_start(napi_env env, napi_callback_info info);
napi_value js_stderr_watch(napi_env env, napi_callback_info info);
napi_value js_stderr_read(napi_env env, napi_callback_info info);
void stop_stderr_pipes(struct addon_state *state);

#endif
