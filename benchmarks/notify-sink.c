/*
 * Stands in for systemd's NOTIFY_SOCKET in the scale scenario: binds a Unix datagram socket at
 * PATH, prints "bound", then each datagram it receives on one line (its newlines as spaces),
 * flushed at once, so the bench sees READY=1 when the daemon sends it.
 *   notify-sink PATH
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  static char buf[65536];
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (argc != 2 || strlen(argv[1]) >= sizeof sa.sun_path) {
    fprintf(stderr, "usage: notify-sink PATH (under %zu bytes)\n", sizeof sa.sun_path);
    return 100;
  }
  strcpy(sa.sun_path, argv[1]);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror("notify-sink: fatal: bind");
    return 111;
  }
  printf("bound\n");
  fflush(stdout);
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0) continue;
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] == '\n' || buf[i] == '\0') buf[i] = ' ';
    buf[n] = '\0';
    printf("%s\n", buf);
    fflush(stdout);
  }
}
