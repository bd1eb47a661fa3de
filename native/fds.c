/*
 * The daemon's own file descriptors.
 *
 * closeOnExecFrom(fd): marks every fd from `fd` up close-on-exec, once at start-up, so that fds
 * the daemon inherited (from a shell, a supervisor) reach no handler whichever spawner starts
 * it: Node's own fds are close-on-exec already, and the listening sockets the daemon is given
 * (LISTEN_FDS) are passed on explicitly when they are passed on at all (a hand-over).
 *
 * datagramPort(fd): the port a UDP socket is bound to (getsockname), or -1 when the fd is not a
 * bound IPv4/IPv6 datagram socket: what a take-over checks before holding an inherited `udp:`
 * socket (node:dgram cannot adopt an fd).
 *
 * dupFd(fd): F_DUPFD_CLOEXEC (>= 3), the daemon's own copy of a listening socket that outlives
 * a net.Server; closeFd(fd): close(2), EINTR counting as closed (Linux closes it anyway). Both
 * throw a system error (code, errno, syscall).
 *
 * A reserve of file descriptors for spawning, held while the addon accepts connections: at the
 * edge of RLIMIT_NOFILE, accept4 fails (EMFILE: the connection stays in the backlog) before a
 * spawn can, so a connection once accepted is not lost for want of its handler's fds.
 *
 * A launch that fails for want of fds (pipe2 or clone's pidfd: EMFILE, ENFILE) releases the
 * reserve and tries once more; the accept loop takes no connection until the reserve is whole
 * again. FD_RESERVE covers one launch: the stderr pipe (2) and the pidfd (1).
 */
#include "fds.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addon-state.h"
#include "close-range.h"
#include "names.h"

napi_value js_close_on_exec_from(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  int32_t first = -1;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, arg, &first) != napi_ok || first < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "closeOnExecFrom(fd)");
    return NULL;
  }
  if (syscall(SYS_close_range, (unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    /* Linux < 5.11: one by one below RLIMIT_NOFILE (capped) */
    struct rlimit lim;
    long limit = 1 << 20;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < (rlim_t)limit) {
      limit = (long)lim.rlim_cur;
    }
    for (long fd = first; fd < limit; fd++) fcntl((int)fd, F_SETFD, FD_CLOEXEC);
  }
  return NULL;
}

static int fd_argument(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value arg;
  int32_t fd = -1;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, arg, &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return -1;
  }
  return fd;
}

napi_value js_dup_fd(napi_env env, napi_callback_info info) {
  int fd = fd_argument(env, info, "dupFd(fd)"), copy;
  napi_value result;
  if (fd < 0) return NULL;
  if ((copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) return throw_system_error(env, errno, "fcntl");
  napi_create_int32(env, copy, &result);
  return result;
}

napi_value js_close_fd(napi_env env, napi_callback_info info) {
  int fd = fd_argument(env, info, "closeFd(fd)");
  if (fd >= 0 && close(fd) != 0 && errno != EINTR) return throw_system_error(env, errno, "close");
  return NULL;
}

napi_value js_datagram_port(napi_env env, napi_callback_info info) {
  int fd = fd_argument(env, info, "datagramPort(fd)"), type = 0, port = -1;
  socklen_t len = sizeof type;
  struct sockaddr_storage addr;
  socklen_t addrlen = sizeof addr;
  napi_value result;
  if (fd < 0) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM &&
      getsockname(fd, (struct sockaddr *)&addr, &addrlen) == 0) {
    if (addr.ss_family == AF_INET) port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
    if (addr.ss_family == AF_INET6) port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
  }
  napi_create_int32(env, port, &result);
  return result;
}

/* 0 once the reserve is whole; -1 with errno (EMFILE...) while it cannot be. */
int fd_reserve_fill(struct addon_state *state) {
  while (state->reserve_count < FD_RESERVE) {
    int fd = state->reserve_count == 0 ? open("/dev/null", O_RDONLY | O_CLOEXEC)
                                       : fcntl(state->reserve[0], F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return -1;
    state->reserve[state->reserve_count++] = fd;
  }
  return 0;
}

/* Closes the reserve; how many fds that freed. */
int fd_reserve_release(struct addon_state *state) {
  int freed = state->reserve_count;
  while (state->reserve_count > 0) close(state->reserve[--state->reserve_count]);
  return freed;
}
