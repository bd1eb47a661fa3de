/*
 * Accepting connections on a listening socket without a net.Socket per connection: libuv polls
 * the listening fd (readable: connections are waiting), accept4(2) takes them one by one, and
 * JS gets each as onConnection(fd, remoteAddress, remotePort, localAddress, localPort).
 * The addresses are null for a Unix listener; the local end is null unless options.localEnds
 * (a wildcard TCP listener, where it differs per connection). The fds are blocking and
 * close-on-exec, with TCP_NODELAY and SO_KEEPALIVE set when asked; JS owns them from then on.
 * What to do with each connection (admit, queue, refuse, spawn) is decided in TypeScript.
 *
 * accept4 errors: EAGAIN ends a wake-up; EINTR, ECONNABORTED and the network errors accept(2)
 * says to retry on are skipped; any other (EMFILE, ENFILE, ENOBUFS, ENOMEM...) goes to
 * onError(error) and accepting pauses for ACCEPT_PAUSE_MS, leaving the connections in the
 * kernel's backlog: no busy loop, and nothing dropped. No connection is taken unless the fd
 * reserve (fds.c) is whole, so the fds of its handler are there when it is spawned; while
 * the reserve cannot be refilled, that counts as an EMFILE of accept.
 *
 * acceptStart(fd, options, onConnection, onError) duplicates `fd` (the caller closes its own
 * copy when it likes) and returns the duplicate, owned by the watch; acceptStop(thatFd) ends the
 * watch and closes it (call it once: the number may name a later watch afterwards). Environment
 * teardown (addon.c) stops every watch still running: stop_accept_watches.
 */
#include "accept.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "addon-state.h"
#include "address.h"
#include "fds.h"
#include "names.h"

#define ACCEPT_ARGS 5
#define ACCEPT_BATCH 64 /* connections per wake-up; level-triggered polling brings the rest */
#define ACCEPT_PAUSE_MS 100

struct accept_watch {
  uv_poll_t poll;
  uv_timer_t pause;
  struct addon_state *state;
  napi_ref on_connection, on_error, resource;
  napi_async_context async_context;
  int fd; /* -1 once stopped (stop() may run from within on_connection) */
  int is_tcp, no_delay, keep_alive, local_ends;
  int handles_open; /* poll and timer: freed once both close callbacks ran */
  int delivering;   /* in a wake-up's callback scope: close_accept leaves the release to it */
  int release_due;
  struct accept_watch *prev, *next;
};

struct accepted {
  int fd;
  struct sockaddr_storage remote, local;
  int has_local;
};

static void unlink_accept(struct accept_watch *w) {
  if (w->prev != NULL) w->prev->next = w->next;
  else w->state->accepts = w->next;
  if (w->next != NULL) w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

static void on_accept_handle_closed(uv_handle_t *handle) {
  struct accept_watch *w = handle->data;
  struct addon_state *state = w->state;
  if (--w->handles_open > 0) return;
  free(w);
  addon_state_handle_closed(state);
}

/* The refs, the async context and the handles: once no wake-up is using them. */
static void release_accept(struct accept_watch *w) {
  napi_env env = w->state->env;
  napi_delete_reference(env, w->on_connection);
  napi_delete_reference(env, w->on_error);
  napi_delete_reference(env, w->resource);
  napi_async_destroy(env, w->async_context);
  addon_state_handle_closing(w->state);
  uv_close((uv_handle_t *)&w->poll, on_accept_handle_closed);
  uv_close((uv_handle_t *)&w->pause, on_accept_handle_closed);
}

/* Stops accepting and closes the fd at once; the rest after the wake-up running now, if any. */
static void close_accept(struct accept_watch *w) {
  if (w->fd < 0) return; /* stopped already */
  uv_poll_stop(&w->poll);
  uv_timer_stop(&w->pause);
  close(w->fd);
  w->fd = -1;
  unlink_accept(w);
  if (w->delivering) w->release_due = 1;
  else release_accept(w);
}

/* Teardown: every watch still running. */
void stop_accept_watches(struct addon_state *state) {
  while (state->accepts != NULL) close_accept(state->accepts);
}

/* 1: a connection, 0: none waiting, -1: an error to report (errno set). */
static int accept_one(struct accept_watch *w, struct accepted *a) {
  if (fd_reserve_fill(w->state) != 0) return -1; /* no connection without its handler's fds */
  for (;;) {
    socklen_t len = sizeof a->remote;
    int one = 1;
    a->fd = accept4(w->fd, (struct sockaddr *)&a->remote, &len, SOCK_CLOEXEC);
    if (a->fd < 0) {
      switch (errno) {
      case EAGAIN: return 0;
      case EINTR: case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT:
      case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
        continue; /* the connection is gone; accept(2) says to retry */
      default: return -1;
      }
    }
    if (!w->is_tcp) a->remote.ss_family = AF_UNSPEC; /* no addresses for a Unix peer */
    if (w->no_delay) setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (w->keep_alive) setsockopt(a->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    a->has_local = 0;
    if (w->local_ends) {
      len = sizeof a->local;
      a->has_local = getsockname(a->fd, (struct sockaddr *)&a->local, &len) == 0;
    }
    return 1;
  }
}

/* Calls a JS function inside the wake-up's callback scope; an exception is fatal, as any. */
static int call_js(napi_env env, napi_ref ref, size_t argc, const napi_value *args) {
  napi_value fn, recv, result, exception;
  bool pending = false;
  napi_get_reference_value(env, ref, &fn);
  napi_get_undefined(env, &recv);
  if (fn != NULL && napi_call_function(env, recv, fn, argc, args, &result) == napi_ok) return 0;
  napi_is_exception_pending(env, &pending);
  if (pending && napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
    napi_fatal_exception(env, exception);
  }
  return -1;
}

static int hand_over_connection(struct accept_watch *w, const struct accepted *a) {
  napi_env env = w->state->env;
  napi_value args[ACCEPT_ARGS];
  napi_create_int32(env, a->fd, &args[0]);
  put_address(env, &a->remote, &args[1], &args[2]);
  if (a->has_local) put_address(env, &a->local, &args[3], &args[4]);
  else {
    napi_get_null(env, &args[3]);
    napi_get_null(env, &args[4]);
  }
  return call_js(env, w->on_connection, ACCEPT_ARGS, args);
}

static void on_listener_readable(uv_poll_t *handle, int status, int events);

static void on_pause_over(uv_timer_t *timer) {
  struct accept_watch *w = timer->data;
  if (w->fd >= 0) uv_poll_start(&w->poll, UV_READABLE, on_listener_readable);
}

/*
 * One connection at a time, JS deciding (and spawning) before the next accept4: at the edge of
 * the fd limit the handler's own fds are taken before the next connection's. One callback scope
 * per wake-up: microtasks and ticks run once, after the last connection, as Node does.
 */
static void on_listener_readable(uv_poll_t *handle, int status, int events) {
  struct accept_watch *w = handle->data;
  napi_env env = w->state->env;
  napi_handle_scope handles;
  napi_callback_scope scope;
  napi_value resource, error;
  struct accepted a;
  int got = 0, failure = status < 0 ? -status : 0;
  (void)events;
  napi_open_handle_scope(env, &handles);
  napi_get_reference_value(env, w->resource, &resource);
  napi_open_callback_scope(env, resource, w->async_context, &scope);
  w->delivering = 1;
  for (int i = 0; failure == 0 && i < ACCEPT_BATCH && w->fd >= 0; i++) {
    napi_handle_scope each;
    if ((got = accept_one(w, &a)) <= 0) {
      if (got < 0) failure = errno;
      break;
    }
    napi_open_handle_scope(env, &each);
    got = hand_over_connection(w, &a);
    napi_close_handle_scope(env, each);
    if (got != 0) break;
  }
  if (failure != 0 && w->fd >= 0) {
    uv_poll_stop(&w->poll);
    uv_timer_start(&w->pause, on_pause_over, ACCEPT_PAUSE_MS, 0);
    error = make_system_error(env, failure, "accept");
    call_js(env, w->on_error, 1, &error);
  }
  napi_close_callback_scope(env, scope); /* runs ticks and microtasks: still delivering */
  napi_close_handle_scope(env, handles);
  w->delivering = 0;
  if (w->release_due) release_accept(w); /* stopped by JS during the wake-up */
}

static int get_flag(napi_env env, napi_value options, const char *key) {
  napi_value value;
  bool flag = false;
  if (napi_get_named_property(env, options, key, &value) == napi_ok) {
    napi_get_value_bool(env, value, &flag);
  }
  return flag;
}

napi_value js_accept_stop(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 1;
  napi_value arg, result;
  int32_t fd = -1;
  struct accept_watch *w;
  napi_get_cb_info(env, info, &argc, &arg, NULL, (void **)&state);
  if (argc >= 1) napi_get_value_int32(env, arg, &fd);
  for (w = state->accepts; w != NULL && w->fd != fd; w = w->next) continue;
  if (w != NULL) close_accept(w);
  napi_get_boolean(env, w != NULL, &result);
  return result;
}

napi_value js_accept_start(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 4;
  napi_value args[4], result, name, resource;
  int32_t fd;
  struct accept_watch *w;
  int rc;

  napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state);
  if (argc < 4 || napi_get_value_int32(env, args[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "acceptStart(fd, options, onConnection, onError)");
    return NULL;
  }
  if ((w = calloc(1, sizeof *w)) == NULL) return throw_system_error(env, ENOMEM, "acceptStart");
  w->state = state;
  w->is_tcp = get_flag(env, args[1], "tcp");
  w->no_delay = w->is_tcp && get_flag(env, args[1], "noDelay");
  w->keep_alive = w->is_tcp && get_flag(env, args[1], "keepAlive");
  w->local_ends = w->is_tcp && get_flag(env, args[1], "localEnds");
  if ((w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
    free(w);
    return throw_system_error(env, errno, "fcntl");
  }
  if ((rc = uv_poll_init(state->loop, &w->poll, w->fd)) != 0) {
    close(w->fd);
    free(w);
    return throw_system_error(env, -rc, "uv_poll_init");
  }
  uv_timer_init(state->loop, &w->pause); /* a pause keeps the loop alive, as the poll does */
  w->poll.data = w->pause.data = w;
  w->handles_open = 2;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "SocketeerAccept", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &w->async_context);
  napi_create_reference(env, resource, 1, &w->resource);
  napi_create_reference(env, args[2], 1, &w->on_connection);
  napi_create_reference(env, args[3], 1, &w->on_error);
  w->next = state->accepts;
  if (w->next != NULL) w->next->prev = w;
  state->accepts = w;
  if ((rc = uv_poll_start(&w->poll, UV_READABLE, on_listener_readable)) != 0) {
    close_accept(w);
    return throw_system_error(env, -rc, "uv_poll_start");
  }
  napi_create_int32(env, w->fd, &result);
  return result;
}
