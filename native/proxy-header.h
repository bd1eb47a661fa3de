/* proxy-header.c: a PROXY protocol header peeked at, then consumed to its last byte. */
#ifndef SOCKETEER_PROXY_HEADER_H
#define SOCKETEER_PROXY_HEADER_H

#include <node_api.h>

napi_value js_proxy_peek(napi_env env, napi_callback_info info);
napi_value js_proxy_consume(napi_env env, napi_callback_info info);

#endif
