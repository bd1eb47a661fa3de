/*
 * A server that answers without spawning: accept, write "hello\n", close, in one loop.
 * It measures the load generator's ceiling on this machine. Binds 127.0.0.1 only.
 *   null-server [PORT]      (default 0: the kernel picks; the ready line tells)
 * Prints "ready: null=tcp:127.0.0.1:PORT" once listening; SIGTERM ends it with exit 0.
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "loopback.h"

int main(int argc, char **argv) {
  static const char line[] = "hello\n";
  int lfd = listen_loopback("null", argc > 1 ? atoi(argv[1]) : 0);

  while (!stopping) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue; /* EINTR (then stopping), ECONNABORTED, EMFILE: go on */
    if (write(fd, line, sizeof line - 1) < 0) { /* the peer went away: nothing to do */ }
    close(fd);
  }
  return 0;
}
