/* unix-bind.c: the safe Unix socket operations, as JS calls them. */
#ifndef SOCKETEER_UNIX_BIND_H
#define SOCKETEER_UNIX_BIND_H

#include <node_api.h>

napi_value js_unix_bind(napi_env env, napi_callback_info info);
napi_value js_unix_bind_abstract(napi_env env, napi_callback_info info);
napi_value js_unix_remove(napi_env env, napi_callback_info info);
napi_value js_unix_retune(napi_env env, napi_callback_info info);
napi_value js_unix_pending(napi_env env, napi_callback_info info);

#endif
