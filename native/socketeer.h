/*
 * socketeer native addon: shared declarations. See addon.c for the notes on the whole addon.
 */
#ifndef SOCKETEER_NATIVE_H
#define SOCKETEER_NATIVE_H

#include <node_api.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <uv.h>

enum stderr_mode { STDERR_PIPE, STDERR_SOCKET, STDERR_NULL };

struct rlimit_setting {
  int resource;
  const char *name;
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
};

struct launch_result {
  pid_t pid;
  int pidfd;
  int stderr_fd;    /* read end of the stderr pipe, or -1 */
  int error;        /* errno of the failed step, 0 on success */
  const char *step; /* the failed step's syscall name */
  int rlimit_index; /* the failed rlimit when step is "setrlimit", else -1 */
};

struct exit_watch;

/* One per napi_env (main thread or worker), owned by the env's async cleanup hook. */
struct addon_state {
  napi_env env;
  uv_loop_t *loop;
  struct exit_watch *watches; /* running children */
  size_t closing;             /* uv handles whose close callback is pending */
  int tearing_down;
  napi_async_cleanup_hook_handle cleanup;
  void *stack_base; /* the child's clone stack, reused: CLONE_VFORK serialises its users */
  size_t stack_size;
};

/* launch.c */
int launch_handler(struct addon_state *state, const struct launch_plan *plan,
                   struct launch_result *result);
void reap_child(int pidfd);

/* exit-watch.c */
int watch_exit(struct addon_state *state, int pidfd, napi_value callback);
void stop_exit_watches(struct addon_state *state);

/* accounts.c */
napi_value js_peer_credentials(napi_env env, napi_callback_info info);
napi_value js_group_list(napi_env env, napi_callback_info info);
napi_value js_lookup_user(napi_env env, napi_callback_info info);
napi_value js_lookup_group(napi_env env, napi_callback_info info);

/* spawn-options.c: the options' memory, freed after the launch */
struct pool {
  void *items[8];
  size_t count;
};
int read_spawn_options(napi_env env, napi_value options, struct pool *pool,
                       struct launch_plan *plan);
void pool_free(struct pool *pool);

/* spawn.c */
napi_value js_spawn(napi_env env, napi_callback_info info);

/* names.c */
const char *errno_name(int err);
const char *signal_name(int sig, char *buf, size_t size);
void describe_errno(int err, char *buf, size_t size);
napi_value make_system_error(napi_env env, int err, const char *syscall);

#endif
