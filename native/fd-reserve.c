/*
 * A reserve of file descriptors for spawning, held while the addon accepts connections: at the
 * edge of RLIMIT_NOFILE, accept4 fails (EMFILE: the connection stays in the backlog) before a
 * spawn can, so a connection once accepted is not lost for want of its handler's fds.
 *
 * A launch that fails for want of fds (pipe2 or clone's pidfd: EMFILE, ENFILE) releases the
 * reserve and tries once more; the accept loop takes no connection until the reserve is whole
 * again. FD_RESERVE covers one launch: the stderr pipe (2) and the pidfd (1).
 */
#include "socketeer.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

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
