/*
 * The addon's state, one per napi_env (main thread or worker): made at load (addon.c), shared by
 * the concerns that keep something per env, and freed at the env's teardown once the last uv
 * handle of a watch has closed (addon-state.c).
 */
#ifndef SOCKETEER_ADDON_STATE_H
#define SOCKETEER_ADDON_STATE_H

#include <node_api.h>
#include <stddef.h>
#include <uv.h>

#define FD_RESERVE 3 /* fds.c: one launch's fds, the stderr pipe (2) and the pidfd (1) */

struct arena;
struct exit_watch;
struct exit_hub;
struct accept_watch;
struct readable_watch;
struct stderr_pipes;

struct addon_state {
  napi_env env;
  uv_loop_t *loop;
  struct exit_watch *watches;   /* exit-watch.c: running children */
  struct exit_hub *exit_hub;    /* exit-watch.c: the one poll of every child's pidfd */
  struct accept_watch *accepts; /* accept.c: listening sockets polled */
  struct readable_watch *readables; /* readable.c: one-shot watches */
  struct stderr_pipes *stderr_pipes; /* stderr-pipes.c: handlers' stderr, from stderrStart */
  size_t closing;               /* uv handles whose close callback is pending */
  int tearing_down;
  napi_async_cleanup_hook_handle cleanup;
  int use_vfork;           /* SOCKETEER_NATIVE_VFORK=1: the caller sleeps until the exec */
  int devnull_fd;          /* launch.c: opened once, for stderr 'null'; -1 until then */
  int reserve[FD_RESERVE]; /* fds.c: held while accepting, given up to a launch */
  int reserve_count;
  struct arena *free_arenas, *pending_arenas; /* arena.c */
  size_t live_arenas;   /* acquired and not yet released */
  size_t cached_arenas; /* on the free list */
};

struct addon_state *addon_state_new(napi_env env, napi_async_cleanup_hook teardown);
void addon_state_handle_closing(struct addon_state *state);
void addon_state_handle_closed(struct addon_state *state);
void addon_state_end(struct addon_state *state);

#endif
