/*
 * Exit notification per child: libuv polls the child's pidfd (readable once the child has
 * exited), then waitid(P_PIDFD, WNOHANG) reaps exactly that child, and the JS callback gets
 * (exitCode, signalName). Nothing here ever waits on "any child", so Node's own child_process
 * children keep their exit statuses; each pidfd is closed once its child is reaped.
 */
#include "socketeer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct exit_watch {
  uv_poll_t poll;
  struct addon_state *state;
  napi_ref callback;
  napi_async_context async_context;
  int pidfd;
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
  state->closing--;
  if (state->tearing_down) stop_exit_watches(state);
}

/* Stops polling, closes the pidfd and frees the watch once libuv lets go of the handle. */
static void close_watch(struct exit_watch *w) {
  napi_env env = w->state->env;
  uv_poll_stop(&w->poll);
  if (w->pidfd >= 0) close(w->pidfd);
  unlink_watch(w);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->async_context);
  w->state->closing++;
  uv_close((uv_handle_t *)&w->poll, on_watch_closed);
}

static void call_back(struct exit_watch *w, int error, const siginfo_t *info) {
  napi_env env = w->state->env;
  napi_handle_scope scope;
  napi_value callback, recv, args[2], result;
  char buf[32];

  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, w->callback, &callback);
  napi_get_global(env, &recv); /* napi_make_callback needs an object receiver */
  napi_get_null(env, &args[0]);
  napi_get_null(env, &args[1]);
  if (error != 0) {
    /* Someone else reaped it (SIGCHLD set to SIG_IGN, or a stray waitpid(-1)): unknown end. */
  } else if (info->si_code == CLD_EXITED) {
    napi_create_int32(env, info->si_status, &args[0]);
  } else {
    napi_create_string_utf8(env, signal_name(info->si_status, buf, sizeof buf), NAPI_AUTO_LENGTH,
                            &args[1]);
  }
  if (callback != NULL &&
      napi_make_callback(env, w->async_context, recv, callback, 2, args, &result) != napi_ok) {
    bool pending = false;
    napi_value exception;
    napi_is_exception_pending(env, &pending);
    if (pending && napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
      napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_pidfd_readable(uv_poll_t *handle, int status, int events) {
  struct exit_watch *w = handle->data;
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
  call_back(w, error, &info);
  close_watch(w);
}

/* On failure (a negative libuv error) the pidfd is still the caller's. */
int watch_exit(struct addon_state *state, int pidfd, napi_value callback) {
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
  return 0;
}

struct orphans {
  size_t count;
  int pidfds[];
};

static void *reap_orphans(void *arg) {
  struct orphans *orphans = arg;
  for (size_t i = 0; i < orphans->count; i++) {
    int fd = orphans->pidfds[i], flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK); /* libuv made it non-blocking */
    reap_child(fd);
    close(fd);
  }
  free(orphans);
  return NULL;
}

/* Children still running at teardown are reaped by a detached thread as they exit. */
static void hand_over_children(struct addon_state *state) {
  size_t count = 0;
  struct orphans *orphans;
  pthread_t thread;
  pthread_attr_t attr;
  sigset_t all, old;
  for (struct exit_watch *w = state->watches; w != NULL; w = w->next) count++;
  if (count == 0 || (orphans = malloc(sizeof *orphans + count * sizeof(int))) == NULL) return;
  orphans->count = 0;
  for (struct exit_watch *w = state->watches; w != NULL; w = w->next) {
    uv_poll_stop(&w->poll);
    orphans->pidfds[orphans->count++] = w->pidfd;
    w->pidfd = -1;
  }
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the reaper takes none of the daemon's signals */
  if (pthread_create(&thread, &attr, reap_orphans, orphans) != 0) {
    for (size_t i = 0; i < orphans->count; i++) close(orphans->pidfds[i]);
    free(orphans);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
}

/*
 * Environment teardown (process exit or a worker ending): stop watching, and leave children
 * still running to a reaper thread (at process exit they are simply orphaned to init).
 * Once the last handle is closed, tell Node the async cleanup is done and free the state.
 */
void stop_exit_watches(struct addon_state *state) {
  if (!state->tearing_down) hand_over_children(state);
  state->tearing_down = 1;
  while (state->watches != NULL) close_watch(state->watches);
  if (state->closing > 0) return;
  napi_remove_async_cleanup_hook(state->cleanup);
  if (state->stack_base != NULL) munmap(state->stack_base, state->stack_size);
  free(state);
}
