/*
 * Process tracking beyond the handler itself (see src/spawn/process-tracking.ts).
 *
 * With cgroup v2: the daemon opens a handler cgroup's cgroup.procs before the spawn and passes
 * the fd as options.cgroupFd; the child writes "0" to it (child.c, its step after setsid), so it
 * is in its cgroup before its exec and all it forks stays there. Nothing else is needed here.
 *
 * Without a writable cgroup, the daemon becomes a child subreaper: descendants orphaned by a
 * handler are reparented to the daemon instead of init, where the daemon can find and end them.
 *   setChildSubreaper()  prctl(PR_SET_CHILD_SUBREAPER, 1); throws a system error
 *   reapPid(pid)         waitid(P_PID, pid, WEXITED | WNOHANG): true when that child was
 *                        reaped now. Only for pids the caller knows to be adopted orphans: never
 *                        waits on "any child", so Node's and the exit watches' children keep
 *                        their exit statuses.
 */
#include "cgroup.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "names.h"

napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return throw_system_error(env, errno, "prctl");
  }
  return NULL;
}

napi_value js_reap_pid(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t pid = 0;
  siginfo_t child;
  int rc;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, arg, &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "reapPid(pid)");
    return NULL;
  }
  memset(&child, 0, sizeof child);
  while ((rc = waitid(P_PID, (id_t)pid, &child, WEXITED | WNOHANG)) != 0 && errno == EINTR) {
  }
  napi_get_boolean(env, rc == 0 && child.si_pid == pid, &result);
  return result;
}
