/*
 * A proxied connection's life on the loop thread: a non-blocking connect to the target (a Unix
 * socket whose backlog is full answers EAGAIN: tried again every 5 ms until the deadline), the
 * PROXY header written, then per direction splice(2) socket -> pipe -> socket, both sockets
 * non-blocking, each polled by one uv_poll for what its two directions wait for. Read EOF on a
 * side with its pipe drained shuts the other side down for writing (half-close passed on); the
 * other direction goes on until it ends too. An error on either side ends both.
 */
#include "splice-conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "addon-state.h"

#define PIPE_WANT (1 << 20)  /* F_SETPIPE_SZ asked; the kernel may give less */
#define PUMP_ROUNDS 16       /* splices per direction per wake-up: the loop stays fair */
#define CONNECT_RETRY_MS 5

static void on_poll(uv_poll_t *handle, int status, int events);

static void on_handle_closed(uv_handle_t *handle) {
  struct splice_conn *c = handle->data;
  addon_state_handle_closed(c->state);
  if (--c->handles_open > 0) return;
  if (c->client >= 0) close(c->client);
  if (c->target >= 0) close(c->target);
  c->client = c->target = -1;
  splice_conn_ended(c);
}

static void close_handle(struct splice_conn *c, uv_handle_t *handle) {
  addon_state_handle_closing(c->state);
  uv_close(handle, on_handle_closed);
}

static void close_pipe(struct splice_dir *d) {
  if (d->pipe[0] >= 0) close(d->pipe[0]);
  if (d->pipe[1] >= 0) close(d->pipe[1]);
  d->pipe[0] = d->pipe[1] = -1;
}

void splice_conn_finish(struct splice_conn *c, int err, const char *syscall) {
  if (c->phase == SPLICE_CLOSING) return;
  c->phase = SPLICE_CLOSING;
  c->err = err, c->syscall = syscall;
  close_pipe(&c->up), close_pipe(&c->down);
  uv_timer_stop(&c->timer);
  close_handle(c, (uv_handle_t *)&c->timer);
  if (c->client_polled) close_handle(c, (uv_handle_t *)&c->client_poll);
  if (c->target_polled) close_handle(c, (uv_handle_t *)&c->target_poll);
}

static int make_pipe(struct splice_dir *d) {
  int cap;
  if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) != 0) return errno;
  if (fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_WANT) < 0) {
    /* over pipe-max-size or the user's pipe pages: keep what the kernel gave */
  }
  cap = fcntl(d->pipe[1], F_GETPIPE_SZ);
  d->cap = cap > 0 ? (size_t)cap : 65536;
  return 0;
}

/* Moves what it can one way; 0, or the errno that ends the connection. */
static int pump(struct splice_conn *c, struct splice_dir *d) {
  unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  for (int round = 0; round < PUMP_ROUNDS; round++) {
    int progressed = 0;
    if (!d->eof && d->in_pipe < d->cap) {
      ssize_t n = splice(d->from, NULL, d->pipe[1], NULL, d->cap - d->in_pipe, flags);
      if (n > 0) d->in_pipe += (size_t)n, progressed = 1;
      else if (n == 0) d->eof = 1, progressed = 1;
      else if (errno != EAGAIN && errno != EINTR) return errno;
      else if (d->readable && d->in_pipe > 0) d->stalled = 1;
      d->readable = 0;
    }
    if (d->in_pipe > 0) {
      ssize_t n = splice(d->pipe[0], NULL, d->to, NULL, d->in_pipe, flags);
      if (n > 0) d->in_pipe -= (size_t)n, d->bytes += (uint64_t)n, progressed = 1, d->stalled = 0;
      else if (n < 0 && errno != EAGAIN && errno != EINTR) return errno;
    }
    if (!progressed) break;
    c->moved = 1;
  }
  if (d->eof && d->in_pipe == 0 && !d->done) {
    d->done = 1;
    if (shutdown(d->to, SHUT_WR) != 0 && errno != ENOTCONN) return errno;
  }
  return 0;
}

/*
 * What a socket's poll waits for: reading for the direction it feeds while its pipe has room
 * (reading and writing overlap, as in systemd-socket-proxyd), unless the pipe's slots were found
 * full (then only the drain wakes it); writing for the other direction while its pipe holds bytes.
 */
static int wanted(const struct splice_dir *from_here, const struct splice_dir *to_here) {
  int events = 0;
  if (!from_here->eof && from_here->in_pipe < from_here->cap && !from_here->stalled)
    events |= UV_READABLE;
  if (to_here->in_pipe > 0) events |= UV_WRITABLE;
  return events;
}

/* Restarts a poll only when what it waits for changed (each change is an epoll_ctl). */
static int set_poll(uv_poll_t *poll, int *current, int events) {
  if (events == *current) return 0;
  *current = events;
  return events == 0 ? uv_poll_stop(poll) : uv_poll_start(poll, events, on_poll);
}

/* Pumps the directions asked for (those a poll woke for), then sets what each poll waits for. */
static void copy(struct splice_conn *c, int up, int down) {
  int err = 0, rc;
  c->moved = 0;
  if ((up && (err = pump(c, &c->up)) != 0) || (down && (err = pump(c, &c->down)) != 0)) {
    splice_conn_finish(c, err, "splice");
    return;
  }
  if (c->moved) c->last_activity = uv_now(c->state->loop);
  if (c->up.done && c->down.done) {
    splice_conn_finish(c, 0, NULL);
    return;
  }
  if ((rc = set_poll(&c->client_poll, &c->client_events, wanted(&c->up, &c->down))) != 0 ||
      (rc = set_poll(&c->target_poll, &c->target_events, wanted(&c->down, &c->up))) != 0) {
    splice_conn_finish(c, -rc, "uv_poll_start");
  }
}

/* The pending error of a socket (SO_ERROR), 0 when none. */
static int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  return err;
}

/* libuv reports POLLERR as UV_EBADF and stops the poll: the sockets' own error says what it was. */
static void on_poll(uv_poll_t *handle, int status, int events) {
  struct splice_conn *c = handle->data;
  int err;
  int is_client = handle == &c->client_poll;
  if (c->phase != SPLICE_COPYING) return;
  if (status >= 0) {
    /* readable feeds the direction from this socket, writable drains the one into it */
    int feeds = (events & UV_READABLE) != 0, drains = (events & UV_WRITABLE) != 0;
    if (feeds) (is_client ? &c->up : &c->down)->readable = 1;
    copy(c, is_client ? feeds : drains, is_client ? drains : feeds);
    return;
  }
  if ((err = socket_error(c->client)) == 0 && (err = socket_error(c->target)) == 0) err = -status;
  splice_conn_finish(c, err, "poll");
}

static void on_timer(uv_timer_t *handle);

static int write_header(struct splice_conn *c) {
  ssize_t n;
  if (c->header_len == 0) return 0;
  do n = write(c->target, c->header, c->header_len);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  /* a fresh socket's send buffer takes a header of at most 256 bytes whole */
  return (size_t)n == c->header_len ? 0 : EAGAIN;
}

static int init_poll(struct splice_conn *c, uv_poll_t *poll, int fd, int *polled) {
  int rc;
  if (*polled) return 0;
  if ((rc = uv_poll_init(c->state->loop, poll, fd)) != 0) return -rc;
  *polled = 1, c->handles_open++;
  poll->data = c;
  return 0;
}

/* The target is connected: header, client non-blocking, pipes, polls. 0 or an errno. */
static int begin_copy(struct splice_conn *c, const char **syscall) {
  int err, flags;
  *syscall = "write";
  if ((err = write_header(c)) != 0) return err;
  *syscall = "fcntl";
  flags = fcntl(c->client, F_GETFL);
  if (flags < 0 || fcntl(c->client, F_SETFL, flags | O_NONBLOCK) != 0) return errno;
  *syscall = "pipe2";
  if ((err = make_pipe(&c->up)) != 0 || (err = make_pipe(&c->down)) != 0) return err;
  c->up.from = c->client, c->up.to = c->target;
  c->down.from = c->target, c->down.to = c->client;
  *syscall = "uv_poll_init";
  if ((err = init_poll(c, &c->target_poll, c->target, &c->target_polled)) != 0 ||
      (err = init_poll(c, &c->client_poll, c->client, &c->client_polled)) != 0)
    return err;
  return 0;
}

static void on_connected(struct splice_conn *c) {
  const char *syscall;
  int err;
  c->connected = 1;
  uv_timer_stop(&c->timer);
  if ((err = begin_copy(c, &syscall)) != 0) {
    splice_conn_finish(c, err, syscall);
    return;
  }
  c->phase = SPLICE_COPYING;
  c->last_activity = uv_now(c->state->loop);
  if (c->idle_ms > 0) uv_timer_start(&c->timer, on_timer, c->idle_ms, 0);
  copy(c, 1, 1);
}

static void on_connect_poll(uv_poll_t *handle, int status, int events) {
  struct splice_conn *c = handle->data;
  int err;
  (void)events;
  if (c->phase != SPLICE_CONNECTING) return;
  uv_poll_stop(handle);
  if ((err = socket_error(c->target)) == 0 && status < 0) err = -status;
  if (err != 0) splice_conn_finish(c, err, "connect");
  else on_connected(c);
}

/* EAGAIN from a Unix socket's full backlog: a fresh socket is tried after a moment. */
static int wait_and_retry(struct splice_conn *c) {
  uint64_t now = uv_now(c->state->loop);
  close(c->target);
  c->target = -1;
  if (now >= c->deadline) return ETIMEDOUT;
  c->retrying = 1;
  uv_timer_start(&c->timer, on_timer,
                 c->deadline - now < CONNECT_RETRY_MS ? c->deadline - now : CONNECT_RETRY_MS, 0);
  return 0;
}

static int try_connect(struct splice_conn *c) {
  int rc;
  c->retrying = 0;
  c->target = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->target < 0) return errno;
  if (connect(c->target, (struct sockaddr *)&c->addr, c->addr_len) == 0) {
    on_connected(c);
    return 0;
  }
  if (errno == EAGAIN && c->addr.ss_family == AF_UNIX) return wait_and_retry(c);
  if (errno != EINPROGRESS) return errno;
  if ((rc = init_poll(c, &c->target_poll, c->target, &c->target_polled)) != 0) return rc;
  if ((rc = uv_poll_start(&c->target_poll, UV_WRITABLE, on_connect_poll)) != 0) return -rc;
  uv_timer_start(&c->timer, on_timer, c->deadline - uv_now(c->state->loop), 0);
  return 0;
}

static void on_timer(uv_timer_t *handle) {
  struct splice_conn *c = handle->data;
  uint64_t now = uv_now(c->state->loop), idle;
  int err;
  if (c->phase == SPLICE_CONNECTING) {
    if (!c->retrying || now >= c->deadline) err = ETIMEDOUT;
    else err = try_connect(c);
    if (err != 0) splice_conn_finish(c, err, "connect");
    return;
  }
  if (c->phase != SPLICE_COPYING) return;
  idle = now - c->last_activity;
  if (idle >= c->idle_ms) splice_conn_finish(c, ETIMEDOUT, "idle");
  else uv_timer_start(&c->timer, on_timer, c->idle_ms - idle, 0);
}

void splice_conn_start(struct splice_conn *c) {
  int err;
  uv_timer_init(c->state->loop, &c->timer);
  c->timer.data = c;
  c->handles_open = 1;
  c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
  c->phase = SPLICE_CONNECTING;
  c->deadline += uv_now(c->state->loop);
  if ((err = try_connect(c)) != 0) splice_conn_finish(c, err, "connect");
}
