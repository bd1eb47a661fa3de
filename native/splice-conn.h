/*
 * One proxied connection (splice-conn.c: connect, copy, close; splice.c: the JS functions).
 * Each direction is a pipe pair: socket -> pipe -> socket with splice(2), never through user
 * memory.
 */
#ifndef SOCKETEER_SPLICE_CONN_H
#define SOCKETEER_SPLICE_CONN_H

#include <node_api.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct addon_state;

struct splice_dir {
  int from, to;   /* sockets (not owned here) */
  int pipe[2];    /* read end, write end; -1 when not made */
  size_t in_pipe; /* bytes read from `from` not yet written to `to` */
  size_t cap;     /* the pipe's capacity */
  uint64_t bytes; /* written to `to` */
  int eof;        /* `from` has no more to read */
  int done;       /* eof, pipe drained and `to` shut down for writing */
  int readable;   /* the last poll found `from` readable */
  int stalled;    /* `from` was readable but the pipe took nothing (its slots are full) */
};

enum splice_phase { SPLICE_CONNECTING, SPLICE_COPYING, SPLICE_CLOSING };

struct splice_conn {
  struct addon_state *state;
  uint32_t id;
  enum splice_phase phase;
  int client, target; /* owned; -1 when none */
  uv_poll_t client_poll, target_poll;
  int client_polled, target_polled; /* uv_poll_init done */
  int client_events, target_events; /* what each poll waits for now */
  uv_timer_t timer;                 /* connect deadline and retries, then the idle timeout */
  int handles_open;
  struct splice_dir up;   /* client -> target */
  struct splice_dir down; /* target -> client */
  int connected, retrying, moved, notify;
  int err; /* errno of the end, 0: a clean end */
  const char *syscall;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  uint64_t deadline, idle_ms, last_activity; /* loop ms */
  unsigned char header[256];
  size_t header_len;
  napi_ref on_end, resource;
  napi_async_context async_context;
  struct splice_conn *prev, *next;
};

/* Starts connecting `c` (addr set); any failure ends it (its callback then comes later). */
void splice_conn_start(struct splice_conn *c);
/* Ends `c` with `err` (0: clean): handles closed, fds closed, then the end callback. */
void splice_conn_finish(struct splice_conn *c, int err, const char *syscall);
/* Called once every handle of `c` has closed and its fds are closed (splice.c). */
void splice_conn_ended(struct splice_conn *c);

#endif
