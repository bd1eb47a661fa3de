/*
 * splice.c, splice-conn.c: a proxied connection copied both ways in the kernel (proxyStart,
 * proxyClose), driven by uv_poll handles on the loop thread; JS hears of it once, at its end.
 */
#ifndef SOCKETEER_SPLICE_H
#define SOCKETEER_SPLICE_H

#include <node_api.h>

struct addon_state;

napi_value js_proxy_start(napi_env env, napi_callback_info info);
napi_value js_proxy_close(napi_env env, napi_callback_info info);
void stop_splice_watches(struct addon_state *state);

#endif
