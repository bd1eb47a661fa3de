/* notify.c: an accept: false service's notify socket (NOTIFY_SOCKET): open it, receive on it;
 * and a datagram sent to a Unix socket (the journal's). */
#ifndef SOCKETEER_NOTIFY_H
#define SOCKETEER_NOTIFY_H

#include <node_api.h>

napi_value js_notify_open(napi_env env, napi_callback_info info);
napi_value js_datagram_send(napi_env env, napi_callback_info info);
napi_value js_notify_receive(napi_env env, napi_callback_info info);

#endif
