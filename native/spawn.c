/*
 * spawn(options, onExit): launch one handler and watch its exit. Returns
 * { pid, pidfd, stderrFd } or, for a system failure, { errno, syscall, message, resource? }.
 * onExit(exitCode, signalName) is called once, after the child is reaped.
 */
#include "socketeer.h"

#include <signal.h>
#include <unistd.h>

static void set_int(napi_env env, napi_value obj, const char *key, int value) {
  napi_value v;
  napi_create_int32(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, key, v);
}

static napi_value make_failure(napi_env env, const struct launch_plan *plan,
                               const struct launch_result *r) {
  napi_value result;
  char text[128];
  describe_errno(r->error, text, sizeof text);
  napi_create_object(env, &result);
  set_string(env, result, "errno", errno_name(r->error));
  set_string(env, result, "syscall", r->step);
  set_string(env, result, "message", text);
  if (r->rlimit_index >= 0 && (size_t)r->rlimit_index < plan->nrlimits) {
    set_string(env, result, "resource", plan->rlimits[r->rlimit_index].name);
  }
  return result;
}

static napi_value make_success(napi_env env, const struct launch_result *r) {
  napi_value result;
  napi_create_object(env, &result);
  set_int(env, result, "pid", r->pid);
  set_int(env, result, "pidfd", r->pidfd);
  set_int(env, result, "stderrFd", r->stderr_fd);
  return result;
}

/* The child runs but cannot be watched: kill and reap it, and report the watch failure. */
static void abandon_child(struct launch_result *r, int uv_error) {
  kill(r->pid, SIGKILL);
  reap_child(r->pidfd);
  close(r->pidfd);
  if (r->stderr_fd >= 0) close(r->stderr_fd);
  r->error = -uv_error;
  r->step = "uv_poll_start";
}

napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2], result;
  napi_valuetype type[2] = {napi_undefined, napi_undefined};
  struct addon_state *state;
  struct launch_plan plan;
  struct launch_result r;
  struct pool pool = {.count = 0};
  int rc;

  napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state);
  if (argc >= 2) napi_typeof(env, args[0], &type[0]), napi_typeof(env, args[1], &type[1]);
  if (type[0] != napi_object || type[1] != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawn: expected (options, onExit)");
    return NULL;
  }
  if (read_spawn_options(env, args[0], &pool, &plan) != 0) {
    pool_free(&pool);
    return NULL;
  }
  if (launch_handler(state, &plan, &r) == 0 && (rc = watch_exit(state, r.pidfd, args[1])) != 0) {
    abandon_child(&r, rc);
  }
  result = r.error == 0 ? make_success(env, &r) : make_failure(env, &plan, &r);
  pool_free(&pool);
  return result;
}
