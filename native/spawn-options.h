/*
 * spawn-options.c: the options of spawn() made into a launch_plan, everything the child does
 * between clone and execve, computed in the parent beforehand.
 */
#ifndef SOCKETEER_SPAWN_OPTIONS_H
#define SOCKETEER_SPAWN_OPTIONS_H

#include <node_api.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#define LISTEN_PID_PREFIX "LISTEN_PID="
#define LISTEN_PID_SIZE 32 /* the prefix, a pid's digits, the NUL */
#define MAX_PASS_FDS 1024

enum stderr_mode { STDERR_PIPE, STDERR_SOCKET, STDERR_NULL };

struct rlimit_setting {
  int resource;
  const char *name; /* a static string: still valid once the arena is gone */
  struct rlimit limit;
};

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
  size_t npass;       /* passFds: the child's fds 3 .. 3 + npass - 1, in this order */
  const int *pass_fds;
  int *pass_scratch;  /* npass ints: the child's only other writes (its lifted sources) */
  char *listen_pid;   /* NULL, or envp's last entry "LISTEN_PID=", the child writes the digits */
  enum stderr_mode stderr_mode;
  int wait_for_session; /* parent only: return once the child leads its session (launch.c) */
  int cgroup_fd; /* -1: none; else the child writes "0" to it (a cgroup.procs: joins that cgroup) */
};

/* The options' memory, taken from the arena, else calloc'd (kept in items). */
struct pool {
  char *next, *end;
  void *items[8]; /* a template has no arena: its 6 allocations are all here */
  size_t count;
};

/*
 * A prepared spawn (spawnPrepare): the fixed part of the plan and its memory, shared by every
 * spawn made from it. Freed when the last of its JS object (finalized) and the arenas of its
 * children still before their exec (each holds a reference) lets go; atomically, since an
 * orphan's arena is released by the reaper thread.
 */
struct spawn_template {
  int refs;
  struct launch_plan plan;
  struct pool pool;
};

void spawn_template_hold(struct spawn_template *t);
void spawn_template_release(struct spawn_template *t);

int read_spawn_options(napi_env env, napi_value options, struct pool *pool,
                       struct launch_plan *plan);
/* The part a prepared spawn fixes once (no envp, stdinFd, cgroupFd, passFds, setListenPid). */
int read_fixed_options(napi_env env, napi_value options, struct pool *pool,
                       struct launch_plan *plan);
/* envp as `count` entries joined by NUL bytes (one string), into the pool. */
int read_env_block(napi_env env, napi_value block, uint32_t count, struct pool *pool,
                   struct launch_plan *plan);
void pool_free(struct pool *pool);

#endif
