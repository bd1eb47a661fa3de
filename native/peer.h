/* peer.c: queued connections whose peer left, and passing connections on. */
#ifndef SOCKETEER_PEER_H
#define SOCKETEER_PEER_H

#include <node_api.h>

napi_value js_peer_gone(napi_env env, napi_callback_info info);
napi_value js_send_fds(napi_env env, napi_callback_info info);
napi_value js_receive_fds(napi_env env, napi_callback_info info);

#endif
