/*
 * Handlers' stderr pipes (stderr: log), read here instead of through a net.Socket per pipe: one
 * epoll set holds every pipe, libuv polls that one fd, and JS hears of a pipe only when its
 * handler wrote to it. A handler that writes nothing costs an epoll_ctl each way and a close,
 * no JS call and no JS object.
 *
 * stderrStart(onChunk): once, the one callback: onChunk(id, chunk, isEnded), `chunk` a Buffer of
 *   the bytes read (up to 64 KiB per call) or null, `isEnded` when the pipe has reached its end
 *   (EOF, or a read error): the watch is then gone and its fd closed.
 * stderrWatch(fd) -> id: the pipe's read end is the watch's from now on (made non-blocking,
 *   closed at its end). On a throw, fd stays the caller's. The id is a small integer (a slot),
 *   reused only once JS is done with it: after stderrRead said false, or after its end was told
 *   following a stderrRead.
 * stderrRead(id) -> boolean: once per watch, at the handler's exit: reads what the pipe holds now (up to 1 MiB: a
 *   live writer cannot hold the caller), onChunk called synchronously before it returns; from
 *   then on the pipe's end is told even if nothing more is written. false: the pipe had already
 *   reached its end (told or not), and the id is free.
 *
 * A pipe's end is told only to a pipe JS has heard of (a chunk, or a stderrRead that found it
 * open): a handler that wrote nothing and exited is closed here without a call, its slot kept
 * until its stderrRead.
 * The env's teardown closes every pipe (addon.c).
 */
#include "stderr-pipes.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#include "addon-state.h"
#include "names.h"

#define CHUNK 65536    /* read from one pipe per wake-up: one JS call at most */
#define READ_ROUNDS 16 /* stderrRead: at most 16 chunks */
#define EVENTS 64

struct stderr_pipe {
  uint32_t generation; /* with the slot, the epoll key: events of an earlier use are skipped */
  int fd;              /* -1 once its end was reached */
  int is_told;         /* JS has had a chunk from it, or asked: its end is told too */
  int is_read;         /* stderrRead was called: the slot is freed at the end */
  int next_free;       /* in use: -2; free: the next free slot, -1 for none */
};

struct stderr_pipes {
  struct addon_state *state;
  int epfd;
  uv_poll_t poll;
  napi_ref on_chunk, resource;
  napi_async_context async_context;
  struct stderr_pipe *slots; /* moved by growth: looked up by index after every JS call */
  int slot_count, first_free;
  size_t open_count; /* pipes whose fd is open */
  uint32_t generation;
  char buf[CHUNK];
};

#define IS_IN_USE(w) ((w)->next_free == -2)

/* The slot of a watch in use, or NULL. */
static struct stderr_pipe *find_pipe(struct stderr_pipes *p, int64_t id) {
  struct stderr_pipe *w = id >= 0 && id < p->slot_count ? &p->slots[id] : NULL;
  return w != NULL && IS_IN_USE(w) ? w : NULL;
}

static void free_slot(struct stderr_pipes *p, int slot) {
  p->slots[slot].next_free = p->first_free;
  p->first_free = slot;
}

/* Closes the pipe; the slot goes too once JS is done with it (stderrRead was called). */
static void end_pipe(struct stderr_pipes *p, int slot) {
  struct stderr_pipe *w = &p->slots[slot];
  epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->fd, NULL); /* a child not yet exec'd may share it */
  close(w->fd);
  w->fd = -1;
  if (w->is_read) free_slot(p, slot);
  if (--p->open_count == 0) uv_unref((uv_handle_t *)&p->poll);
}

/* onChunk(id, chunk | null, isEnded); sync: inside a JS call (stderrRead), an exception left. */
static napi_status tell(struct stderr_pipes *p, int slot, size_t len, int is_ended, int is_sync) {
  napi_env env = p->state->env;
  napi_value fn, resource, args[3], result, exception;
  bool pending = false;
  napi_status status;
  napi_get_reference_value(env, p->on_chunk, &fn);
  napi_get_reference_value(env, p->resource, &resource);
  napi_create_int32(env, slot, &args[0]);
  if (len > 0) napi_create_buffer_copy(env, len, p->buf, NULL, &args[1]);
  else napi_get_null(env, &args[1]);
  napi_get_boolean(env, is_ended, &args[2]);
  if (is_sync) return napi_call_function(env, resource, fn, 3, args, &result);
  status = napi_make_callback(env, p->async_context, resource, fn, 3, args, &result);
  if (status != napi_ok) {
    napi_is_exception_pending(env, &pending);
    if (pending && napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
      napi_fatal_exception(env, exception);
    }
  }
  return status;
}

/*
 * Reads one chunk from an open pipe (to CHUNK bytes, EAGAIN or the end) and tells JS what it
 * has to: 1 if the chunk is full (more may wait), 0 if the pipe is drained, -1 at its end, -2 if
 * the JS call threw (sync only).
 */
static int take_chunk(struct stderr_pipes *p, int slot, int is_sync) {
  struct stderr_pipe *w = &p->slots[slot];
  size_t len = 0;
  int is_ended = 0, is_told;
  while (len < CHUNK) {
    ssize_t n = read(w->fd, p->buf + len, CHUNK - len);
    if (n > 0) len += (size_t)n;
    else if (n < 0 && errno == EINTR) continue;
    else {
      is_ended = n == 0 || errno != EAGAIN;
      break;
    }
  }
  if (len > 0) w->is_told = 1;
  is_told = w->is_told;
  if (is_ended) end_pipe(p, slot);
  if ((len > 0 || (is_ended && is_told)) && tell(p, slot, len, is_ended, is_sync) != napi_ok) {
    return -2;
  }
  return is_ended ? -1 : len == CHUNK;
}

static void on_pipes_readable(uv_poll_t *handle, int status, int events) {
  struct stderr_pipes *p = handle->data;
  struct epoll_event ready[EVENTS];
  napi_handle_scope scope;
  int n;
  (void)status, (void)events;
  do n = epoll_wait(p->epfd, ready, EVENTS, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return;
  napi_open_handle_scope(p->state->env, &scope);
  for (int i = 0; i < n; i++) {
    /* checked again: a JS call may have ended a pipe and its slot gone to a new one */
    int slot = (int)(ready[i].data.u64 & 0xffffffff);
    struct stderr_pipe *w = find_pipe(p, slot);
    if (w != NULL && w->fd >= 0 && w->generation == (uint32_t)(ready[i].data.u64 >> 32)) {
      take_chunk(p, slot, 0);
    }
  }
  napi_close_handle_scope(p->state->env, scope);
}

static void release_js(struct stderr_pipes *p) {
  napi_env env = p->state->env;
  if (p->on_chunk != NULL) napi_delete_reference(env, p->on_chunk);
  if (p->resource != NULL) napi_delete_reference(env, p->resource);
  if (p->async_context != NULL) napi_async_destroy(env, p->async_context);
  p->on_chunk = p->resource = NULL, p->async_context = NULL;
}

static void on_poll_closed(uv_handle_t *handle) {
  struct stderr_pipes *p = handle->data;
  struct addon_state *state = p->state;
  close(p->epfd);
  free(p->slots);
  free(p);
  addon_state_handle_closed(state);
}

void stop_stderr_pipes(struct addon_state *state) {
  struct stderr_pipes *p = state->stderr_pipes;
  if (p == NULL) return;
  state->stderr_pipes = NULL;
  for (int slot = 0; slot < p->slot_count; slot++) {
    if (IS_IN_USE(&p->slots[slot]) && p->slots[slot].fd >= 0) close(p->slots[slot].fd);
  }
  release_js(p);
  uv_poll_stop(&p->poll);
  addon_state_handle_closing(state);
  uv_close((uv_handle_t *)&p->poll, on_poll_closed);
}

/* The epoll set and its poll, started and unreferenced (no pipe yet); errno on failure. */
static struct stderr_pipes *open_pipes(struct addon_state *state) {
  struct stderr_pipes *p = calloc(1, sizeof *p);
  int rc;
  if (p == NULL) return errno = ENOMEM, NULL;
  p->state = state;
  p->first_free = -1;
  if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) return free(p), NULL;
  if ((rc = uv_poll_init(state->loop, &p->poll, p->epfd)) != 0) {
    close(p->epfd), free(p);
    return errno = -rc, NULL;
  }
  p->poll.data = p;
  uv_unref((uv_handle_t *)&p->poll);
  if ((rc = uv_poll_start(&p->poll, UV_READABLE, on_pipes_readable)) != 0) {
    state->stderr_pipes = p; /* closed through the teardown path */
    stop_stderr_pipes(state);
    return errno = -rc, NULL;
  }
  return p;
}

napi_value js_stderr_start(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 1;
  napi_value arg, name, resource;
  napi_valuetype type = napi_undefined;
  struct stderr_pipes *p;
  napi_get_cb_info(env, info, &argc, &arg, NULL, (void **)&state);
  if (argc >= 1) napi_typeof(env, arg, &type);
  if (type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "stderrStart(onChunk)");
    return NULL;
  }
  if ((p = state->stderr_pipes) == NULL) {
    if ((p = open_pipes(state)) == NULL) return throw_system_error(env, errno, "epoll_create1");
    state->stderr_pipes = p;
  }
  release_js(p); /* a second start replaces the callback */
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "SocketeerStderr", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &p->async_context);
  napi_create_reference(env, resource, 1, &p->resource);
  napi_create_reference(env, arg, 1, &p->on_chunk);
  return NULL;
}

/* A free slot, the table grown if need be; -1 when out of memory. */
static int take_slot(struct stderr_pipes *p) {
  int slot = p->first_free, count = p->slot_count == 0 ? 64 : p->slot_count * 2;
  struct stderr_pipe *grown;
  if (slot < 0) {
    if ((grown = realloc(p->slots, (size_t)count * sizeof *grown)) == NULL) return -1;
    p->slots = grown;
    for (int i = count - 1; i >= p->slot_count; i--) free_slot(p, i);
    p->slot_count = count;
    slot = p->first_free;
  }
  p->first_free = p->slots[slot].next_free;
  p->slots[slot] = (struct stderr_pipe){.generation = ++p->generation, .next_free = -2};
  return slot;
}

napi_value js_stderr_watch(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  struct stderr_pipes *p;
  size_t argc = 1;
  napi_value arg, result;
  int32_t fd = -1;
  int on = 1, err, slot;
  struct epoll_event event = {.events = EPOLLIN};
  napi_get_cb_info(env, info, &argc, &arg, NULL, (void **)&state);
  if (argc < 1 || napi_get_value_int32(env, arg, &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "stderrWatch(fd)");
    return NULL;
  }
  if ((p = state->stderr_pipes) == NULL) return throw_system_error(env, EINVAL, "stderrWatch");
  if ((slot = take_slot(p)) < 0) return throw_system_error(env, ENOMEM, "stderrWatch");
  event.data.u64 = (uint64_t)p->slots[slot].generation << 32 | (uint32_t)slot;
  if (ioctl(fd, FIONBIO, &on) != 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &event) != 0) {
    err = errno;
    free_slot(p, slot);
    return throw_system_error(env, err, "epoll_ctl");
  }
  p->slots[slot].fd = fd;
  if (p->open_count++ == 0) uv_ref((uv_handle_t *)&p->poll);
  napi_create_int32(env, slot, &result);
  return result;
}

napi_value js_stderr_read(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  struct stderr_pipes *p;
  struct stderr_pipe *w;
  size_t argc = 1;
  napi_value arg, result;
  int32_t slot = -1;
  int rc = 1;
  napi_get_cb_info(env, info, &argc, &arg, NULL, (void **)&state);
  if (argc < 1 || napi_get_value_int32(env, arg, &slot) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "stderrRead(id)");
    return NULL;
  }
  p = state->stderr_pipes;
  if (p == NULL || (w = find_pipe(p, slot)) == NULL || w->is_read) {
    napi_get_boolean(env, false, &result); /* no watch, or read already */
    return result;
  }
  w->is_read = 1;
  if (w->fd < 0) {
    free_slot(p, slot); /* it ended before: JS is done with it */
    rc = -1;
  } else {
    /* Not told yet: a pipe JS has had nothing from and whose end this read finds (its exit seen
     * before its hang-up) is closed without a call, as when the hang-up comes first. */
    int round = 0; /* while a chunk is full the pipe is open and the slot still this watch's */
    do rc = take_chunk(p, slot, 1);
    while (rc == 1 && ++round < READ_ROUNDS);
    if (rc >= 0) p->slots[slot].is_told = 1; /* still open: its end will be told */
  }
  if (rc == -2) return NULL; /* the callback's exception goes on to the caller */
  napi_get_boolean(env, rc >= 0, &result);
  return result;
}
