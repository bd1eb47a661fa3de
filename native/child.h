/* child.c: the child's side of a spawn, from clone to execve, and what it leaves behind. */
#ifndef SOCKETEER_CHILD_H
#define SOCKETEER_CHILD_H

/* The steps of the child, in order; a failed one is reported with its errno. */
enum child_step {
  STEP_NONE,
  STEP_SETSID,
  STEP_DUP,
  STEP_FCNTL,
  STEP_CHROOT,
  STEP_SETRLIMIT,
  STEP_SETPRIORITY,
  STEP_SETGROUPS,
  STEP_SETRESGID,
  STEP_SETRESUID,
  STEP_CHDIR,
  STEP_PRCTL,
  STEP_EXECVE,
  STEP_CGROUP, /* after setsid: the write to cgroup_fd */
};

/* Written by a failing child just before it exits; read once it is gone. */
struct child_report {
  int step; /* enum child_step; STEP_NONE: no failure */
  int error;
  int rlimit_index; /* the failed rlimit when step is STEP_SETRLIMIT, else -1 */
};

/* arena->child_tid: set by the parent, then by the child, then zeroed by the kernel. */
enum child_state {
  CHILD_GONE = 0,       /* exec'd or exited: the child no longer uses the arena */
  CHILD_STARTING = 1,   /* cloned, not yet in its own session */
  CHILD_IN_SESSION = 2, /* setsid done: its pid is its process group id */
};

int child_main(void *arena);
extern const char *const child_step_names[];

#endif
