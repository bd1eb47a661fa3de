/* launch.c: starting one handler on its arena (clone), and what came of it. */
#ifndef SOCKETEER_LAUNCH_H
#define SOCKETEER_LAUNCH_H

#include <sys/types.h>

struct addon_state;
struct arena;

struct launch_result {
  pid_t pid;
  int pidfd;
  int stderr_fd;        /* read end of the stderr pipe, or -1 */
  int error;            /* errno of the failed step, 0 on success */
  const char *step;     /* the failed step's syscall name */
  const char *resource; /* the failed rlimit when step is "setrlimit", else NULL */
};

int launch_handler(struct addon_state *state, struct arena *arena, struct launch_result *result);
int read_child_report(const struct arena *arena, struct launch_result *result);
void reap_child(int pidfd);

#endif
