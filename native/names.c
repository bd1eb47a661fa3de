/*
 * errno and signal numbers to the names Node uses (ENOENT, SIGTERM), Node-style system errors
 * (err.code, err.errno negative, err.syscall) for the functions that throw, and the plain
 * { errno, syscall, message, resource? } of a failed spawn step (spawn() and its onExit).
 */
#include "names.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define NAME(x) {x, #x}

static const struct {
  int number;
  const char *name;
} errno_names[] = {
    NAME(EPERM),     NAME(ENOENT),    NAME(ESRCH),        NAME(EINTR),        NAME(EIO),
    NAME(ENXIO),     NAME(E2BIG),     NAME(ENOEXEC),      NAME(EBADF),        NAME(ECHILD),
    NAME(EAGAIN),    NAME(ENOMEM),    NAME(EACCES),       NAME(EFAULT),       NAME(EBUSY),
    NAME(EEXIST),    NAME(EXDEV),     NAME(ENODEV),       NAME(ENOTDIR),      NAME(EISDIR),
    NAME(EINVAL),    NAME(ENFILE),    NAME(EMFILE),       NAME(ENOTTY),       NAME(ETXTBSY),
    NAME(EFBIG),     NAME(ENOSPC),    NAME(ESPIPE),       NAME(EROFS),        NAME(EMLINK),
    NAME(EPIPE),     NAME(ERANGE),    NAME(ENAMETOOLONG), NAME(ENOSYS),       NAME(ELOOP),
    NAME(ENOTSOCK),  NAME(ENOPROTOOPT), NAME(EOPNOTSUPP), NAME(ENOTCONN),     NAME(ECONNRESET),
    NAME(ELIBBAD),   NAME(ENOTSUP),   NAME(EDQUOT),       NAME(ESTALE),       NAME(EOVERFLOW),
    NAME(EADDRINUSE), NAME(EADDRNOTAVAIL),
};

static const struct {
  int number;
  const char *name;
} signal_names[] = {
    NAME(SIGHUP),  NAME(SIGINT),  NAME(SIGQUIT), NAME(SIGILL),    NAME(SIGTRAP), NAME(SIGABRT),
    NAME(SIGBUS),  NAME(SIGFPE),  NAME(SIGKILL), NAME(SIGUSR1),   NAME(SIGSEGV), NAME(SIGUSR2),
    NAME(SIGPIPE), NAME(SIGALRM), NAME(SIGTERM), NAME(SIGSTKFLT), NAME(SIGCHLD), NAME(SIGCONT),
    NAME(SIGSTOP), NAME(SIGTSTP), NAME(SIGTTIN), NAME(SIGTTOU),   NAME(SIGURG),  NAME(SIGXCPU),
    NAME(SIGXFSZ), NAME(SIGVTALRM), NAME(SIGPROF), NAME(SIGWINCH), NAME(SIGIO), NAME(SIGPWR),
    NAME(SIGSYS),
};

/* ENOTSUP and EOPNOTSUPP share a number on Linux; the first listed (EOPNOTSUPP) wins. */
const char *errno_name(int err) {
  for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++) {
    if (errno_names[i].number == err) return errno_names[i].name;
  }
  return "EUNKNOWN";
}

/* Real-time signals have no Node name: they come out as SIGRTMIN+n. */
const char *signal_name(int sig, char *buf, size_t size) {
  for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++) {
    if (signal_names[i].number == sig) return signal_names[i].name;
  }
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
  else snprintf(buf, size, "SIG%d", sig);
  return buf;
}

/* strerror text with a lower-case first letter, as in every socketeer message. */
void describe_errno(int err, char *buf, size_t size) {
  const char *text = strerror_r(err, buf, size); /* GNU: may return a static string */
  if (text != buf) snprintf(buf, size, "%s", text);
  if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) buf[0] += 'a' - 'A';
}

napi_value make_system_error(napi_env env, int err, const char *syscall) {
  char text[128], message[192];
  napi_value error, code, msg, number, call;
  describe_errno(err, text, sizeof text);
  snprintf(message, sizeof message, "%s: %s (%s)", syscall, text, errno_name(err));
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, -err, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &call);
  napi_set_named_property(env, error, "syscall", call);
  return error;
}

napi_value throw_system_error(napi_env env, int err, const char *syscall) {
  napi_throw(env, make_system_error(env, err, syscall));
  return NULL;
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, key, v);
}

napi_value make_spawn_failure(napi_env env, int error, const char *step, const char *resource) {
  napi_value result;
  char text[128];
  describe_errno(error, text, sizeof text);
  napi_create_object(env, &result);
  set_string(env, result, "errno", errno_name(error));
  set_string(env, result, "syscall", step);
  set_string(env, result, "message", text);
  if (resource != NULL) set_string(env, result, "resource", resource);
  return result;
}
