/*
 * The physical floor for per-connection spawning on this machine: accept, posix_spawn (glibc
 * spawns with CLONE_VFORK: no page-table copy) the handler with the socket as fd 0 and 1, close
 * it here, reap exited children from a SIGCHLD handler. No limits, no logging, no bookkeeping:
 * what any super-server has to do at the least. Binds 127.0.0.1 only.
 *   vfork-server PORT HANDLER [ARG...]      (PORT 0: the kernel picks; the ready line tells)
 * Prints "ready: vfork=tcp:127.0.0.1:PORT" once listening; SIGTERM ends it with exit 0.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopback.h"

extern char **environ;

static void on_child(int sig) {
  int saved = errno;
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) continue;
  errno = saved;
}

/* The handler on fd 0 and 1 (dup2 clears the accepted socket's close-on-exec there). */
static void spawn_handler(int fd, char **argv) {
  posix_spawn_file_actions_t actions;
  pid_t pid;
  int rc;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, 0);
  posix_spawn_file_actions_adddup2(&actions, fd, 1);
  rc = posix_spawn(&pid, argv[0], &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fprintf(stderr, "vfork-server: spawn %s: %s\n", argv[0], strerror(rc));
}

int main(int argc, char **argv) {
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  int lfd;

  if (argc < 3) {
    fprintf(stderr, "usage: vfork-server PORT HANDLER [ARG...]\n");
    return 100;
  }
  sigaction(SIGCHLD, &child, NULL);
  lfd = listen_loopback("vfork", atoi(argv[1]));
  while (!stopping) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue; /* EINTR (then stopping), ECONNABORTED, EMFILE: go on */
    spawn_handler(fd, argv + 2);
    close(fd);
  }
  return 0;
}
