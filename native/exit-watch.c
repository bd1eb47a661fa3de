/*
 * Exit notification per child: every child's pidfd (readable once the child has exited) is in
 * one epoll set of the addon's own, which libuv polls as a single handle; on a wake-up each
 * ready child is reaped with waitid(P_PIDFD, WNOHANG), exactly that child, and its JS callback
 * gets (exitCode, signalName, failure): failure is the step that failed in the child before its
 * exec ({ errno, syscall, message, resource? }, as spawn() returns it), else null. Nothing here
 * ever waits on "any child", so Node's own child_process children keep their exit statuses; each
 * pidfd is closed once its child is reaped, and the child's arena freed if still pending.
 *
 * Why one set rather than a uv_poll per child: a uv_poll costs libuv's fd check (two epoll_ctl
 * and an ioctl), the start and the stop (two more epoll_ctl), an async context and a callback
 * scope per child. Here a child costs one epoll_ctl (EPOLLONESHOT: its entry is spent once it
 * has fired, so a copy of the pidfd that outlives ours, in a child_process fork not yet exec'd,
 * can never report a freed watch), and every exit of a wake-up is delivered in one callback
 * scope (microtasks run once, after the last, as the accept loop does). The poll keeps the event
 * loop alive only while some child is watched (uv_ref/uv_unref: no system call). The set is made
 * when the addon loads, so that its fd is there before anything is counted.
 */
#include "exit-watch.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

#define EXIT_BATCH 64 /* exits per epoll_wait; level-triggered polling brings the rest */

struct exit_hub {
  uv_poll_t poll;
  struct addon_state *state;
  int epfd;
  size_t watched; /* the poll is referenced (keeps the loop alive) while > 0 */
  napi_ref resource;
  napi_async_context async_context;
};

struct exit_watch {
  struct addon_state *state;
  napi_ref callback;
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

/* Closes the pidfd (its epoll entry goes with it) and frees the watch. */
static void close_watch(struct exit_watch *w) {
  struct exit_hub *hub = w->state->exit_hub;
  if (w->pidfd >= 0) close(w->pidfd);
  unlink_watch(w);
  napi_delete_reference(w->state->env, w->callback);
  free(w);
  if (--hub->watched == 0) uv_unref((uv_handle_t *)&hub->poll);
}

/* The callback of one child, inside the wake-up's callback scope; an exception is fatal. */
static void call_back(struct exit_watch *w, int error, const siginfo_t *info,
                      const struct launch_result *failure) {
  napi_env env = w->state->env;
  napi_handle_scope scope;
  napi_value callback, recv, args[3], result, exception;
  bool pending = false;
  char buf[32];

  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, w->callback, &callback);
  napi_get_undefined(env, &recv);
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
      napi_call_function(env, recv, callback, 3, args, &result) != napi_ok) {
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

static int arm(struct exit_hub *hub, struct exit_watch *w, int op) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = w};
  return epoll_ctl(hub->epfd, op, w->pidfd, &ev) == 0 ? 0 : -errno;
}

/* One ready pidfd: reaped and delivered, or armed again when it has not exited after all. */
static void reap_watch(struct exit_hub *hub, struct exit_watch *w) {
  struct launch_result failure = {.error = 0};
  siginfo_t info;
  int error = 0;

  memset(&info, 0, sizeof info);
  if (waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &info, WEXITED | WNOHANG) != 0) {
    if (errno == EINTR || errno == EAGAIN) {
      arm(hub, w, EPOLL_CTL_MOD);
      return;
    }
    error = errno;
  } else if (info.si_pid == 0) {
    arm(hub, w, EPOLL_CTL_MOD); /* not exited yet */
    return;
  }
  take_arena(w, &failure);
  call_back(w, error, &info, &failure);
  close_watch(w);
}

static void on_hub_readable(uv_poll_t *handle, int status, int events) {
  struct exit_hub *hub = handle->data;
  napi_env env = hub->state->env;
  struct epoll_event ready[EXIT_BATCH];
  napi_handle_scope handles;
  napi_callback_scope scope;
  napi_value resource;
  int n;
  (void)status, (void)events;

  while ((n = epoll_wait(hub->epfd, ready, EXIT_BATCH, 0)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return;
  napi_open_handle_scope(env, &handles);
  napi_get_reference_value(env, hub->resource, &resource);
  napi_open_callback_scope(env, resource, hub->async_context, &scope);
  for (int i = 0; i < n; i++) reap_watch(hub, ready[i].data.ptr);
  arena_sweep(hub->state);
  napi_close_callback_scope(env, scope); /* runs ticks and microtasks, once per wake-up */
  napi_close_handle_scope(env, handles);
}

static void on_hub_closed(uv_handle_t *handle) {
  struct exit_hub *hub = handle->data;
  struct addon_state *state = hub->state;
  close(hub->epfd);
  free(hub);
  addon_state_handle_closed(state);
}

/* The epoll set and its poll, made at load (else at the first spawn); a negative errno. */
int open_exit_hub(struct addon_state *state) {
  napi_env env = state->env;
  napi_value resource, name;
  struct exit_hub *hub = calloc(1, sizeof *hub);
  int rc;
  if (hub == NULL) return -ENOMEM;
  if ((hub->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
    rc = -errno;
    free(hub);
    return rc;
  }
  if ((rc = uv_poll_init(state->loop, &hub->poll, hub->epfd)) != 0) {
    close(hub->epfd);
    free(hub);
    return rc;
  }
  hub->poll.data = hub;
  hub->state = state;
  if ((rc = uv_poll_start(&hub->poll, UV_READABLE, on_hub_readable)) != 0) {
    addon_state_handle_closing(state); /* the loop knows the handle now: closed, not freed */
    uv_close((uv_handle_t *)&hub->poll, on_hub_closed);
    return rc;
  }
  uv_unref((uv_handle_t *)&hub->poll);
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "SocketeerHandler", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &hub->async_context);
  napi_create_reference(env, resource, 1, &hub->resource);
  state->exit_hub = hub;
  return 0;
}

/*
 * On failure (a negative errno) the pidfd and the arena are still the caller's. A non-NULL
 * arena is the one the child runs on: it becomes pending, freed by arena_sweep or at the reap.
 */
int watch_exit(struct addon_state *state, int pidfd, struct arena *arena, napi_value callback) {
  struct exit_watch *w;
  struct exit_hub *hub;
  int rc;

  if (state->exit_hub == NULL && (rc = open_exit_hub(state)) != 0) return rc;
  hub = state->exit_hub;
  if ((w = malloc(sizeof *w)) == NULL) return -ENOMEM;
  *w = (struct exit_watch){.state = state, .pidfd = pidfd};
  if ((rc = arm(hub, w, EPOLL_CTL_ADD)) != 0) {
    free(w);
    return rc;
  }
  napi_create_reference(state->env, callback, 1, &w->callback);
  w->next = state->watches;
  if (w->next != NULL) w->next->prev = w;
  state->watches = w;
  if (hub->watched++ == 0) uv_ref((uv_handle_t *)&hub->poll);
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
 * (at process exit they are simply orphaned to init), every watch is freed and the poll closed.
 */
void stop_exit_watches(struct addon_state *state) {
  struct exit_hub *hub = state->exit_hub;
  if (hub == NULL) return;
  hand_over_children(state);
  while (state->watches != NULL) close_watch(state->watches);
  state->exit_hub = NULL;
  uv_poll_stop(&hub->poll);
  napi_delete_reference(state->env, hub->resource);
  napi_async_destroy(state->env, hub->async_context);
  addon_state_handle_closing(state);
  uv_close((uv_handle_t *)&hub->poll, on_hub_closed);
}
