/* fds.c: the daemon's own fds (dup, close, close-on-exec), and the spawn reserve. */
#ifndef SOCKETEER_FDS_H
#define SOCKETEER_FDS_H

#include <node_api.h>

struct addon_state;

int fd_reserve_fill(struct addon_state *state);
int fd_reserve_release(struct addon_state *state);
napi_value js_close_on_exec_from(napi_env env, napi_callback_info info);
napi_value js_dup_fd(napi_env env, napi_callback_info info);
napi_value js_datagram_port(napi_env env, napi_callback_info info);
napi_value js_close_fd(napi_env env, napi_callback_info info);

#endif
