/*
 * Exit notification per child: libuv polls the child's pidfd (readable once the child has
 * exited), then waitid(P_PIDFD, WNOHANG) reaps exactly that child, and the JS callback gets
 * (exitCode, signalName, failure): failure is the step that failed in the child before its exec
 * ({ errno, syscall, message, resource? }, as spawn() returns it), else null. Nothing here ever
 * waits on "any child", so Node's own child_process children keep their exit statuses; each
 * pidfd is closed once its child is reaped, and the child's arena freed if still pending.
 */
#include "exit-watch.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "addon-state.h"
#include "arena.h"
#include "launch.h"
#include "names.h"
#include "orphans.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct exit_watch {
  uv_poll_t poll;
  struct addon_state *state;
  napi_ref callback;
  napi_async_context async_context;
  int pidfd;
  struct arena *arena; /* pending: the child may not have exec'd yet; cleared once freed */
  struct exit_watch *prev, *next;
};

static void unlink_watch(struct exit_watch *w) {
  if (w->prev != NULL) w->prev->next = w->next;
  else w->state->watches = w->next;
  if (w->next != NULL) w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

static void on_watch_closed(uv_handle_t *handle) {
  struct exit_watch *w = handle->data;
  struct addon_state *state = w->state;
  free(w);
  addon_state_handle_closed(state);
}

/* Stops polling, closes the pidfd and frees the watch once libuv lets go of the handle. */
static void close_watch(struct exit_watch *w) {
  napi_env env = w->state->env;
  uv_poll_stop(&w->poll);
  if (w->pidfd >= 0) close(w->pidfd);
  unlink_watch(w);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->async_context);
  addon_state_handle_closing(w->state);
  uv_close((uv_handle_t *)&w->poll, on_watch_closed);
}

static void call_back(struct exit_watch *w, int error, const siginfo_t *info,
                      const struct launch_result *failure) {
  napi_env env = w->state->env;
  napi_handle_scope scope;
  napi_value callback, recv, args[3], result;
  char buf[32];

  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, w->callback, &callback);
  napi_get_global(env, &recv); /* napi_make_callback needs an object receiver */
  napi_get_null(env, &args[0]);
  napi_get_null(env, &args[1]);
  napi_get_null(env, &args[2]);
  if (failure->error != 0) {
    args[2] = make_spawn_failure(env, failure->error, failure->step, failure->resource);
  }
  if (error != 0) {
    /* Someone else reaped it (SIGCHLD set to SIG_IGN, or a stray waitpid(-1)): unknown end. */
  } else if (info->si_code == CLD_EXITED) {
    napi_create_int32(env, info->si_status, &args[0]);
  } else {
    napi_create_string_utf8(env, signal_name(info->si_status, buf, sizeof buf), NAPI_AUTO_LENGTH,
                            &args[1]);
  }
  if (callback != NULL &&
      napi_make_callback(env, w->async_context, recv, callback, 3, args, &result) != napi_ok) {
    bool pending = false;
    napi_value exception;
    napi_is_exception_pending(env, &pending);
    if (pending && napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
      napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* The child is gone: its failure report (if any) is final and its arena free to reuse. */
static void take_arena(struct exit_watch *w, struct launch_result *failure) {
  if (w->arena == NULL) return;
  read_child_report(w->arena, failure);
  arena_release(w->state, w->arena);
}

static void on_pidfd_readable(uv_poll_t *handle, int status, int events) {
  struct exit_watch *w = handle->data;
  struct launch_result failure = {.error = 0};
  siginfo_t info;
  int error = 0;
  (void)status, (void)events;

  memset(&info, 0, sizeof info);
  if (waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &info, WEXITED | WNOHANG) != 0) {
    if (errno == EINTR || errno == EAGAIN) return; /* level-triggered: we will be called again */
    error = errno;
  } else if (info.si_pid == 0) {
    return; /* not exited yet */
  }
  take_arena(w, &failure);
  arena_sweep(w->state);
  call_back(w, error, &info, &failure);
  close_watch(w);
}

/*
 * On failure (a negative libuv error) the pidfd and the arena are still the caller's. A non-NULL
 * arena is the one the child runs on: it becomes pending, freed by arena_sweep or at the reap.
 */
int watch_exit(struct addon_state *state, int pidfd, struct arena *arena, napi_value callback) {
  napi_env env = state->env;
  napi_value resource, name;
  struct exit_watch *w = calloc(1, sizeof *w);
  int rc;

  if (w == NULL) return -ENOMEM;
  if ((rc = uv_poll_init(state->loop, &w->poll, pidfd)) != 0) {
    free(w);
    return rc;
  }
  w->poll.data = w;
  w->state = state;
  w->pidfd = pidfd;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "SocketeerHandler", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &w->async_context);
  napi_create_reference(env, callback, 1, &w->callback);
  w->next = state->watches;
  if (w->next != NULL) w->next->prev = w;
  state->watches = w;
  if ((rc = uv_poll_start(&w->poll, UV_READABLE, on_pidfd_readable)) != 0) {
    w->pidfd = -1; /* stays with the caller, who reaps the child itself */
    close_watch(w);
    return rc;
  }
  if (arena != NULL) {
    w->arena = arena;
    arena_set_pending(state, arena, &w->arena);
  }
  return 0;
}

/*
 * Children still running at teardown are reaped by a detached thread as they exit; their pending
 * arenas go with them (a child that has not exec'd yet may still be running on its arena).
 */
static void hand_over_children(struct addon_state *state) {
  size_t count = 0;
  struct orphans *orphans;
  for (struct exit_watch *w = state->watches; w != NULL; w = w->next) count++;
  orphans = count == 0 ? NULL : malloc(sizeof *orphans + count * sizeof(struct orphan));
  if (orphans != NULL) {
    orphans->count = 0;
    for (struct exit_watch *w = state->watches; w != NULL; w = w->next) {
      uv_poll_stop(&w->poll);
      orphans->list[orphans->count++] = (struct orphan){.pidfd = w->pidfd, .arena = w->arena};
      w->pidfd = -1;
    }
    if (reap_in_background(orphans) != 0) {
      for (size_t i = 0; i < orphans->count; i++) close(orphans->list[i].pidfd);
      free(orphans); /* the arenas stay mapped: their children may still run on them */
    }
  }
  arena_abandon_pending(state);
}

/*
 * Teardown (process exit, or a worker ending): children still running go to a reaper thread
 * (at process exit they are simply orphaned to init), and every watch is closed.
 */
void stop_exit_watches(struct addon_state *state) {
  hand_over_children(state);
  while (state->watches != NULL) close_watch(state->watches);
}
