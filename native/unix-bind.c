/*
 * The one safe Unix socket bind (service listeners and the control socket), and the other
 * operations on a socket path that a root daemon performs in directories other users may write.
 *
 * Rule: nothing here acts by path on a name another user could swap. The socket's parent
 * directory is opened once, from "/", one component at a time (O_PATH | O_NOFOLLOW); a symlink
 * component is followed only when it is owned by root or by the daemon's euid (the rule of
 * fs.protected_symlinks), else refused. Every later step goes through that directory fd:
 *
 *   unixBind(path, {mode, uid, gid, backlog, replace}) -> {fd, dev, ino}
 *     mkdirat a private directory with an unpredictable name (getrandom; EEXIST: another name),
 *     mode 0700, opened O_NOFOLLOW and checked (a directory of the daemon's euid, no access for
 *     others, empty): nobody else can write in it. The socket is bound to "s" inside it through
 *     its fd ("/proc/self/fd/N/s": the magic link pins the directory), chowned and chmodded
 *     there, listens, then is renamed into the parent under its name (atomic; RENAME_NOREPLACE
 *     when the name is free, so a racing file is never replaced) and the private directory is
 *     removed. A live socket at the name: EADDRINUSE (unless `replace`); something that is not
 *     a socket (a symlink included): EEXIST; a stale socket is replaced. The fd is CLOEXEC.
 *   unixBindAbstract(name, backlog) -> fd: the exact name, no padding to 108 bytes.
 *   unixRemove(path, dev, ino) -> boolean: unlinkat the name only while it is still our socket.
 *   unixRetune(path, dev, ino, uid, gid, mode): owner and mode in place, on the inode opened
 *     O_PATH | O_NOFOLLOW and checked to be our socket (fchownat AT_EMPTY_PATH; chmod through the
 *     magic link, which goes no further than that inode).
 *   unixPending(fd) -> boolean: whether a listening socket has connections waiting (poll).
 *
 * Needs /proc mounted (the bind and the chmod go through /proc/self/fd).
 *
 * Here: the JS arguments and replies. The walk to the parent is unix-walk.c, the bind through
 * a private directory unix-private.c, the error messages unix-failure.c.
 */
#include "unix-bind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix-failure.h"
#include "unix-private.h"
#include "unix-walk.h"

static int get_string(napi_env env, napi_value value, char *buf, size_t size, size_t *len) {
  size_t n;
  if (napi_get_value_string_utf8(env, value, buf, size, &n) != napi_ok || n == 0 || n >= size - 1) {
    return -1;
  }
  if (strlen(buf) != n) return -1; /* a NUL inside */
  if (len != NULL) *len = n;
  return 0;
}

static int get_double(napi_env env, napi_value obj, const char *key, double *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return -1;
  return napi_get_value_double(env, v, out) == napi_ok ? 0 : -1;
}

static int get_bool(napi_env env, napi_value obj, const char *key, int *out) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return -1;
  if (napi_get_value_bool(env, v, &b) != napi_ok) b = false;
  *out = b;
  return 0;
}

/* -1 (or any negative) means "unchanged". */
static unsigned id_of(double d) { return d >= 0 && d < 4294967295.0 ? (unsigned)d : (unsigned)-1; }

static void set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static napi_value type_error(napi_env env, const char *usage) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
  return NULL;
}

napi_value js_unix_bind(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[PATH_MAX];
  double mode, uid, gid, backlog;
  struct bind_request req = {.path = path};
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || get_string(env, argv[0], path, sizeof path, NULL) != 0 ||
      get_double(env, argv[1], "mode", &mode) != 0 || get_double(env, argv[1], "uid", &uid) != 0 ||
      get_double(env, argv[1], "gid", &gid) != 0 ||
      get_double(env, argv[1], "backlog", &backlog) != 0 ||
      get_bool(env, argv[1], "replace", &req.replace) != 0) {
    return type_error(env, "unixBind(path, {mode, uid, gid, backlog, replace})");
  }
  req.mode = (mode_t)mode & 07777;
  req.uid = id_of(uid);
  req.gid = id_of(gid);
  req.backlog = backlog >= 0 && backlog < 65536 ? (int)backlog : 511;
  struct stat st;
  struct failure f;
  int fd = bind_unix_path(&req, &st, &f);
  if (fd < 0) return throw_failure(env, &f);
  napi_value result;
  napi_create_object(env, &result);
  set_number(env, result, "fd", fd);
  set_number(env, result, "dev", (double)st.st_dev);
  set_number(env, result, "ino", (double)st.st_ino);
  return result;
}

napi_value js_unix_bind_abstract(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0;
  napi_value argv[2];
  char name[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
  int32_t backlog = 511;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || get_string(env, argv[0], name, sizeof name, &len) != 0 ||
      len > sizeof ((struct sockaddr_un *)0)->sun_path - 1 ||
      napi_get_value_int32(env, argv[1], &backlog) != napi_ok) {
    return type_error(env, "unixBindAbstract(name, backlog): a name of 1 to 107 bytes");
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path + 1, name, len);
  socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
  struct failure f;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail_errno(&f, "socket for", name);
    return throw_failure(env, &f);
  }
  if (bind(fd, (struct sockaddr *)&addr, addrlen) != 0 || listen(fd, backlog) != 0) {
    int error = errno;
    close(fd);
    errno = error;
    fail_errno(&f, "bind", name);
    return throw_failure(env, &f);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

/* Arguments (path, dev, ino, ...). */
static int read_target(napi_env env, napi_value *argv, char *path, dev_t *dev, ino_t *ino) {
  double d, i;
  if (get_string(env, argv[0], path, PATH_MAX, NULL) != 0 ||
      napi_get_value_double(env, argv[1], &d) != napi_ok ||
      napi_get_value_double(env, argv[2], &i) != napi_ok) {
    return -1;
  }
  *dev = (dev_t)d;
  *ino = (ino_t)i;
  return 0;
}

napi_value js_unix_remove(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  char path[PATH_MAX], name[NAME_MAX + 1];
  dev_t dev;
  ino_t ino;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || read_target(env, argv, path, &dev, &ino) != 0) {
    return type_error(env, "unixRemove(path, dev, ino)");
  }
  struct failure f;
  bool removed = false;
  int parent = open_parent(path, name, sizeof name, &f);
  if (parent >= 0) {
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == dev && st.st_ino == ino) {
      removed = unlinkat(parent, name, 0) == 0;
    }
    close(parent);
  }
  napi_get_boolean(env, removed, &result);
  return result;
}

napi_value js_unix_retune(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  char path[PATH_MAX], name[NAME_MAX + 1], magic[64];
  dev_t dev;
  ino_t ino;
  double uid, gid, mode;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6 || read_target(env, argv, path, &dev, &ino) != 0 ||
      napi_get_value_double(env, argv[3], &uid) != napi_ok ||
      napi_get_value_double(env, argv[4], &gid) != napi_ok ||
      napi_get_value_double(env, argv[5], &mode) != napi_ok) {
    return type_error(env, "unixRetune(path, dev, ino, uid, gid, mode)");
  }
  struct failure f;
  int parent = open_parent(path, name, sizeof name, &f);
  if (parent < 0) return throw_failure(env, &f);
  int fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  close(parent);
  if (fd < 0) {
    fail_errno(&f, "open", path);
    return throw_failure(env, &f);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_dev != dev || st.st_ino != ino) {
    close(fd);
    fail(&f, ESTALE, "%s: %s (%s): no longer the socket this daemon bound", path);
    return throw_failure(env, &f);
  }
  mode_t next = (mode_t)mode & 07777;
  snprintf(magic, sizeof magic, "/proc/self/fd/%d", fd);
  /* never wider than both the old and the new mode while the owner changes */
  const char *step = "chmod";
  if (chmod(magic, (st.st_mode & 07777) & next) != 0) goto failed;
  step = "chown";
  if ((id_of(uid) != (unsigned)-1 || id_of(gid) != (unsigned)-1) &&
      fchownat(fd, "", id_of(uid), id_of(gid), AT_EMPTY_PATH) != 0) {
    goto failed;
  }
  step = "chmod";
  if (chmod(magic, next) != 0) goto failed;
  close(fd);
  return NULL;
failed:;
  int error = errno;
  close(fd);
  errno = error;
  fail_errno(&f, step, path);
  return throw_failure(env, &f);
}

napi_value js_unix_pending(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t fd = -1;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, arg, &fd) != napi_ok || fd < 0) {
    return type_error(env, "unixPending(fd)");
  }
  struct pollfd p = {.fd = fd, .events = POLLIN};
  napi_get_boolean(env, poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0, &result);
  return result;
}
