/*
 * Starting one handler: clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) on a separate stack, then
 * process setup and execve in the child.
 *
 * The child shares the parent's memory (no page-table copy, unlike fork) and the calling thread
 * sleeps until the child has exec'd or exited, which makes sharing the plan, the stack and the
 * error report safe. Rules for the child (they are those of glibc's posix_spawn):
 * - Only plain system calls; nothing that takes a lock or allocates (no malloc, no stdio).
 * - setgroups/setresgid/setresuid go through syscall(): glibc's wrappers broadcast the change
 *   to every thread of the process they believe they are in, which here would be the daemon's.
 * - errno is the parent thread's (same TLS); the failed step reads it at once and stores it in
 *   the shared `struct child_ctx`, which the parent reads when it wakes.
 * - All signals are blocked in the parent around clone, so no handler of the daemon's can run on
 *   the shared memory in the child; the child resets every disposition to SIG_DFL before it
 *   unblocks them (just before execve).
 */
#include "socketeer.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* 32-bit-id variants where the architecture has both (i386, arm). */
#ifdef SYS_setresuid32
#define SYS_SETRESUID SYS_setresuid32
#define SYS_SETRESGID SYS_setresgid32
#define SYS_SETGROUPS SYS_setgroups32
#else
#define SYS_SETRESUID SYS_setresuid
#define SYS_SETRESGID SYS_setresgid
#define SYS_SETGROUPS SYS_setgroups
#endif

#define CHILD_STACK_SIZE (64 * 1024)

struct child_ctx {
  const struct launch_plan *plan;
  int err_fd;   /* becomes fd 2 */
  int fd_limit; /* close_range fallback: mark fds below this close-on-exec */
  volatile int error;
  const char *volatile step;
  volatile int rlimit_index;
};

static void reset_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  /* SIGKILL, SIGSTOP and glibc's two internal signals fail with EINVAL: nothing to reset. */
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &sa, NULL);
}

/* fds 0 and 1 become the socket, 2 the stderr target; every other fd is close-on-exec. */
static int install_stdio(struct child_ctx *ctx) {
  int sock = ctx->plan->socket_fd, err = ctx->err_fd;
  ctx->step = "dup";
  /* A source already in 0..2 could be overwritten by an earlier dup2: move it up first. */
  if (sock < 3 && (sock = fcntl(sock, F_DUPFD, 3)) < 0) return -1;
  if (err == ctx->plan->socket_fd) err = sock;
  else if (err < 3 && (err = fcntl(err, F_DUPFD, 3)) < 0) return -1;
  if (dup2(sock, 0) < 0 || dup2(sock, 1) < 0 || dup2(err, 2) < 0) return -1;
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < ctx->fd_limit; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  /* Node made the socket non-blocking; handlers expect ordinary blocking stdio. */
  ctx->step = "fcntl";
  for (int fd = 0; fd < 3; fd++) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    if ((flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) return -1;
  }
  return 0;
}

/* Privileged steps come before the uid drop: raising limits or priority needs root. */
static int apply_limits(struct child_ctx *ctx) {
  const struct launch_plan *p = ctx->plan;
  ctx->step = "setrlimit";
  for (size_t i = 0; i < p->nrlimits; i++) {
    ctx->rlimit_index = (int)i;
    if (setrlimit(p->rlimits[i].resource, &p->rlimits[i].limit) != 0) return -1;
  }
  ctx->rlimit_index = -1;
  ctx->step = "setpriority";
  if (p->has_nice && setpriority(PRIO_PROCESS, 0, p->nice_value) != 0) return -1;
  if (p->has_umask) umask(p->umask_value);
  return 0;
}

static int change_identity(struct child_ctx *ctx) {
  const struct launch_plan *p = ctx->plan;
  ctx->step = "setgroups";
  if (p->set_groups && syscall(SYS_SETGROUPS, p->ngroups, p->groups) != 0) return -1;
  ctx->step = "setresgid";
  if (p->has_gid && syscall(SYS_SETRESGID, p->gid, p->gid, p->gid) != 0) return -1;
  ctx->step = "setresuid";
  if (p->has_uid && syscall(SYS_SETRESUID, p->uid, p->uid, p->uid) != 0) return -1;
  return 0;
}

static int child_main(void *arg) {
  struct child_ctx *ctx = arg;
  const struct launch_plan *p = ctx->plan;
  sigset_t none;

  reset_signals();
  ctx->step = "setsid";
  if (setsid() < 0) goto fail;
  if (install_stdio(ctx) != 0) goto fail;
  ctx->step = "chroot"; /* then at once into it: no cwd may stay outside the new root */
  if (p->chroot_dir != NULL && (chroot(p->chroot_dir) != 0 || chdir("/") != 0)) goto fail;
  if (apply_limits(ctx) != 0 || change_identity(ctx) != 0) goto fail;
  /* After the uid drop, so that the directory is entered with the handler's permissions. */
  ctx->step = "chdir";
  if (p->cwd != NULL && chdir(p->cwd) != 0) goto fail;
  ctx->step = "prctl";
  if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) goto fail;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  ctx->step = "execve";
  execve(p->file, p->argv, p->envp);
fail:
  ctx->error = errno;
  _exit(127);
}

static void *child_stack_top(struct addon_state *state) {
  if (state->stack_base == NULL) {
    long page = sysconf(_SC_PAGESIZE);
    void *base = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return NULL;
    mprotect(base, (size_t)page, PROT_NONE); /* guard page: the stack grows down into it */
    state->stack_base = base;
    state->stack_size = CHILD_STACK_SIZE;
  }
  return (char *)state->stack_base + state->stack_size;
}

static int fd_limit(void) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur > (1 << 20)) return 1 << 20;
  return (int)lim.rlim_cur;
}

/* Blocking: only for a child known to have exited or been killed. */
void reap_child(int pidfd) {
  siginfo_t info;
  while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) != 0 && errno == EINTR) {
  }
}

static int fail_before_clone(struct launch_result *r, const char *step) {
  r->error = errno;
  r->step = step;
  return -1;
}

static int open_stderr_target(const struct launch_plan *p, int pipe_fds[2]) {
  pipe_fds[0] = pipe_fds[1] = -1;
  if (p->stderr_mode == STDERR_SOCKET) return p->socket_fd;
  if (p->stderr_mode == STDERR_NULL) return open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  return pipe_fds[1];
}

int launch_handler(struct addon_state *state, const struct launch_plan *p,
                   struct launch_result *r) {
  struct child_ctx ctx = {.plan = p, .fd_limit = fd_limit(), .rlimit_index = -1};
  int pipe_fds[2], pidfd = -1, clone_errno;
  sigset_t all, old;
  void *stack;

  r->pid = -1, r->pidfd = -1, r->stderr_fd = -1, r->error = 0, r->step = NULL;
  r->rlimit_index = -1;
  if ((stack = child_stack_top(state)) == NULL) return fail_before_clone(r, "mmap");
  if ((ctx.err_fd = open_stderr_target(p, pipe_fds)) < 0) {
    return fail_before_clone(r, p->stderr_mode == STDERR_NULL ? "open" : "pipe2");
  }
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(child_main, stack, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &ctx,
                    &pidfd);
  clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (p->stderr_mode != STDERR_SOCKET) close(ctx.err_fd);
  if (pid < 0 || ctx.error != 0) {
    if (pid >= 0) reap_child(pidfd), close(pidfd);
    if (pipe_fds[0] >= 0) close(pipe_fds[0]);
    r->error = pid < 0 ? clone_errno : ctx.error;
    r->step = pid < 0 ? "clone" : ctx.step;
    r->rlimit_index = pid < 0 ? -1 : ctx.rlimit_index;
    return -1;
  }
  r->pid = pid, r->pidfd = pidfd, r->stderr_fd = pipe_fds[0];
  return 0;
}
