/*
 * socketeer_native: the native spawner of socketeer (Node-API, plain C, NAPI_VERSION 8).
 *
 * Why: child_process.spawn forks the whole Node process (page tables included) and blocks the
 * event loop until exec; it also cannot set supplementary groups, rlimits, umask, nice, chroot
 * or no_new_privs, and Node cannot read SO_PEERCRED. This addon does all of it.
 *
 * Exports (typed in src/spawn/native-addon.ts):
 *   spawn(options, onExit)      spawn.c: spawn-options.c, arena.c, launch.c (child.c),
 *                               exit-watch.c (orphans.c at teardown)
 *   spawnPrepare(options)       spawn.c: spawn()'s fixed options read once, an opaque handle
 *   spawnPrepared(handle, stdinFd, cgroupFd, envBlock, envCount, onExit)
 *                               spawn.c: spawn() with them and the connection's own
 *   debugCounters()             spawn.c: { mode, liveArenas, cachedArenas }
 *   peerCredentials(fd)         accounts.c: { pid, uid, gid } of a Unix socket's peer
 *   groupList(userName, gid)    accounts.c: getgrouplist, primary gid included
 *   lookupUser(nameOrId)        accounts.c: { uid, gid, name, home, shell } | null
 *   lookupGroup(nameOrId)       accounts.c: { gid, name } | null
 *   acceptStart(fd, options, onAccepted), acceptStop(fd)
 *                               accept.c: accept4 on a listening socket, connections to JS
 *                               (address.c)
 *   closeOnExecFrom(fd), dupFd(fd), closeFd(fd), datagramPort(fd)
 *                               fds.c: inherited fds reach no handler; the daemon's own copies
 *   watchReadable(fd, onReadable), unwatchReadable(fd)
 *                               readable.c: a one-shot wait for a connection or a datagram
 *                               (accept: false starts its process on it)
 *   notifyOpen(name), notifyReceive(fd), datagramSend(path, buffer)
 *                               notify.c: an accept: false service's NOTIFY_SOCKET (abstract,
 *                               SOCK_DGRAM, SO_PASSCRED): its messages with sender and fds
 *   peerGone(fd), sendFds(socket, fds, timeoutMs), receiveFds(socket, count, timeoutMs)
 *                               peer.c: queued connections whose peer left; passing them on
 *   unixBind, unixBindAbstract, unixRemove, unixRetune, unixPending
 *                               unix-bind.c: the safe Unix bind (no path a user can swap;
 *                               unix-walk.c, unix-private.c, unix-failure.c)
 *   setChildSubreaper(), reapPid(pid)
 *                               cgroup.c: the fallback tracking of a handler's descendants
 *   proxyStart(fd, target, options, onEnd), proxyClose(id)
 *                               splice.c: a proxied connection copied both ways with splice(2)
 *                               (splice-conn.c)
 *   proxyPeek(fd, max), proxyConsume(fd, count)
 *                               proxy-header.c: a PROXY protocol header read to its last byte
 *   stderrStart(onChunk), stderrWatch(fd), stderrRead(id)
 *                               stderr-pipes.c: handlers' stderr pipes in one epoll set, JS
 *                               called only with what was written (src/log/stderr-pipes.ts)
 *
 * The child, in order: setsid, signal dispositions to SIG_DFL, socket on fds 0 and 1 and the
 * stderr target on 2 (pipe, socket or /dev/null), options.passFds on 3, 4, ... (every source
 * moved above the targets first), every other fd close-on-exec (close_range, else a loop up to
 * RLIMIT_NOFILE), O_NONBLOCK cleared on 0..2 (the passFds keep their flags), chroot +
 * chdir("/"), setrlimit, setpriority, umask (limits and priority before the uid drop: raising
 * them needs root), setgroups (the given list; cleared when a uid is set without one),
 * setresgid, setresuid, chdir to cwd (after the uid drop, so the handler's own permissions apply), PR_SET_NO_NEW_PRIVS,
 * LISTEN_PID=<its pid> into envp's slot kept for it (options.setListenPid: any LISTEN_PID of
 * envp is dropped by spawn-options.c), unblock signals, execve.
 * A failed step is reported with its errno and syscall name; the parent reaps that child.
 * The program path and cwd are resolved inside the chroot.
 *
 * The calling thread does not wait for the exec: clone(CLONE_VM | CLONE_PIDFD) without
 * CLONE_VFORK, then only until the child has run its setsid (options.waitForSession, default
 * true; see launch.c), while the child runs on its own arena (stack and plan, arena.c) with raw
 * system calls only (child.c). A failed step therefore reaches JS through onExit's third
 * argument, once the child is reaped. SOCKETEER_NATIVE_VFORK=1 in the environment when the addon
 * loads restores CLONE_VFORK (the thread sleeps until the exec; failures come back from spawn()
 * itself), for comparison.
 *
 * Exits are watched through one pidfd per child (CLONE_PIDFD, all in one epoll set of the
 * addon's that libuv polls as one handle, each reaped with waitid(P_PIDFD)): never
 * waitpid(-1), so Node's own children keep their statuses. While a
 * child is unreaped its pid cannot be reused, so signalling it (or its process group, since it
 * is a session leader) is race-free until onExit has run. A watched child keeps the event loop
 * alive, as a child_process child does.
 *
 * One header per concern, each .c including only what it uses. Calls go down this list (and
 * left to right within a line), never up:
 *   addon.c                                      the exports; the env's teardown
 *   spawn.c accept.c readable.c notify.c peer.c accounts.c cgroup.c unix-bind.c
 *   stderr-pipes.c                               the JS functions
 *   exit-watch.c orphans.c                       a child's exit; the reaper left at teardown
 *   launch.c child.c                             clone; the child until its execve
 *   addon-state.c arena.c spawn-options.c fds.c address.c         the state, memory, fds
 *   unix-private.c unix-walk.c unix-failure.c    the parts of the safe Unix bind
 *   names.c                                      errno and signal names, the error objects
 * At the env's teardown addon.c stops each concern's watches (stop_accept_watches,
 * stop_readable_watches, stop_exit_watches, stop_splice_watches, stop_stderr_pipes); the state
 * is freed once the last of their uv handles has closed (addon-state.c, which each watch tells
 * of its closes).
 *
 * The addon is linked with -z nodelete: Node unloads an addon when the last worker using it
 * ends, and the thread that reaps a worker's orphaned children runs this code. And with -z now:
 * no lazy symbol binding may ever run in a child (it writes the thread's TLS).
 *
 * Requires Linux >= 5.4 (CLONE_PIDFD, P_PIDFD) on x86_64 or aarch64 (the child's raw system
 * calls); close_range with CLOSE_RANGE_CLOEXEC is used from 5.11. Built by `node-gyp rebuild`
 * (binding.gyp at the package root) into build/Release/socketeer_native.node; when it cannot be
 * built, socketeer uses its portable spawner. native/bench-spawn.mjs measures it against
 * child_process.spawn.
 */
#include "addon-state.h"

#include "accept.h"
#include "accounts.h"
#include "cgroup.h"
#include "exit-watch.h"
#include "fds.h"
#include "notify.h"
#include "peer.h"
#include "proxy-header.h"
#include "readable.h"
#include "spawn.h"
#include "splice.h"
#include "stderr-pipes.h"
#include "unix-bind.h"

/*
 * The env's teardown (process exit, or a worker ending): each concern stops its watches, then
 * the state ends, now or once the last of their handles has closed (addon-state.c).
 */
static void on_env_teardown(napi_async_cleanup_hook_handle handle, void *data) {
  struct addon_state *state = data;
  (void)handle;
  stop_accept_watches(state);
  stop_readable_watches(state);
  stop_exit_watches(state);
  stop_splice_watches(state);
  stop_stderr_pipes(state);
  addon_state_end(state);
}

static int export_function(napi_env env, napi_value exports, const char *name,
                           napi_callback fn, struct addon_state *state) {
  napi_value value;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, state, &value) != napi_ok) return -1;
  return napi_set_named_property(env, exports, name, value) == napi_ok ? 0 : -1;
}

static napi_value init(napi_env env, napi_value exports) {
  struct addon_state *state = addon_state_new(env, on_env_teardown);
  if (state == NULL) return NULL;
  /* Its epoll fd is the daemon's from the start (as libuv's own); a failure here is retried at
   * the first spawn. */
  open_exit_hub(state);
  if (export_function(env, exports, "spawn", js_spawn, state) != 0 ||
      export_function(env, exports, "spawnPrepare", js_spawn_prepare, state) != 0 ||
      export_function(env, exports, "spawnPrepared", js_spawn_prepared, state) != 0 ||
      export_function(env, exports, "debugCounters", js_debug_counters, state) != 0 ||
      export_function(env, exports, "peerCredentials", js_peer_credentials, state) != 0 ||
      export_function(env, exports, "groupList", js_group_list, state) != 0 ||
      export_function(env, exports, "lookupUser", js_lookup_user, state) != 0 ||
      export_function(env, exports, "lookupGroup", js_lookup_group, state) != 0 ||
      export_function(env, exports, "acceptStart", js_accept_start, state) != 0 ||
      export_function(env, exports, "acceptStop", js_accept_stop, state) != 0 ||
      export_function(env, exports, "closeOnExecFrom", js_close_on_exec_from, state) != 0 ||
      export_function(env, exports, "dupFd", js_dup_fd, state) != 0 ||
      export_function(env, exports, "datagramPort", js_datagram_port, state) != 0 ||
      export_function(env, exports, "closeFd", js_close_fd, state) != 0 ||
      export_function(env, exports, "watchReadable", js_watch_readable, state) != 0 ||
      export_function(env, exports, "unwatchReadable", js_unwatch_readable, state) != 0 ||
      export_function(env, exports, "notifyOpen", js_notify_open, state) != 0 ||
      export_function(env, exports, "notifyReceive", js_notify_receive, state) != 0 ||
      export_function(env, exports, "datagramSend", js_datagram_send, state) != 0 ||
      export_function(env, exports, "peerGone", js_peer_gone, state) != 0 ||
      export_function(env, exports, "sendFds", js_send_fds, state) != 0 ||
      export_function(env, exports, "receiveFds", js_receive_fds, state) != 0 ||
      export_function(env, exports, "unixBind", js_unix_bind, state) != 0 ||
      export_function(env, exports, "unixBindAbstract", js_unix_bind_abstract, state) != 0 ||
      export_function(env, exports, "unixRemove", js_unix_remove, state) != 0 ||
      export_function(env, exports, "unixRetune", js_unix_retune, state) != 0 ||
      export_function(env, exports, "unixPending", js_unix_pending, state) != 0 ||
      export_function(env, exports, "setChildSubreaper", js_set_child_subreaper, state) != 0 ||
      export_function(env, exports, "reapPid", js_reap_pid, state) != 0 ||
      export_function(env, exports, "proxyStart", js_proxy_start, state) != 0 ||
      export_function(env, exports, "proxyClose", js_proxy_close, state) != 0 ||
      export_function(env, exports, "proxyPeek", js_proxy_peek, state) != 0 ||
      export_function(env, exports, "proxyConsume", js_proxy_consume, state) != 0 ||
      export_function(env, exports, "stderrStart", js_stderr_start, state) != 0 ||
      export_function(env, exports, "stderrWatch", js_stderr_watch, state) != 0 ||
      export_function(env, exports, "stderrRead", js_stderr_read, state) != 0) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
