/* notify.c: an accept: false service's notify socket (NOTIFY_SOCKET): open it, receive on it. */
#ifndef SOCKETEER_NOTIFY_H
#define SOCKETEER_NOTIFY_H

#include <node_api.h>

napi_value js_notify_open(napi_env env, napi_callback_info info);
napi_value js_notify_receive(napi_env env, napi_callback_info info);

#endif
