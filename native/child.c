/*
 * The child's side of a spawn, from clone to execve. It runs in the daemon's address space
 * (CLONE_VM) on its arena's stack, at the same time as the daemon's thread (no CLONE_VFORK), so:
 * - Only raw system calls (sys6 below): no glibc function at all. The child has the parent
 *   thread's TLS pointer, and glibc's wrappers (syscall() included) write errno there on
 *   failure, while the parent thread may be using its own errno; some also take locks or, like
 *   setgroups/setresuid, broadcast the change to every thread of the daemon. The addon is linked
 *   with -z now, so no lazy PLT resolution (which writes TLS) can happen here either.
 * - It reads only its arena (plan, err_fd; a prepared spawn's strings and lists the plan points
 *   to, held by the arena until the exec) and the addon's constants, and writes only its stack,
 *   arena->child_tid once it leads its session (the parent waits for that: see launch.c), the
 *   plan's scratch (pass_scratch, and LISTEN_PID's digits: reserved by spawn-options.c) and,
 *   when a step fails, arena->report, just before exit_group(127).
 * - All signals are blocked from clone on (the parent blocks them around clone); every
 *   disposition is reset to SIG_DFL before they are unblocked just before execve.
 * Its stack use is 136 bytes (measured by painting the stack); the arena gives it 8 KiB.
 */
#include "child.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "arena.h"
#include "close-range.h"

/* A raw system call: the result, or -errno. Never touches errno. */
#if defined(__x86_64__)
static inline __attribute__((always_inline)) long sys6(long n, long a, long b, long c, long d,
                                                       long e, long f) {
  register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static inline __attribute__((always_inline)) long sys6(long n, long a, long b, long c, long d,
                                                       long e, long f) {
  register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c, x3 __asm__("x3") = d, x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
}
#else
#error "socketeer_native: the child's raw system calls exist for x86_64 and aarch64 only"
#endif

#define sys1(n, a) sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* The kernel's struct sigaction (x86_64 and arm64 both have sa_restorer); 8: sizeof(sigset). */
struct kernel_sigaction {
  unsigned long handler, flags, restorer, mask;
};
#define KERNEL_SIGSET_SIZE 8
#define KERNEL_NSIG 64

const char *const child_step_names[] = {
    [STEP_NONE] = "none",          [STEP_SETSID] = "setsid",
    [STEP_DUP] = "dup",            [STEP_FCNTL] = "fcntl",
    [STEP_CHROOT] = "chroot",      [STEP_SETRLIMIT] = "setrlimit",
    [STEP_SETPRIORITY] = "setpriority", [STEP_SETGROUPS] = "setgroups",
    [STEP_SETRESGID] = "setresgid", [STEP_SETRESUID] = "setresuid",
    [STEP_CHDIR] = "chdir",        [STEP_PRCTL] = "prctl",
    [STEP_EXECVE] = "execve",      [STEP_CGROUP] = "cgroup",
};

static __attribute__((noreturn)) void fail(struct arena *a, int step, long rc) {
  a->report.error = (int)-rc;
  a->report.step = step;
  for (;;) sys1(SYS_exit_group, 127);
}

static void reset_signals(void) {
  struct kernel_sigaction dfl;
  dfl.handler = (unsigned long)SIG_DFL, dfl.flags = 0, dfl.restorer = 0, dfl.mask = 0;
  /* Including glibc's internal 32 and 33: this process has its own dispositions. */
  for (long sig = 1; sig <= KERNEL_NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      sys4(SYS_rt_sigaction, sig, &dfl, 0, KERNEL_SIGSET_SIZE);
    }
  }
}

/* Without close_range (Linux < 5.11): every fd from `first` below RLIMIT_NOFILE (capped). */
static void mark_cloexec_each(long first) {
  struct rlimit lim;
  long limit = 1 << 20;
  if (sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &lim) == 0 && lim.rlim_cur < (rlim_t)limit) {
    limit = (long)lim.rlim_cur;
  }
  for (long fd = first; fd < limit; fd++) sys3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
}

/* A source below `top` (a target of the dups below) could be overwritten: moved up first. */
static long lift(struct arena *a, long fd, long top) {
  if (fd < top && (fd = sys3(SYS_fcntl, fd, F_DUPFD, top)) < 0) fail(a, STEP_DUP, fd);
  return fd;
}

/*
 * fds 0 and 1 become the socket, 2 the stderr target, 3 .. top - 1 the passFds in order (s6's
 * and systemd's way: every source is moved above the targets first); every other fd is
 * close-on-exec. With no passFds (top 3) this is three dup3 and one close_range.
 */
static void install_fds(struct arena *a) {
  const struct launch_plan *p = &a->plan;
  long top = 3 + (long)p->npass, sock = lift(a, p->socket_fd, top), err, rc;
  err = a->err_fd == p->socket_fd ? sock : lift(a, a->err_fd, top);
  for (size_t i = 0; i < p->npass; i++) p->pass_scratch[i] = (int)lift(a, p->pass_fds[i], top);
  /* dup3, not dup2 (absent on arm64): the sources are all >= top, never equal to the target. */
  if ((rc = sys3(SYS_dup3, sock, 0, 0)) < 0 || (rc = sys3(SYS_dup3, sock, 1, 0)) < 0 ||
      (rc = sys3(SYS_dup3, err, 2, 0)) < 0) {
    fail(a, STEP_DUP, rc);
  }
  for (size_t i = 0; i < p->npass; i++) {
    if ((rc = sys3(SYS_dup3, p->pass_scratch[i], 3 + (long)i, 0)) < 0) fail(a, STEP_DUP, rc);
  }
  if (sys3(SYS_close_range, top, ~0U, CLOSE_RANGE_CLOEXEC) != 0) mark_cloexec_each(top);
  /* Node made the socket non-blocking; handlers expect ordinary blocking stdio. */
  for (long fd = 0; fd < 3; fd++) {
    long flags = sys2(SYS_fcntl, fd, F_GETFL);
    if (flags < 0) fail(a, STEP_FCNTL, flags);
    if ((flags & O_NONBLOCK) && (rc = sys3(SYS_fcntl, fd, F_SETFL, flags & ~O_NONBLOCK)) < 0) {
      fail(a, STEP_FCNTL, rc);
    }
  }
}

/* LISTEN_PID's digits after its prefix in the arena: this process's pid, written by hand. */
static void write_listen_pid(char *entry) {
  char digits[12], *out = entry + sizeof LISTEN_PID_PREFIX - 1;
  long pid = sys1(SYS_getpid, 0);
  int n = 0;
  do digits[n++] = (char)('0' + pid % 10);
  while ((pid /= 10) > 0);
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

/* Privileged steps come before the uid drop: raising limits or priority needs root. */
static void apply_limits(struct arena *a) {
  const struct launch_plan *p = &a->plan;
  long rc;
  for (size_t i = 0; i < p->nrlimits; i++) {
    if ((rc = sys4(SYS_prlimit64, 0, p->rlimits[i].resource, &p->rlimits[i].limit, 0)) != 0) {
      a->report.rlimit_index = (int)i;
      fail(a, STEP_SETRLIMIT, rc);
    }
  }
  if (p->has_nice && (rc = sys3(SYS_setpriority, PRIO_PROCESS, 0, p->nice_value)) != 0) {
    fail(a, STEP_SETPRIORITY, rc);
  }
  if (p->has_umask) sys1(SYS_umask, p->umask_value);
}

static void change_identity(struct arena *a) {
  const struct launch_plan *p = &a->plan;
  long rc;
  if (p->set_groups && (rc = sys2(SYS_setgroups, p->ngroups, p->groups)) != 0) {
    fail(a, STEP_SETGROUPS, rc);
  }
  if (p->has_gid && (rc = sys3(SYS_setresgid, p->gid, p->gid, p->gid)) != 0) {
    fail(a, STEP_SETRESGID, rc);
  }
  if (p->has_uid && (rc = sys3(SYS_setresuid, p->uid, p->uid, p->uid)) != 0) {
    fail(a, STEP_SETRESUID, rc);
  }
}

int child_main(void *arg) {
  struct arena *a = arg;
  const struct launch_plan *p = &a->plan;
  unsigned long none = 0;
  long rc;

  /* First: the parent waits for this, so that the pid is a process group when spawn returns. */
  if ((rc = sys1(SYS_setsid, 0)) < 0) fail(a, STEP_SETSID, rc);
  __atomic_store_n(&a->child_tid, CHILD_IN_SESSION, __ATOMIC_RELEASE);
  sys6(SYS_futex, (long)&a->child_tid, FUTEX_WAKE, 1, 0, 0, 0);
  /* Into the handler's cgroup before anything runs that could fork: "0" is the writer itself. */
  if (p->cgroup_fd >= 0 && (rc = sys3(SYS_write, p->cgroup_fd, "0", 1)) < 0) {
    fail(a, STEP_CGROUP, rc);
  }
  reset_signals();
  install_fds(a);
  /* Then at once into it: no cwd may stay outside the new root. */
  if (p->chroot_dir != NULL &&
      ((rc = sys1(SYS_chroot, p->chroot_dir)) != 0 || (rc = sys1(SYS_chdir, "/")) != 0)) {
    fail(a, STEP_CHROOT, rc);
  }
  apply_limits(a);
  change_identity(a);
  /* After the uid drop, so that the directory is entered with the handler's permissions. */
  if (p->cwd != NULL && (rc = sys1(SYS_chdir, p->cwd)) != 0) fail(a, STEP_CHDIR, rc);
  if (p->no_new_privs && (rc = sys6(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0)) != 0) {
    fail(a, STEP_PRCTL, rc);
  }
  if (p->listen_pid != NULL) write_listen_pid(p->listen_pid);
  sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, KERNEL_SIGSET_SIZE);
  rc = sys3(SYS_execve, p->file, p->argv, p->envp);
  fail(a, STEP_EXECVE, rc);
}
