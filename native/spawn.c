/*
 * spawn(options, onExit): launch one handler and watch its exit. Returns
 * { pid, pidfd, stderrFd } or, for a failure before the child could run (or any failure in
 * vfork mode), { errno, syscall, message, resource? }.
 * onExit(exitCode, signalName, failure) is called once, after the child is reaped; failure is
 * null, or the child's failed step in the same shape (the child then exited with 127).
 * debugCounters(): { mode, liveArenas, cachedArenas } for tests and the bench.
 *
 * spawnPrepare(options): spawn()'s options without envp, stdinFd, cgroupFd, passFds and
 * setListenPid, read once (a TypeError as spawn's) into an opaque handle.
 * spawnPrepared(handle, stdinFd, cgroupFd, envBlock, envCount, onExit): spawn() with the
 * handle's options and the connection's own: cgroupFd -1 for none, the environment as one string,
 * envCount entries joined by NUL bytes. Per spawn, only the socket, the cgroup and the
 * environment are read from JS (one string), not every option and string of the plan. Its
 * success is the pid alone (a number) when the child has no stderr pipe, else as spawn's.
 */
#include "spawn.h"

#include <errno.h>
#include <stdlib.h>
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
static void abandon_child(struct launch_result *r, int negative_errno) {
  kill(r->pid, SIGKILL);
  reap_child(r->pidfd);
  close(r->pidfd);
  if (r->stderr_fd >= 0) close(r->stderr_fd);
  r->error = -negative_errno;
  r->step = "epoll_ctl";
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

static napi_value launch_planned(napi_env env, struct addon_state *state, struct arena *arena,
                                 napi_value on_exit,
                                 napi_value (*success)(napi_env, const struct launch_result *));

napi_value js_spawn(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  napi_valuetype type[2] = {napi_undefined, napi_undefined};
  struct addon_state *state;
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
  return launch_planned(env, state, arena, args[1], make_success);
}

/* spawnPrepared's success: the pid alone when there is no stderr pipe (no object to build). */
static napi_value make_prepared_success(napi_env env, const struct launch_result *r) {
  napi_value pid;
  if (r->stderr_fd >= 0) return make_success(env, r);
  napi_create_int32(env, r->pid, &pid);
  return pid;
}

/*
 * Launches on an arena whose plan is read; the arena is released unless the watch took it.
 * `success` builds the result of a launched child.
 */
static napi_value launch_planned(napi_env env, struct addon_state *state, struct arena *arena,
                                 napi_value on_exit,
                                 napi_value (*success)(napi_env, const struct launch_result *)) {
  struct launch_result r;
  napi_value result;
  if (launch_and_watch(state, arena, on_exit, &r)) return success(env, &r);
  result = r.error == 0 ? success(env, &r) : make_spawn_failure(env, r.error, r.step, r.resource);
  arena_release(state, arena);
  return result;
}

static void finalize_template(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  spawn_template_release(data);
}

napi_value js_spawn_prepare(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  napi_valuetype type = napi_undefined;
  struct spawn_template *t;

  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc >= 1) napi_typeof(env, arg, &type);
  if (type != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "spawnPrepare: expected (options)");
    return NULL;
  }
  if ((t = calloc(1, sizeof *t)) == NULL) return throw_system_error(env, ENOMEM, "spawnPrepare");
  t->refs = 1;
  if (read_fixed_options(env, arg, &t->pool, &t->plan) != 0 ||
      napi_create_external(env, t, finalize_template, NULL, &result) != napi_ok) {
    spawn_template_release(t);
    return NULL;
  }
  return result;
}

static int read_fd_arg(napi_env env, napi_value value, int min, int32_t *fd) {
  return napi_get_value_int32(env, value, fd) == napi_ok && *fd >= min ? 0 : -1;
}

napi_value js_spawn_prepared(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value args[6];
  napi_valuetype type = napi_undefined;
  struct addon_state *state;
  struct spawn_template *t = NULL;
  struct arena *arena;
  int32_t stdin_fd = -1, cgroup_fd = -1;
  uint32_t count = 0;

  napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state);
  if (argc == 6) napi_typeof(env, args[5], &type);
  if (type != napi_function || napi_get_value_external(env, args[0], (void **)&t) != napi_ok ||
      t == NULL || read_fd_arg(env, args[1], 0, &stdin_fd) != 0 ||
      read_fd_arg(env, args[2], -1, &cgroup_fd) != 0 ||
      napi_get_value_uint32(env, args[4], &count) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "spawnPrepared: expected (prepared, stdinFd, cgroupFd, envBlock, "
                          "envCount, onExit)");
    return NULL;
  }
  if ((arena = arena_acquire(state)) == NULL) return make_spawn_failure(env, errno, "mmap", NULL);
  arena->plan = t->plan;
  arena->plan.socket_fd = stdin_fd;
  arena->plan.cgroup_fd = cgroup_fd;
  if (read_env_block(env, args[3], count, &arena->pool, &arena->plan) != 0) {
    arena_release(state, arena);
    return NULL;
  }
  spawn_template_hold(t);
  arena->tmpl = t;
  return launch_planned(env, state, arena, args[5], make_prepared_success);
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
