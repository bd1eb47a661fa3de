/*
 * Closed-loop TCP load generator: keeps N connections in flight against HOST:PORT for a fixed
 * time. One connection = non-blocking connect, read to EOF, close; its latency runs from just
 * before connect() to just after close(). It never writes. One thread, one epoll set.
 *
 *   loadgen --port P [--host 127.0.0.1] [--concurrency 8] [--duration 5] [--expect-bytes 6]
 *           [--timeout 10]
 *
 * Prints one JSON object: count (connections that ended with exactly --expect-bytes read),
 * errors by kind (refused, reset, short = EOF after a wrong byte count, timeout, other),
 * duration_s (first connect to last completion), conn_per_s, latency percentiles in ms, and
 * the generator's own CPU seconds (so a reader can see how busy it was).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct slot {
  int fd; /* -1: idle */
  double t0;
  long got;
};

struct errors {
  long refused, reset, shortread, timeout, other;
};

static struct sockaddr_in target;
static int epfd;
static struct slot *slots;
static struct errors errs;
static double *lat_ms;
static long lat_n, lat_cap;
static long expect_bytes = 6;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_error(int err) {
  if (err == ECONNREFUSED) errs.refused++;
  else if (err == ECONNRESET || err == EPIPE) errs.reset++;
  else errs.other++;
}

static void record_latency(double ms) {
  if (lat_n == lat_cap) {
    lat_cap = lat_cap ? lat_cap * 2 : 65536;
    lat_ms = realloc(lat_ms, (size_t)lat_cap * sizeof *lat_ms);
    if (!lat_ms) {
      fprintf(stderr, "loadgen: fatal: out of memory\n");
      exit(111);
    }
  }
  lat_ms[lat_n++] = ms;
}

/* Starts a connection in slot i; on an immediate failure the slot stays idle (retried later). */
static void start_connection(long i) {
  struct slot *s = &slots[i];
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)i};
  s->got = 0;
  s->t0 = now_s();
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    count_error(errno);
    return;
  }
  if (connect(s->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
    count_error(errno);
    close(s->fd);
    s->fd = -1;
    return;
  }
  /* A failed connect shows up as EPOLLERR, which epoll always reports; read() returns it. */
  epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

/* Reads what is there; returns 1 when the connection is over (completed or failed). */
static int drain_connection(struct slot *s, double *done_at) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n > 0) {
      s->got += n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    int err = n < 0 ? errno : 0;
    close(s->fd);
    s->fd = -1;
    *done_at = now_s();
    if (err) count_error(err);
    else if (expect_bytes >= 0 && s->got != expect_bytes) errs.shortread++;
    else record_latency((*done_at - s->t0) * 1e3);
    return 1;
  }
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies; -1 when there are none. */
static double percentile(double p) {
  if (lat_n == 0) return -1;
  long rank = (long)((p / 100.0) * (double)lat_n + 0.999999999);
  if (rank < 1) rank = 1;
  return lat_ms[rank - 1];
}

static void print_json(long concurrency, double duration) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  qsort(lat_ms, (size_t)lat_n, sizeof *lat_ms, compare_double);
  long total_errors = errs.refused + errs.reset + errs.shortread + errs.timeout + errs.other;
  printf("{\"concurrency\":%ld,\"count\":%ld,\"errors\":%ld,\"refused\":%ld,\"reset\":%ld,"
         "\"short\":%ld,\"timeout\":%ld,\"other\":%ld,\"duration_s\":%.6f,\"conn_per_s\":%.1f,"
         "\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f}\n",
         concurrency, lat_n, total_errors, errs.refused, errs.reset, errs.shortread, errs.timeout,
         errs.other, duration, duration > 0 ? (double)lat_n / duration : 0.0, percentile(50),
         percentile(99), percentile(100),
         (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
}

/* Closes (and counts) connections older than the timeout. */
static void expire_connections(long n, double now, double timeout) {
  for (long i = 0; i < n; i++) {
    if (slots[i].fd >= 0 && now - slots[i].t0 > timeout) {
      close(slots[i].fd);
      slots[i].fd = -1;
      errs.timeout++;
    }
  }
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen --port P [--host 127.0.0.1] [--concurrency N] [--duration S]"
                  " [--expect-bytes N] [--timeout S]\n");
  exit(100);
}

struct config {
  const char *host;
  long port, concurrency;
  double duration, timeout;
};

static struct config parse_args(int argc, char **argv) {
  struct config cfg = {.host = "127.0.0.1", .port = -1, .concurrency = 8, .duration = 5,
                       .timeout = 10};
  for (int a = 1; a < argc; a += 2) {
    if (a + 1 >= argc) usage();
    const char *k = argv[a], *v = argv[a + 1];
    if (!strcmp(k, "--host")) cfg.host = v;
    else if (!strcmp(k, "--port")) cfg.port = atol(v);
    else if (!strcmp(k, "--concurrency")) cfg.concurrency = atol(v);
    else if (!strcmp(k, "--duration")) cfg.duration = atof(v);
    else if (!strcmp(k, "--expect-bytes")) expect_bytes = atol(v);
    else if (!strcmp(k, "--timeout")) cfg.timeout = atof(v);
    else usage();
  }
  if (cfg.port <= 0 || cfg.port > 65535 || cfg.concurrency < 1 || cfg.duration <= 0) usage();
  return cfg;
}

/* Keeps n connections in flight until the deadline, then lets the last ones finish. */
static double run_load(long n, double duration, double timeout) {
  struct epoll_event *events = calloc((size_t)n, sizeof *events);
  double start = now_s(), deadline = start + duration, last_done = start;
  for (long i = 0; i < n; i++) slots[i].fd = -1;
  for (;;) {
    int starting = now_s() < deadline;
    long in_flight = 0;
    for (long i = 0; i < n; i++) {
      if (slots[i].fd < 0 && starting) start_connection(i);
      if (slots[i].fd >= 0) in_flight++;
    }
    if (!starting && in_flight == 0) break;
    int ready = epoll_wait(epfd, events, (int)n, 50);
    for (int e = 0; e < ready; e++) {
      struct slot *s = &slots[events[e].data.u64];
      if (s->fd >= 0) drain_connection(s, &last_done);
    }
    expire_connections(n, now_s(), timeout);
  }
  free(events);
  return last_done - start;
}

int main(int argc, char **argv) {
  struct config cfg = parse_args(argc, argv);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)cfg.port);
  if (inet_pton(AF_INET, cfg.host, &target.sin_addr) != 1) usage();
  epfd = epoll_create1(EPOLL_CLOEXEC);
  slots = calloc((size_t)cfg.concurrency, sizeof *slots);
  if (epfd < 0 || !slots) {
    fprintf(stderr, "loadgen: fatal: unable to set up: %s\n", strerror(errno));
    return 111;
  }
  double elapsed = run_load(cfg.concurrency, cfg.duration, cfg.timeout);
  print_json(cfg.concurrency, elapsed);
  return 0;
}
