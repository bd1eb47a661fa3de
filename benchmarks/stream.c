/*
 * The proxy benchmark's two ends.
 *   stream serve PATH BYTES        a Unix socket source: every connection gets BYTES bytes (a
 *                                  thread per connection, write(2) from a 1 MiB buffer), then EOF
 *   stream fetch TARGET BYTES N    N connections at once to TARGET (HOST:PORT or a Unix path),
 *                                  each read to EOF; prints `{"bytes":B,"seconds":S,"short":K}`
 *                                  (K: connections that got fewer than BYTES bytes)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static uint64_t per_conn;
static const char *target;

static void *serve_one(void *arg) {
  int fd = (int)(intptr_t)arg;
  static char buf[CHUNK];
  uint64_t left = per_conn;
  while (left > 0) {
    ssize_t n = write(fd, buf, left < CHUNK ? left : CHUNK);
    if (n <= 0) break;
    left -= (uint64_t)n;
  }
  close(fd);
  return NULL;
}

static int serve(const char *path) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
  unlink(path);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(lfd, 512) != 0) {
    perror("stream serve");
    return 1;
  }
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    pthread_t thread;
    if (fd < 0) continue;
    if (pthread_create(&thread, NULL, serve_one, (void *)(intptr_t)fd) != 0) close(fd);
    else pthread_detach(thread);
  }
}

static int connect_target(void) {
  const char *colon = strrchr(target, ':');
  int fd;
  if (target[0] == '/') {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strncpy(sun.sun_path, target, sizeof sun.sun_path - 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    return connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 ? fd : -1;
  }
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  char host[64];
  snprintf(host, sizeof host, "%.*s", (int)(colon - target), target);
  inet_pton(AF_INET, host, &sin.sin_addr);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  return connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0 ? fd : -1;
}

static void *fetch_one(void *arg) {
  uint64_t *got = arg;
  char *buf = malloc(CHUNK);
  int fd = connect_target();
  ssize_t n;
  /* no shutdown(SHUT_WR): systemd-socket-proxyd would end the connection at once */
  if (fd >= 0) {
    while ((n = read(fd, buf, CHUNK)) > 0) *got += (uint64_t)n;
    close(fd);
  }
  free(buf);
  return NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fetch(int count) {
  pthread_t threads[256];
  uint64_t got[256] = {0}, total = 0;
  int shortfall = 0;
  double start = now();
  for (int i = 0; i < count; i++) pthread_create(&threads[i], NULL, fetch_one, &got[i]);
  for (int i = 0; i < count; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < count; i++) {
    total += got[i];
    if (got[i] < per_conn) shortfall++;
  }
  printf("{\"bytes\":%llu,\"seconds\":%.6f,\"short\":%d}\n", (unsigned long long)total,
         now() - start, shortfall);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 4 && strcmp(argv[1], "serve") == 0) {
    per_conn = strtoull(argv[3], NULL, 10);
    return serve(argv[2]);
  }
  if (argc == 5 && strcmp(argv[1], "fetch") == 0) {
    int count = atoi(argv[4]);
    target = argv[2];
    per_conn = strtoull(argv[3], NULL, 10);
    if (count < 1 || count > 256) return 2;
    return fetch(count);
  }
  fprintf(stderr, "usage: stream serve PATH BYTES | stream fetch TARGET BYTES N\n");
  return 2;
}
