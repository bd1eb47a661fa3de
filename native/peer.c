/*
 * Accepted connections that wait in a queue: whether their peer has gone, and passing them to
 * another process.
 *
 * peerGone(fd): poll(POLLIN | POLLRDHUP, timeout 0) on an accepted, unread socket.
 *   POLLHUP or POLLERR (a reset; a Unix peer that closed)       -> true
 *   POLLRDHUP and recv(MSG_PEEK | MSG_DONTWAIT) returns 0        -> true (EOF, nothing sent)
 *   anything else, data waiting included                         -> false
 * TCP cannot tell a close from shutdown(SHUT_WR): a peer that half-closed after sending data
 * is kept (it waits for an answer); one that half-closed having sent nothing is taken as gone.
 * Nothing is read: MSG_PEEK leaves every byte for the handler.
 *
 * sendFds(socket, fds, timeoutMs): sends `fds` in order over a connected Unix stream socket
 * (SCM_RIGHTS), up to SCM_MAX_FD (253) per message, each message one byte 'q'. The sender keeps
 * its own copies. A non-blocking socket is waited for (poll POLLOUT) up to timeoutMs in all.
 * receiveFds(socket, count, timeoutMs): receives `count` fds sent so, in order, close-on-exec;
 * on a failure the fds received so far are closed and a system error is thrown (ETIMEDOUT once
 * timeoutMs has passed, EPROTO for a message without fds, ECONNRESET at EOF).
 */
#include "peer.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "names.h"

#define FDS_PER_MESSAGE 253

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until `deadline` (CLOCK_MONOTONIC ms): 0, or -1 with errno. */
static int wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    struct pollfd p = {.fd = fd, .events = events};
    if (left <= 0) return errno = ETIMEDOUT, -1;
    int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (n > 0) return 0;
    if (n < 0 && errno != EINTR) return -1;
  }
}

napi_value js_peer_gone(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t fd;
  struct pollfd p;
  char byte;
  int gone = 0;

  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, arg, &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "peerGone(fd)");
    return NULL;
  }
  p.fd = fd;
  p.events = POLLIN | POLLRDHUP;
  p.revents = 0;
  if (poll(&p, 1, 0) < 0) return throw_system_error(env, errno, "poll");
  if (p.revents & POLLNVAL) return throw_system_error(env, EBADF, "poll");
  if (p.revents & (POLLHUP | POLLERR)) {
    gone = 1;
  } else if (p.revents & POLLRDHUP) {
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  napi_get_boolean(env, gone, &result);
  return result;
}

/* Arguments (socket, number, timeoutMs): the socket fd, a count or an array, the deadline. */
static int get_socket_and_deadline(napi_env env, napi_value *args, int32_t *sock,
                                   int64_t *deadline) {
  double timeout;
  if (napi_get_value_int32(env, args[0], sock) != napi_ok || *sock < 0 ||
      napi_get_value_double(env, args[2], &timeout) != napi_ok || !(timeout >= 0)) {
    return -1;
  }
  *deadline = now_ms() + (timeout > 86400000.0 ? 86400000 : (int64_t)timeout);
  return 0;
}

/* Sends one message: the byte 'q' with `count` fds. 0, or -1 with errno. */
static int send_batch(int sock, const int *fds, size_t count, int64_t deadline) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MESSAGE)];
    struct cmsghdr align;
  } control;
  char byte = 'q';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {0};
  struct cmsghdr *cmsg;

  memset(&control, 0, sizeof control);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
  cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
  memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == 1) return 0;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_for(sock, POLLOUT, deadline) != 0) return -1;
      continue;
    }
    return -1;
  }
}

napi_value js_send_fds(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  int32_t sock;
  int64_t deadline;
  uint32_t length = 0;
  bool is_array = false;
  int fds[FDS_PER_MESSAGE];

  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 3 || napi_is_array(env, args[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, args[1], &length) != napi_ok ||
      get_socket_and_deadline(env, args, &sock, &deadline) != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sendFds(socket, fds, timeoutMs)");
    return NULL;
  }
  for (uint32_t done = 0; done < length;) {
    size_t count = 0;
    for (; count < FDS_PER_MESSAGE && done + count < length; count++) {
      napi_value item;
      int32_t fd;
      if (napi_get_element(env, args[1], done + (uint32_t)count, &item) != napi_ok ||
          napi_get_value_int32(env, item, &fd) != napi_ok || fd < 0) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sendFds: fds must be fds");
        return NULL;
      }
      fds[count] = fd;
    }
    if (send_batch(sock, fds, count, deadline) != 0) {
      return throw_system_error(env, errno, "sendmsg");
    }
    done += (uint32_t)count;
  }
  return NULL;
}

/* Receives one message into fds[*have...]; 0, or -1 with errno. */
static int receive_batch(int sock, int *fds, uint32_t *have, uint32_t count, int64_t deadline) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MESSAGE)];
    struct cmsghdr align;
  } control;
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {0};
  struct cmsghdr *cmsg;
  ssize_t n;
  int got = 0;

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  for (;;) {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (wait_for(sock, POLLIN, deadline) != 0) return -1;
  }
  if (n == 0) return errno = ECONNRESET, -1;
  for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t in = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int passed[FDS_PER_MESSAGE];
    memcpy(passed, CMSG_DATA(cmsg), sizeof(int) * (in > FDS_PER_MESSAGE ? FDS_PER_MESSAGE : in));
    for (size_t i = 0; i < in && i < FDS_PER_MESSAGE; i++) {
      if (*have < count) fds[(*have)++] = passed[i];
      else close(passed[i]); /* more than announced: not ours to keep */
      got = 1;
    }
  }
  if (byte != 'q' || !got || (msg.msg_flags & MSG_CTRUNC)) return errno = EPROTO, -1;
  return 0;
}

napi_value js_receive_fds(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3], result, item;
  int32_t sock;
  int64_t deadline;
  uint32_t count, have = 0;
  int *fds;

  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 3 || napi_get_value_uint32(env, args[1], &count) != napi_ok || count > 1 << 22 ||
      get_socket_and_deadline(env, args, &sock, &deadline) != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "receiveFds(socket, count, timeoutMs)");
    return NULL;
  }
  fds = malloc(sizeof(int) * (count > 0 ? count : 1));
  if (fds == NULL) return throw_system_error(env, ENOMEM, "malloc");
  while (have < count) {
    if (receive_batch(sock, fds, &have, count, deadline) != 0) {
      int err = errno;
      for (uint32_t i = 0; i < have; i++) close(fds[i]);
      free(fds);
      return throw_system_error(env, err, "recvmsg");
    }
  }
  napi_create_array_with_length(env, count, &result);
  for (uint32_t i = 0; i < count; i++) {
    napi_create_int32(env, fds[i], &item);
    napi_set_element(env, result, i, item);
  }
  free(fds);
  return result;
}
