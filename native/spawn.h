/* spawn.c: spawn(), spawnPrepare(), spawnPrepared() and debugCounters(). */
#ifndef SOCKETEER_SPAWN_H
#define SOCKETEER_SPAWN_H

#include <node_api.h>

napi_value js_spawn(napi_env env, napi_callback_info info);
napi_value js_spawn_prepare(napi_env env, napi_callback_info info);
napi_value js_spawn_prepared(napi_env env, napi_callback_info info);
napi_value js_debug_counters(napi_env env, napi_callback_info info);

#endif
