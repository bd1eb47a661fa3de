/*
 * spawn(options, onExit): launch one handler and watch its exit. Returns
 * { pid, pidfd, stderrFd } or, for a failure before the child could run (or any failure in
 * vfork mode), { errno, syscall, message, resource? }.
 * onExit(exitCode, signalName, failure) is called once, after the child is reaped; failure is
 * null, or the child's failed step in the same shape (the child then exited with 127).
 * debugCounters(): { mode, liveArenas, cachedArenas } for tests and the bench.
 */
#include "spawn.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "addon-state.h"
#include "arena.h"
#include "exit-watch.h"
#include "launch.h"
#include "names.h"
#include "spawn-options.h"

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
  r->resource = NULL;
}

/* Launches on the arena; true when the arena now belongs to the exit watch (pending). */
static int launch_and_watch(struct addon_state *state, struct arena *arena, napi_value on_exit,
                            struct launch_result *r) {
  int rc;
  if (launch_handler(state, arena, r) != 0) return 0;
  /* In vfork mode the child is done with the arena already. */
  if ((rc = watch_exit(state, r->pidfd, state->use_vfork ? NULL : arena, on_exit)) != 0) {
    abandon_child(r, rc);
    return 0;
  }
  return !state->use_vfork;
}

napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2], result;
  napi_valuetype type[2] = {napi_undefined, napi_undefined};
  struct addon_state *state;
  struct launch_result r;
  struct arena *arena;

  napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state);
  if (argc >= 2) napi_typeof(env, args[0], &type[0]), napi_typeof(env, args[1], &type[1]);
  if (type[0] != napi_object || type[1] != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawn: expected (options, onExit)");
    return NULL;
  }
  if ((arena = arena_acquire(state)) == NULL) return make_spawn_failure(env, errno, "mmap", NULL);
  if (read_spawn_options(env, args[0], &arena->pool, &arena->plan) != 0) {
    arena_release(state, arena);
    return NULL;
  }
  if (launch_and_watch(state, arena, args[1], &r)) return make_success(env, &r);
  result = r.error == 0 ? make_success(env, &r) : make_spawn_failure(env, r.error, r.step,
                                                                     r.resource);
  arena_release(state, arena);
  return result;
}

napi_value js_debug_counters(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  napi_value result;
  napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&state);
  napi_create_object(env, &result);
  set_string(env, result, "mode", state->use_vfork ? "vfork" : "clone");
  set_int(env, result, "liveArenas", (int)state->live_arenas);
  set_int(env, result, "cachedArenas", (int)state->cached_arenas);
  return result;
}
