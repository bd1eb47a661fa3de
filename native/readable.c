/*
 * watchReadable(fd, onReadable): a one-shot wait for `fd` to become readable, for a service that
 * accepts nothing itself (accept: false) and starts its process on the first connection or
 * datagram. libuv polls the watch's own duplicate of `fd` (so the fd may also be in a handle of
 * Node's, e.g. a net.Server's), and at the first wake-up the watch ends, closes that duplicate
 * and calls onReadable() once. Nothing is read or accepted: the connection stays in the backlog,
 * the datagram in the queue, for the process. A poll error (POLLERR) counts as readable: the
 * process that is started finds it.
 *
 * unwatchReadable(fd) ends the watch on `fd` (the caller's number) without a call; a no-op when
 * there is none. Call it before closing `fd`: the number could name another socket afterwards.
 * A second watch on the same fd is EEXIST. The env's teardown ends every watch (addon.c).
 */
#include "readable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "addon-state.h"
#include "names.h"

struct readable_watch {
  uv_poll_t poll;
  struct addon_state *state;
  napi_ref on_readable, resource;
  napi_async_context async_context;
  int fd;     /* the caller's number: the key */
  int own_fd; /* the duplicate polled; closed when the watch ends */
  struct readable_watch *prev, *next;
};

static void on_readable_closed(uv_handle_t *handle) {
  struct readable_watch *w = handle->data;
  struct addon_state *state = w->state;
  close(w->own_fd);
  free(w);
  addon_state_handle_closed(state);
}

/* Unlinks the watch and starts closing it; its JS references are left to the caller. */
static void end_watch(struct readable_watch *w) {
  if (w->prev != NULL) w->prev->next = w->next;
  else w->state->readables = w->next;
  if (w->next != NULL) w->next->prev = w->prev;
  uv_poll_stop(&w->poll);
  addon_state_handle_closing(w->state);
  uv_close((uv_handle_t *)&w->poll, on_readable_closed);
}

static void release_refs(napi_env env, napi_ref on_readable, napi_ref resource,
                         napi_async_context context) {
  napi_delete_reference(env, on_readable);
  napi_delete_reference(env, resource);
  napi_async_destroy(env, context);
}

static void stop_watch(struct readable_watch *w) {
  release_refs(w->state->env, w->on_readable, w->resource, w->async_context);
  end_watch(w);
}

void stop_readable_watches(struct addon_state *state) {
  while (state->readables != NULL) stop_watch(state->readables);
}

/* The watch ends before the call, so onReadable may watch the same fd again. */
static void on_fd_readable(uv_poll_t *handle, int status, int events) {
  struct readable_watch *w = handle->data;
  napi_env env = w->state->env;
  napi_ref on_readable = w->on_readable, resource_ref = w->resource;
  napi_async_context context = w->async_context;
  napi_handle_scope scope;
  napi_value fn, resource, result, exception;
  bool pending = false;
  (void)status, (void)events;
  end_watch(w);
  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, on_readable, &fn);
  napi_get_reference_value(env, resource_ref, &resource);
  if (napi_make_callback(env, context, resource, fn, 0, NULL, &result) != napi_ok) {
    napi_is_exception_pending(env, &pending);
    if (pending && napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
      napi_fatal_exception(env, exception);
    }
  }
  release_refs(env, on_readable, resource_ref, context);
  napi_close_handle_scope(env, scope);
}

static struct readable_watch *find_watch(struct addon_state *state, int fd) {
  struct readable_watch *w = state->readables;
  while (w != NULL && w->fd != fd) w = w->next;
  return w;
}

static struct readable_watch *fail_watch(napi_env env, struct readable_watch *w, int err,
                                         const char *syscall) {
  if (w != NULL && w->own_fd >= 0) close(w->own_fd);
  free(w);
  throw_system_error(env, err, syscall);
  return NULL;
}

/* The watch on a duplicate of fd, not yet started; NULL with a JS error thrown. */
static struct readable_watch *new_watch(napi_env env, struct addon_state *state, int fd) {
  struct readable_watch *w;
  int rc;
  if (find_watch(state, fd) != NULL) return fail_watch(env, NULL, EEXIST, "watchReadable");
  if ((w = calloc(1, sizeof *w)) == NULL) return fail_watch(env, NULL, ENOMEM, "watchReadable");
  w->state = state, w->fd = fd;
  if ((w->own_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) return fail_watch(env, w, errno, "fcntl");
  if ((rc = uv_poll_init(state->loop, &w->poll, w->own_fd)) != 0) {
    return fail_watch(env, w, -rc, "uv_poll_init");
  }
  w->poll.data = w;
  return w;
}

napi_value js_watch_readable(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 2;
  napi_value args[2], name, resource;
  napi_valuetype type = napi_undefined;
  int32_t fd = -1;
  struct readable_watch *w;
  int rc;
  napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state);
  if (argc >= 2) napi_typeof(env, args[1], &type);
  if (argc < 2 || napi_get_value_int32(env, args[0], &fd) != napi_ok || fd < 0 ||
      type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "watchReadable(fd, onReadable)");
    return NULL;
  }
  if ((w = new_watch(env, state, fd)) == NULL) return NULL;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "SocketeerReadable", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &w->async_context);
  napi_create_reference(env, resource, 1, &w->resource);
  napi_create_reference(env, args[1], 1, &w->on_readable);
  w->next = state->readables;
  if (w->next != NULL) w->next->prev = w;
  state->readables = w;
  if ((rc = uv_poll_start(&w->poll, UV_READABLE, on_fd_readable)) != 0) {
    stop_watch(w);
    return throw_system_error(env, -rc, "uv_poll_start");
  }
  return NULL;
}

napi_value js_unwatch_readable(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 1;
  napi_value arg;
  int32_t fd = -1;
  struct readable_watch *w;
  napi_get_cb_info(env, info, &argc, &arg, NULL, (void **)&state);
  if (argc < 1 || napi_get_value_int32(env, arg, &fd) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "unwatchReadable(fd)");
    return NULL;
  }
  if ((w = find_watch(state, fd)) != NULL) stop_watch(w);
  return NULL;
}
