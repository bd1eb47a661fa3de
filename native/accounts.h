/* accounts.c: a Unix peer's credentials, users and groups through NSS. */
#ifndef SOCKETEER_ACCOUNTS_H
#define SOCKETEER_ACCOUNTS_H

#include <node_api.h>

napi_value js_peer_credentials(napi_env env, napi_callback_info info);
napi_value js_group_list(napi_env env, napi_callback_info info);
napi_value js_lookup_user(napi_env env, napi_callback_info info);
napi_value js_lookup_group(napi_env env, napi_callback_info info);

#endif
