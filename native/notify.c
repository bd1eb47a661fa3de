/*
 * The notify socket of an `accept: false` service (systemd's NOTIFY_SOCKET protocol).
 *
 * notifyOpen(name) -> fd: an AF_UNIX SOCK_DGRAM socket, close-on-exec and non-blocking, with
 * SO_PASSCRED on (every message then carries its sender's pid, uid and gid, filled in by the
 * kernel: a sender cannot lie about them), bound to the abstract name `name` (1 to 107 bytes,
 * without the leading NUL, no padding). Abstract: no path in the file system is created, owned
 * or raced, whichever uid the service runs as. Throws a system error (EADDRINUSE...).
 *
 * notifyReceive(fd) -> {data, pid, uid, gid, fds, truncated} | null: one message, recvmsg with
 * MSG_DONTWAIT and MSG_CMSG_CLOEXEC into a 64 KiB buffer; null when none is waiting (EAGAIN).
 * `data` is a Buffer, `fds` the fds it carried (SCM_RIGHTS, now the caller's, close-on-exec),
 * pid/uid/gid its sender's (SCM_CREDENTIALS; pid 0 if none came). A message cut short (MSG_TRUNC:
 * over 64 KiB; MSG_CTRUNC: more fds than fit) is dropped: the fds that did come are closed here,
 * and it is returned with `truncated: true`, empty `data` and no fds. Throws a system error for
 * any other failure.
 *
 * datagramSend(path, data) -> bytes: one datagram to the AF_UNIX SOCK_DGRAM socket at `path`
 * (`@name`: the abstract name), from a fresh unbound socket, MSG_DONTWAIT|MSG_NOSIGNAL: what Node
 * cannot do, for the journal's native protocol (/run/systemd/journal/socket). Throws a system
 * error (ENOENT, ECONNREFUSED, EAGAIN when the receiver is full, EMSGSIZE...).
 */
#include "notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "names.h"

#define NOTIFY_BUFFER (64 * 1024)
#define NOTIFY_MAX_FDS 253 /* SCM_MAX_FD */

napi_value js_notify_open(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value arg, result;
  char name[sizeof((struct sockaddr_un *)0)->sun_path + 1];
  int one = 1, fd;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_string_utf8(env, arg, name, sizeof name, &len) != napi_ok ||
      len == 0 || len > sizeof((struct sockaddr_un *)0)->sun_path - 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "notifyOpen(name): 1 to 107 bytes");
    return NULL;
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path + 1, name, len);
  socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
  if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
    return throw_system_error(env, errno, "socket");
  }
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
    int error = errno;
    close(fd);
    return throw_system_error(env, error, "setsockopt");
  }
  if (bind(fd, (struct sockaddr *)&addr, addrlen) != 0) {
    int error = errno;
    close(fd);
    return throw_system_error(env, error, "bind");
  }
  napi_create_int32(env, fd, &result);
  return result;
}

/* The fds and the credentials of a received message's control data. */
struct notify_control {
  int fds[NOTIFY_MAX_FDS];
  int count;
  struct ucred cred;
};

static void read_control(struct msghdr *msg, struct notify_control *out) {
  out->count = 0;
  out->cred.pid = 0, out->cred.uid = (uid_t)-1, out->cred.gid = (gid_t)-1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
      memcpy(&out->cred, CMSG_DATA(c), sizeof(struct ucred));
    } else if (c->cmsg_type == SCM_RIGHTS) {
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n && out->count < NOTIFY_MAX_FDS; i++) {
        memcpy(&out->fds[out->count++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      }
    }
  }
}

static void set_int(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static napi_value make_message(napi_env env, const char *data, size_t len,
                               const struct notify_control *control, bool truncated) {
  napi_value result, buffer, fds, v;
  napi_create_object(env, &result);
  napi_create_buffer_copy(env, len, data, NULL, &buffer);
  napi_set_named_property(env, result, "data", buffer);
  set_int(env, result, "pid", control->cred.pid);
  set_int(env, result, "uid", control->cred.uid == (uid_t)-1 ? -1.0 : (double)control->cred.uid);
  set_int(env, result, "gid", control->cred.gid == (gid_t)-1 ? -1.0 : (double)control->cred.gid);
  napi_create_array_with_length(env, truncated ? 0 : (size_t)control->count, &fds);
  for (int i = 0; !truncated && i < control->count; i++) {
    napi_create_int32(env, control->fds[i], &v);
    napi_set_element(env, fds, (uint32_t)i, v);
  }
  napi_set_named_property(env, result, "fds", fds);
  napi_get_boolean(env, truncated, &v);
  napi_set_named_property(env, result, "truncated", v);
  return result;
}

napi_value js_notify_receive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t fd = -1;
  char *data;
  union {
    char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * NOTIFY_MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct notify_control got;
  struct iovec iov = {.iov_len = NOTIFY_BUFFER};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  ssize_t n;
  int error;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, arg, &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "notifyReceive(fd)");
    return NULL;
  }
  /* per call, not static: an addon may be loaded by worker threads too */
  if ((data = malloc(NOTIFY_BUFFER)) == NULL) return throw_system_error(env, ENOMEM, "malloc");
  iov.iov_base = data;
  msg.msg_control = control.buf, msg.msg_controllen = sizeof control.buf;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  error = errno;
  if (n < 0) {
    free(data);
    if (error != EAGAIN && error != EWOULDBLOCK) return throw_system_error(env, error, "recvmsg");
    napi_get_null(env, &result);
    return result;
  }
  read_control(&msg, &got);
  bool truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  if (truncated) {
    for (int i = 0; i < got.count; i++) close(got.fds[i]);
  }
  result = make_message(env, data, truncated ? 0 : (size_t)n, &got, truncated);
  free(data);
  return result;
}

napi_value js_datagram_send(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0, size = 0;
  napi_value argv[2], result;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  bool is_buffer = false;
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], addr.sun_path, sizeof addr.sun_path, &len) !=
          napi_ok ||
      len == 0 || len >= sizeof addr.sun_path - 1 ||
      napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "datagramSend(path, buffer)");
    return NULL;
  }
  socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0'; /* abstract: no trailing NUL */
  else addrlen += 1;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_system_error(env, errno, "socket");
  ssize_t sent = sendto(fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&addr,
                        addrlen);
  int err = errno;
  close(fd);
  if (sent < 0) return throw_system_error(env, err, "sendto");
  napi_create_int64(env, (int64_t)sent, &result);
  return result;
}
