/*
 * socketeer native addon: shared declarations. See addon.c for the notes on the whole addon.
 */
#ifndef SOCKETEER_NATIVE_H
#define SOCKETEER_NATIVE_H

#include <node_api.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <uv.h>

/* close_range(2), Linux 5.11, for headers that predate it (child.c, fds.c) */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum stderr_mode { STDERR_PIPE, STDERR_SOCKET, STDERR_NULL };

struct rlimit_setting {
  int resource;
  const char *name; /* a static string: still valid once the arena is gone */
  struct rlimit limit;
};

/* Everything the child does between clone and execve, computed in the parent beforehand. */
struct launch_plan {
  const char *file;
  char **argv;
  char **envp;
  const char *cwd;        /* NULL: the daemon's (or "/" when chrooted) */
  const char *chroot_dir; /* NULL: none */
  int has_uid;
  uid_t uid;
  int has_gid;
  gid_t gid;
  int set_groups; /* 1: setgroups(ngroups, groups), ngroups may be 0 (clear) */
  size_t ngroups;
  gid_t *groups;
  int has_umask;
  mode_t umask_value;
  int has_nice;
  int nice_value;
  size_t nrlimits;
  struct rlimit_setting *rlimits;
  int no_new_privs;
  int socket_fd;
  enum stderr_mode stderr_mode;
  int wait_for_session; /* parent only: return once the child leads its session (launch.c) */
  int cgroup_fd; /* -1: none; else the child writes "0" to it (a cgroup.procs: joins that cgroup) */
};

/* spawn-options.c: the options' memory, taken from the arena, else calloc'd (kept in items). */
struct pool {
  char *next, *end;
  void *items[8];
  size_t count;
};
int read_spawn_options(napi_env env, napi_value options, struct pool *pool,
                       struct launch_plan *plan);
void pool_free(struct pool *pool);

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

/*
 * One spawn's memory, shared with its child until the child has exec'd or exited: a guard page,
 * the child's stack, then this header (the stack grows down from it) and the plan's bytes.
 * The parent touches nothing the child reads until the kernel has zeroed child_tid
 * (CLONE_CHILD_CLEARTID: at exec and at exit) or the child has been reaped.
 */
struct arena {
  struct arena *next, *prev; /* the free list, or the pending list */
  struct arena **owner;      /* pending: the watch's pointer, cleared when the arena is freed */
  void *base;
  size_t size;
  int pending;
  int child_tid;               /* enum child_state: a futex, CLONE_CHILD_CLEARTID's word */
  struct child_report report;  /* the child's only writes outside its stack */
  int err_fd;                  /* becomes the child's fd 2 */
  struct launch_plan plan;
  struct pool pool;
  _Alignas(16) char data[];    /* up to the end of the mapping: the pool's bytes */
};

struct exit_watch;
struct accept_watch;

#define FD_RESERVE 3

/* One per napi_env (main thread or worker), owned by the env's async cleanup hook. */
struct addon_state {
  napi_env env;
  uv_loop_t *loop;
  struct exit_watch *watches; /* running children */
  struct accept_watch *accepts; /* listening sockets polled by accept.c */
  size_t closing;             /* uv handles whose close callback is pending */
  int tearing_down;
  napi_async_cleanup_hook_handle cleanup;
  int use_vfork;          /* SOCKETEER_NATIVE_VFORK=1: the caller sleeps until the exec */
  int devnull_fd;         /* opened once, for stderr 'null'; -1 until then */
  int reserve[FD_RESERVE]; /* fds.c: held while accepting, given up to a launch */
  int reserve_count;
  struct arena *free_arenas, *pending_arenas;
  size_t live_arenas;   /* acquired and not yet released */
  size_t cached_arenas; /* on the free list */
};

/* arena.c */
struct arena *arena_acquire(struct addon_state *state);
void arena_release(struct addon_state *state, struct arena *arena);
void arena_set_pending(struct addon_state *state, struct arena *arena, struct arena **owner);
void arena_sweep(struct addon_state *state);
void arena_abandon_pending(struct addon_state *state);
void arena_drop_cache(struct addon_state *state);
const char *report_resource(const struct arena *arena);

/* child.c */
int child_main(void *arena);
extern const char *const child_step_names[];

/* launch.c */
struct launch_result {
  pid_t pid;
  int pidfd;
  int stderr_fd;        /* read end of the stderr pipe, or -1 */
  int error;            /* errno of the failed step, 0 on success */
  const char *step;     /* the failed step's syscall name */
  const char *resource; /* the failed rlimit when step is "setrlimit", else NULL */
};
int launch_handler(struct addon_state *state, struct arena *arena, struct launch_result *result);
void reap_child(int pidfd);

/* orphans.c: takes the list (malloc'd) on success */
struct orphan {
  int pidfd;
  struct arena *arena; /* pending: unmapped once its child is reaped */
};
struct orphans {
  size_t count;
  struct orphan list[];
};
int reap_in_background(struct orphans *orphans);

/* exit-watch.c */
int watch_exit(struct addon_state *state, int pidfd, struct arena *arena, napi_value callback);
void stop_exit_watches(struct addon_state *state);

/* fds.c */
int fd_reserve_fill(struct addon_state *state);
int fd_reserve_release(struct addon_state *state);
napi_value js_close_on_exec_from(napi_env env, napi_callback_info info);

/* accept.c */
napi_value js_accept_start(napi_env env, napi_callback_info info);
napi_value js_accept_stop(napi_env env, napi_callback_info info);
void stop_accept_watches(struct addon_state *state);

/* accounts.c */
napi_value js_peer_credentials(napi_env env, napi_callback_info info);
napi_value js_group_list(napi_env env, napi_callback_info info);
napi_value js_lookup_user(napi_env env, napi_callback_info info);
napi_value js_lookup_group(napi_env env, napi_callback_info info);

/* unix-bind.c */
napi_value js_unix_bind(napi_env env, napi_callback_info info);
napi_value js_unix_bind_abstract(napi_env env, napi_callback_info info);
napi_value js_unix_remove(napi_env env, napi_callback_info info);
napi_value js_unix_retune(napi_env env, napi_callback_info info);
napi_value js_unix_pending(napi_env env, napi_callback_info info);

/* spawn.c */
napi_value js_spawn(napi_env env, napi_callback_info info);
napi_value js_debug_counters(napi_env env, napi_callback_info info);
napi_value make_spawn_failure(napi_env env, int error, const char *step, const char *resource);

/* cgroup.c */
napi_value js_set_child_subreaper(napi_env env, napi_callback_info info);
napi_value js_reap_pid(napi_env env, napi_callback_info info);

/* names.c */
const char *errno_name(int err);
const char *signal_name(int sig, char *buf, size_t size);
void describe_errno(int err, char *buf, size_t size);
napi_value make_system_error(napi_env env, int err, const char *syscall);

#endif
