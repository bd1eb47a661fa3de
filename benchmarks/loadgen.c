/*
 * Closed-loop TCP load generator: keeps N connections in flight against HOST:PORT for a fixed
 * time. One connection = non-blocking connect, read to EOF, close; its latency runs from just
 * before connect() to just after close(). It never writes. One thread, one epoll set.
 *
 *   loadgen --port P [--host 127.0.0.1] [--concurrency 8] [--duration 5] [--expect-bytes 6]
 *           [--timeout 10] [--sources N] [--count N]
 *
 * --count N starts N connections in all and stops there (or at the duration, whichever is
 * first): the memory scenario drives an exact number of connections.
 * --sources N binds each new connection's local address round-robin to 127.0.0.1 ... 127.0.0.N
 * (port chosen at connect), so a server sees N sources; unset, the kernel picks the address.
 *
 * Each connection ends in one category:
 *   served             exactly --expect-bytes read, then EOF;
 *   refused_by_server  EOF or RST with zero bytes read: the server accepted and closed at once;
 *   an error           refused (ECONNREFUSED: nobody listening), reset (RST after some bytes),
 *                      short (EOF after a wrong, non-zero byte count), timeout, other.
 * Prints one JSON object: counts per category, duration_s (first connect to last completion),
 * rates, latency percentiles in ms of served and of refused_by_server connections, and the
 * generator's own CPU seconds. count, conn_per_s, p50_ms, p99_ms and max_ms are the served
 * connections' (as before refusals were told apart).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

struct slot {
  int fd; /* -1: idle */
  double t0;
  long got;
};

struct errors {
  long refused, reset, shortread, timeout, other;
};

/* Latencies of one category, in ms; sorted before the percentiles are read. */
struct series {
  double *ms;
  long n, cap;
};

static struct sockaddr_in target;
static int epfd;
static struct slot *slots;
static struct errors errs;
static struct series served, refused_by_server;
static long expect_bytes = 6;
static long sources = 0; /* 0: do not bind */
static unsigned long next_source = 0;
static long max_started = -1; /* --count; -1: no limit */
static long started = 0;

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

static void record(struct series *s, double ms) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 65536;
    s->ms = realloc(s->ms, (size_t)s->cap * sizeof *s->ms);
    if (!s->ms) {
      fprintf(stderr, "loadgen: fatal: out of memory\n");
      exit(111);
    }
  }
  s->ms[s->n++] = ms;
}

/* Binds fd to the next source address, 127.0.0.1 + (k mod sources); the port waits for connect. */
static int bind_next_source(int fd) {
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = 0};
  uint32_t k = (uint32_t)(next_source++ % (unsigned long)sources);
  int one = 1;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK + k);
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  return bind(fd, (struct sockaddr *)&local, sizeof local);
}

/* Starts a connection in slot i; on an immediate failure the slot stays idle (retried later). */
static void start_connection(long i) {
  struct slot *s = &slots[i];
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)i};
  s->got = 0;
  s->t0 = now_s();
  started++;
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    count_error(errno);
    return;
  }
  if ((sources > 0 && bind_next_source(s->fd) < 0) ||
      (connect(s->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS)) {
    count_error(errno);
    close(s->fd);
    s->fd = -1;
    return;
  }
  /* A failed connect shows up as EPOLLERR, which epoll always reports; read() returns it. */
  epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

/* Files a finished connection: err is 0 for EOF, else the errno read() failed with. */
static void classify(const struct slot *s, int err, double ms) {
  int is_reset = err == ECONNRESET || err == EPIPE;
  if (s->got == 0 && expect_bytes != 0 && (err == 0 || is_reset)) record(&refused_by_server, ms);
  else if (err) count_error(err);
  else if (expect_bytes >= 0 && s->got != expect_bytes) errs.shortread++;
  else record(&served, ms);
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
    classify(s, err, (*done_at - s->t0) * 1e3);
    return 1;
  }
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted series; -1 when it is empty. */
static double percentile(const struct series *s, double p) {
  if (s->n == 0) return -1;
  long rank = (long)((p / 100.0) * (double)s->n + 0.999999999);
  if (rank < 1) rank = 1;
  return s->ms[rank - 1];
}

static double per_s(long n, double duration) { return duration > 0 ? (double)n / duration : 0.0; }

static void print_json(long concurrency, double duration) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  qsort(served.ms, (size_t)served.n, sizeof *served.ms, compare_double);
  qsort(refused_by_server.ms, (size_t)refused_by_server.n, sizeof *served.ms, compare_double);
  long total_errors = errs.refused + errs.reset + errs.shortread + errs.timeout + errs.other;
  long offered = served.n + refused_by_server.n + total_errors;
  printf("{\"concurrency\":%ld,\"sources\":%ld,\"count\":%ld,\"errors\":%ld,\"refused\":%ld,"
         "\"reset\":%ld,\"short\":%ld,\"timeout\":%ld,\"other\":%ld,\"duration_s\":%.6f,"
         "\"conn_per_s\":%.1f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,",
         concurrency, sources, served.n, total_errors, errs.refused, errs.reset, errs.shortread,
         errs.timeout, errs.other, duration, per_s(served.n, duration), percentile(&served, 50),
         percentile(&served, 99), percentile(&served, 100));
  printf("\"served\":%ld,\"refused_by_server\":%ld,\"offered\":%ld,\"offered_per_s\":%.1f,"
         "\"served_per_s\":%.1f,\"refused_per_s\":%.1f,\"refused_p50_ms\":%.4f,"
         "\"refused_p99_ms\":%.4f,\"refused_max_ms\":%.4f,",
         served.n, refused_by_server.n, offered, per_s(offered, duration),
         per_s(served.n, duration), per_s(refused_by_server.n, duration),
         percentile(&refused_by_server, 50), percentile(&refused_by_server, 99),
         percentile(&refused_by_server, 100));
  printf("\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f}\n",
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
                  " [--expect-bytes N] [--timeout S] [--sources N] [--count N]\n");
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
    else if (!strcmp(k, "--sources")) sources = atol(v);
    else if (!strcmp(k, "--count")) max_started = atol(v);
    else usage();
  }
  if (cfg.port <= 0 || cfg.port > 65535 || cfg.concurrency < 1 || cfg.duration <= 0) usage();
  if (sources < 0 || sources > 254 || max_started == 0 || max_started < -1) usage();
  return cfg;
}

/* Keeps n connections in flight until the deadline, then lets the last ones finish. */
static double run_load(long n, double duration, double timeout) {
  struct epoll_event *events = calloc((size_t)n, sizeof *events);
  double start = now_s(), deadline = start + duration, last_done = start;
  for (long i = 0; i < n; i++) slots[i].fd = -1;
  for (;;) {
    int starting = now_s() < deadline && (max_started < 0 || started < max_started);
    long in_flight = 0;
    for (long i = 0; i < n; i++) {
      if (slots[i].fd < 0 && starting && (max_started < 0 || started < max_started))
        start_connection(i);
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
