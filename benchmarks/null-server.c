/*
 * A server that answers without spawning: accept, write "hello\n", close, in one loop.
 * It measures the load generator's ceiling on this machine. Binds 127.0.0.1 only.
 *   null-server [PORT]      (default 0: the kernel picks; the ready line tells)
 * Prints "ready: null=tcp:127.0.0.1:PORT" once listening; SIGTERM ends it with exit 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;

static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

static int listen_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
    fprintf(stderr, "null-server: fatal: unable to listen on 127.0.0.1:%d: %s\n", port,
            strerror(errno));
    exit(111);
  }
  return fd;
}

int main(int argc, char **argv) {
  static const char line[] = "hello\n";
  struct sigaction sa = {.sa_handler = on_term};
  struct sockaddr_in bound;
  socklen_t len = sizeof bound;
  int lfd = listen_loopback(argc > 1 ? atoi(argv[1]) : 0);

  sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: accept returns EINTR */
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  getsockname(lfd, (struct sockaddr *)&bound, &len);
  printf("ready: null=tcp:127.0.0.1:%d\n", ntohs(bound.sin_port));
  fflush(stdout);
  while (!stopping) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue; /* EINTR (then stopping), ECONNABORTED, EMFILE: go on */
    if (write(fd, line, sizeof line - 1) < 0) { /* the peer went away: nothing to do */ }
    close(fd);
  }
  return 0;
}
