/*
 * What the bench's C servers (null-server.c, vfork-server.c) share: a listening socket on
 * 127.0.0.1, SIGTERM/SIGINT setting `stopping` (without SA_RESTART, so accept returns EINTR),
 * and the "ready: NAME=tcp:127.0.0.1:PORT" line the bench waits for.
 */
#ifndef BENCH_LOOPBACK_H
#define BENCH_LOOPBACK_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static volatile sig_atomic_t stopping = 0;

static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

/* Listens on 127.0.0.1:port (0: the kernel picks), stop signals handled, SIGPIPE ignored, and
 * the ready line printed; exits 111 if it cannot listen. */
static int listen_loopback(const char *name, int port) {
  struct sigaction term = {.sa_handler = on_term};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  socklen_t len = sizeof sa;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
    fprintf(stderr, "%s-server: fatal: unable to listen on 127.0.0.1:%d: %s\n", name, port,
            strerror(errno));
    exit(111);
  }
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGINT, &term, NULL);
  signal(SIGPIPE, SIG_IGN);
  getsockname(fd, (struct sockaddr *)&sa, &len);
  printf("ready: %s=tcp:127.0.0.1:%d\n", name, ntohs(sa.sin_port));
  fflush(stdout);
  return fd;
}

#endif
