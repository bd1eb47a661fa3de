/* readable.c: one-shot watches for a readable fd (accept: false's on-demand start). */
#ifndef SOCKETEER_READABLE_H
#define SOCKETEER_READABLE_H

#include <node_api.h>

struct addon_state;

napi_value js_watch_readable(napi_env env, napi_callback_info info);
napi_value js_unwatch_readable(napi_env env, napi_callback_info info);
void stop_readable_watches(struct addon_state *state);

#endif
