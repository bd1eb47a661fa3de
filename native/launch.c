/*
 * Starting one handler: clone(CLONE_VM | CLONE_PIDFD) on the arena's stack; the child (child.c)
 * does the process setup and execve.
 *
 * The child shares the daemon's memory (no page-table copy, unlike fork) and the calling thread
 * goes on long before the exec: once the child leads its own session (its first step), so that
 * kill(-pid) reaches it, or with waitForSession false at once after clone. The child's fd table
 * is a copy taken at clone time, so the caller may close its socket right after. The child reads
 * only its own arena, which stays untouched until the kernel zeroes arena->child_tid
 * (CLONE_CHILD_CLEARTID: when the exec replaces the child's memory, or when it exits). A step
 * that fails is written to arena->report before exit_group(127); the exit watch reads it once
 * the child is reaped and reports the spawn failure instead of the exit.
 *
 * Why waitForSession exists: the wait is for the child to get a CPU, which costs the caller
 * little on an idle machine (17 us) but 280 us on average (p99 1.4 ms) with 8 spawns in flight
 * on 2 cores, and ~20% of the daemon's throughput there (2471 against 3040 connections/s).
 * Without it, for that long the pid is no process group yet: kill(-pid) fails with ESRCH, while
 * kill(pid) works (the child keeps the signal pending, blocked, and dies of it before its exec).
 * setsid cannot be done for the child, and a group made by the parent (setpgid) would make the
 * child's own setsid fail.
 *
 * With SOCKETEER_NATIVE_VFORK=1 (read at load) CLONE_VFORK is added instead: the thread sleeps
 * until the child has exec'd or exited (the previous behaviour, kept for comparison), and a
 * failed step comes back from spawn() at once, the child already reaped.
 *
 * All signals are blocked in the parent around clone, so the child starts with them blocked and
 * no handler of the daemon's can run in it on the shared memory.
 */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addon-state.h"
#include "arena.h"
#include "child.h"
#include "fds.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Blocking: only for a child known to have exited or been killed. */
void reap_child(int pidfd) {
  siginfo_t info;
  while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) != 0 && errno == EINTR) {
  }
}

/* The name of the rlimit a failed setrlimit step was setting, or NULL. */
static const char *report_resource(const struct arena *arena) {
  int i = arena->report.rlimit_index;
  if (arena->report.step != STEP_SETRLIMIT || i < 0 || (size_t)i >= arena->plan.nrlimits) {
    return NULL;
  }
  return arena->plan.rlimits[i].name;
}

/*
 * The failed step a child left in its arena, once it is gone: 1 with r's error, step and
 * resource set, 0 (r untouched) when it reported none.
 */
int read_child_report(const struct arena *arena, struct launch_result *r) {
  if (arena->report.step == STEP_NONE) return 0;
  r->error = arena->report.error;
  r->step = child_step_names[arena->report.step];
  r->resource = report_resource(arena);
  return 1;
}

static int fail_before_clone(struct launch_result *r, int error, const char *step) {
  r->error = error;
  r->step = step;
  return -1;
}

/* The fd the child dups to 2: the socket, /dev/null (opened once) or a new pipe's write end. */
static int open_stderr_target(struct addon_state *state, const struct launch_plan *p,
                              int pipe_fds[2]) {
  pipe_fds[0] = pipe_fds[1] = -1;
  if (p->stderr_mode == STDERR_SOCKET) return p->socket_fd;
  if (p->stderr_mode == STDERR_NULL) {
    if (state->devnull_fd < 0) state->devnull_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    return state->devnull_fd;
  }
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  return pipe_fds[1];
}

/* vfork mode: the child has exec'd or exited by now; a failed one is reaped here. */
static int check_vfork_child(struct arena *a, int pidfd, int stderr_fd, struct launch_result *r) {
  if (!read_child_report(a, r)) return 0;
  reap_child(pidfd);
  close(pidfd);
  if (stderr_fd >= 0) close(stderr_fd);
  return -1;
}

/*
 * Until the child leads its own session (its first step) or is gone: callers signal a handler's
 * process group (kill(-pid)), which must exist once spawn has returned. The kernel wakes this
 * futex too when it zeroes child_tid, so a child killed before its setsid cannot leave us here.
 * Not a private futex: CLONE_CHILD_CLEARTID's wake is a shared one.
 */
static void wait_for_session(struct arena *a) {
  while (__atomic_load_n(&a->child_tid, __ATOMIC_ACQUIRE) == CHILD_STARTING) {
    syscall(SYS_futex, &a->child_tid, FUTEX_WAIT, CHILD_STARTING, NULL, NULL, 0);
  }
}

static int launch_once(struct addon_state *state, struct arena *a, struct launch_result *r) {
  int pipe_fds[2], pidfd = -1, clone_errno, flags = CLONE_VM | CLONE_PIDFD | SIGCHLD;
  sigset_t all, old;
  pid_t pid;

  *r = (struct launch_result){.pid = -1, .pidfd = -1, .stderr_fd = -1};
  if ((a->err_fd = open_stderr_target(state, &a->plan, pipe_fds)) < 0) {
    return fail_before_clone(r, errno, a->plan.stderr_mode == STDERR_NULL ? "open" : "pipe2");
  }
  flags |= state->use_vfork ? CLONE_VFORK : CLONE_CHILD_CLEARTID;
  __atomic_store_n(&a->child_tid, CHILD_STARTING, __ATOMIC_RELAXED);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  /* The stack grows down from the arena's header, towards its guard page. */
  pid = clone(child_main, a, flags, a, &pidfd, NULL, &a->child_tid);
  clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pipe_fds[1] >= 0) close(pipe_fds[1]);
  if (pid < 0) {
    if (pipe_fds[0] >= 0) close(pipe_fds[0]);
    return fail_before_clone(r, clone_errno, "clone");
  }
  if (state->use_vfork && check_vfork_child(a, pidfd, pipe_fds[0], r) != 0) return -1;
  if (!state->use_vfork && a->plan.wait_for_session) wait_for_session(a);
  r->pid = pid, r->pidfd = pidfd, r->stderr_fd = pipe_fds[0];
  return 0;
}

/* Out of fds (pipe2, or clone's pidfd): once more with the accept loop's reserve given up. */
int launch_handler(struct addon_state *state, struct arena *a, struct launch_result *r) {
  if (launch_once(state, a, r) == 0) return 0;
  if ((r->error != EMFILE && r->error != ENFILE) || fd_reserve_release(state) == 0) return -1;
  return launch_once(state, a, r);
}
