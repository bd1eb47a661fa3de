/* names.c: errno and signal numbers in Node's words, and the errors made of them. */
#ifndef SOCKETEER_NAMES_H
#define SOCKETEER_NAMES_H

#include <node_api.h>
#include <stddef.h>

const char *errno_name(int err);
const char *signal_name(int sig, char *buf, size_t size);
void describe_errno(int err, char *buf, size_t size);
napi_value make_system_error(napi_env env, int err, const char *syscall);
napi_value throw_system_error(napi_env env, int err, const char *syscall);
napi_value make_spawn_failure(napi_env env, int error, const char *step, const char *resource);

#endif
