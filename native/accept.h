/* accept.c: accepting connections on a listening socket, each handed to JS. */
#ifndef SOCKETEER_ACCEPT_H
#define SOCKETEER_ACCEPT_H

#include <node_api.h>

struct addon_state;

napi_value js_accept_start(napi_env env, napi_callback_info info);
napi_value js_accept_stop(napi_env env, napi_callback_info info);
void stop_accept_watches(struct addon_state *state);

#endif
