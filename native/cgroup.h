/* cgroup.c: the fallback tracking of a handler's descendants (a child subreaper). */
#ifndef SOCKETEER_CGROUP_H
#define SOCKETEER_CGROUP_H

#include <node_api.h>

napi_value js_set_child_subreaper(napi_env env, napi_callback_info info);
napi_value js_reap_pid(napi_env env, napi_callback_info info);

#endif
