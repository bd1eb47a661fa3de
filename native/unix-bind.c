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
 */
#include "socketeer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define MAX_SYMLINKS 40
#define PRIVATE_TRIES 1024

/* An error with a code (errno name) and a message of our own. */
struct failure {
  int error;
  char message[PATH_MAX * 2 + 512];
};

/* names.c's list, and the socket errors it lacks */
static const char *error_name(int error) {
  if (error == EADDRINUSE) return "EADDRINUSE";
  if (error == ECONNREFUSED) return "ECONNREFUSED";
  return errno_name(error);
}

static int fail(struct failure *f, int error, const char *format, const char *what) {
  char text[128];
  describe_errno(error, text, sizeof text);
  f->error = error;
  snprintf(f->message, sizeof f->message, format, what, text, error_name(error));
  return -1;
}

static int fail_errno(struct failure *f, const char *step, const char *what) {
  int error = errno;
  char format[64];
  snprintf(format, sizeof format, "%s %%s: %%s (%%s)", step);
  return fail(f, error, format, what);
}

static napi_value throw_failure(napi_env env, const struct failure *f) {
  napi_value error, code, message, number;
  napi_create_string_utf8(env, error_name(f->error), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, f->message, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -f->error, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_throw(env, error);
  return NULL;
}

/* Splits `path` (absolute) into its directory part (in dir) and last component (in name). */
static int split_path(const char *path, char *dir, size_t dir_size, char *name, size_t name_size,
                      struct failure *f) {
  const char *slash = strrchr(path, '/');
  if (path[0] != '/' || slash == NULL || slash[1] == '\0' || strcmp(slash + 1, ".") == 0 ||
      strcmp(slash + 1, "..") == 0) {
    return fail(f, EINVAL, "%s: %s (%s): not an absolute path to a file", path);
  }
  size_t dir_len = (size_t)(slash - path);
  if (dir_len + 2 > dir_size || strlen(slash + 1) + 1 > name_size) {
    return fail(f, ENAMETOOLONG, "%s: %s (%s)", path);
  }
  memcpy(dir, path, dir_len);
  dir[dir_len] = '\0';
  strcpy(name, slash + 1);
  return 0;
}

/*
 * Opens directory `dir` from "/" one component at a time, never following a symlink that is not
 * owned by root or the daemon's euid. Returns an O_PATH fd, or -1 with `f` set.
 */
static int open_dir_safely(const char *dir, struct failure *f) {
  char todo[PATH_MAX * 2], target[PATH_MAX], comp[NAME_MAX + 1];
  int links = 0;
  int cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0) return fail_errno(f, "open", "/");
  snprintf(todo, sizeof todo, "%s", dir);
  const char *p = todo;
  for (;;) {
    while (*p == '/') p++;
    if (*p == '\0') return cur;
    size_t len = strcspn(p, "/");
    if (len > NAME_MAX) {
      close(cur);
      return fail(f, ENAMETOOLONG, "open %s: %s (%s)", dir);
    }
    memcpy(comp, p, len);
    comp[len] = '\0';
    p += len;
    if (strcmp(comp, ".") == 0) continue;
    int next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (next < 0 || fstat(next, &st) != 0) {
      int error = errno;
      if (next >= 0) close(next);
      close(cur);
      errno = error;
      return fail_errno(f, "open directory", dir);
    }
    if (S_ISDIR(st.st_mode)) {
      close(cur);
      cur = next;
      continue;
    }
    if (!S_ISLNK(st.st_mode)) {
      close(next);
      close(cur);
      return fail(f, ENOTDIR, "open directory %s: %s (%s)", dir);
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
      char why[PATH_MAX + 512];
      snprintf(why, sizeof why,
               "refusing to follow the symlink \"%.255s\" in %s: it is owned by uid %u, neither "
               "root nor the daemon's user",
               comp, dir, (unsigned)st.st_uid);
      close(next);
      close(cur);
      return fail(f, EPERM, "%s: %s (%s)", why);
    }
    ssize_t n = readlinkat(next, "", target, sizeof target - 1);
    int error = errno;
    close(next);
    if (n < 0 || ++links > MAX_SYMLINKS) {
      close(cur);
      errno = n < 0 ? error : ELOOP;
      return fail_errno(f, "open directory", dir);
    }
    target[n] = '\0';
    char rest[PATH_MAX * 2];
    snprintf(rest, sizeof rest, "%s", p);
    if ((size_t)snprintf(todo, sizeof todo, "%s/%s", target, rest) >= sizeof todo) {
      close(cur);
      return fail(f, ENAMETOOLONG, "open directory %s: %s (%s)", dir);
    }
    p = todo;
    if (target[0] == '/') {
      close(cur);
      cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (cur < 0) return fail_errno(f, "open", "/");
    }
  }
}

/* The safely opened parent of `path`, its last component in `name`. */
static int open_parent(const char *path, char *name, size_t name_size, struct failure *f) {
  char dir[PATH_MAX];
  if (split_path(path, dir, sizeof dir, name, name_size, f) != 0) return -1;
  return open_dir_safely(dir[0] == '\0' ? "/" : dir, f);
}

/* Something accepts on `path` (a full backlog counts): connect, non-blocking. */
static int is_live(int parent, const char *name, const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int n = snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", parent, name);
  if (n < 0 || (size_t)n >= sizeof addr.sun_path) snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1;
  int r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  int error = errno;
  close(fd);
  return r == 0 || (error != ECONNREFUSED && error != ENOENT);
}

/*
 * Creates the private directory: its name in `priv`, an O_PATH fd to it returned. A name taken
 * (EEXIST), or a directory swapped before it was opened (whoever can write the parent can rename
 * it away and put a symlink or their own directory in its place): another name.
 */
static int make_private_dir(int parent, const char *path, char *priv, size_t size,
                            struct failure *f) {
  for (int i = 0; i < PRIVATE_TRIES; i++) {
    unsigned char bytes[9];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
      return fail_errno(f, "getrandom for", path);
    }
    int n = snprintf(priv, size, ".sk-");
    for (size_t b = 0; b < sizeof bytes; b++) {
      n += snprintf(priv + n, size - (size_t)n, "%02x", bytes[b]);
    }
    if (mkdirat(parent, priv, 0700) != 0) {
      if (errno == EEXIST) continue;
      return fail_errno(f, "mkdir a private directory next to", path);
    }
    int fd = openat(parent, priv, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
        (st.st_mode & 077) == 0 && st.st_nlink == 2) {
      return fd;
    }
    if (fd >= 0) close(fd);
  }
  return fail(f, EAGAIN, "no private directory next to %s could be made: %s (%s)", path);
}

/* Removes the private directory if it is still the one at its name (and empty). */
static void remove_private_dir(int parent, const char *priv, int priv_fd) {
  struct stat ours, there;
  if (fstat(priv_fd, &ours) == 0 && fstatat(parent, priv, &there, AT_SYMLINK_NOFOLLOW) == 0 &&
      ours.st_dev == there.st_dev && ours.st_ino == there.st_ino) {
    unlinkat(parent, priv, AT_REMOVEDIR);
  }
}

struct bind_request {
  const char *path;
  mode_t mode;
  uid_t uid; /* (uid_t)-1: unchanged */
  gid_t gid;
  int backlog;
  int replace;
};

/* The socket, bound, owned, moded and listening in the private directory as "s". */
static int bind_private(int priv_fd, const struct bind_request *req, struct stat *st,
                        struct failure *f) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/s", priv_fd);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno(f, "socket for", req->path);
  const char *step = "bind";
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) goto failed;
  step = "chown";
  if ((req->uid != (uid_t)-1 || req->gid != (gid_t)-1) &&
      fchownat(priv_fd, "s", req->uid, req->gid, AT_SYMLINK_NOFOLLOW) != 0) {
    goto failed;
  }
  step = "chmod";
  if (fchmodat(priv_fd, "s", req->mode, 0) != 0) goto failed;
  step = "listen";
  if (listen(fd, req->backlog) != 0) goto failed;
  step = "stat";
  if (fstatat(priv_fd, "s", st, AT_SYMLINK_NOFOLLOW) != 0) goto failed;
  return fd;
failed:;
  int error = errno;
  close(fd);
  errno = error;
  return fail_errno(f, step, req->path);
}

/* Moves "s" of the private directory to `name` in the parent, by the rules of unixBind. */
static int place(int parent, int priv_fd, const char *name, const struct bind_request *req,
                 struct failure *f) {
  for (int i = 0; i < 8; i++) {
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return fail_errno(f, "stat", req->path);
      if (renameat2(priv_fd, "s", parent, name, RENAME_NOREPLACE) == 0) return 0;
      if (errno == EEXIST) continue;
      if (errno != EINVAL && errno != ENOSYS) return fail_errno(f, "rename into", req->path);
      /* no RENAME_NOREPLACE here: a hard link never replaces either */
      if (linkat(priv_fd, "s", parent, name, 0) == 0) return 0;
      if (errno == EEXIST) continue;
      return fail_errno(f, "link into", req->path);
    }
    if (!S_ISSOCK(st.st_mode)) return fail(f, EEXIST, "%s: %s (%s): not a socket", req->path);
    if (!req->replace && is_live(parent, name, req->path)) {
      return fail(f, EADDRINUSE, "%s: %s (%s): a live socket", req->path);
    }
    if (renameat(priv_fd, "s", parent, name) == 0) return 0;
    return fail_errno(f, "rename into", req->path);
  }
  return fail(f, EAGAIN, "%s: %s (%s): the name keeps changing", req->path);
}

/* Only root or the daemon's user can rename entries in it: not writable by others, or sticky. */
static int is_safe_dir(const struct stat *st) {
  return (st->st_uid == 0 || st->st_uid == geteuid()) &&
         ((st->st_mode & 022) == 0 || (st->st_mode & S_ISVTX) != 0);
}

/*
 * Where to make the private directory: the parent if nobody else can rename entries in it, else
 * its nearest such ancestor on the same filesystem (the rename into the parent stays atomic, and
 * nobody can swap the private directory between its mkdir and its open), else the parent itself
 * (then a swapped directory costs another try). A new fd.
 */
static int open_stage(int parent) {
  struct stat top, st;
  int cur = fcntl(parent, F_DUPFD_CLOEXEC, 0);
  if (cur < 0 || fstat(cur, &top) != 0) return cur;
  for (int depth = 0; depth < 256; depth++) {
    if (fstat(cur, &st) != 0 || st.st_dev != top.st_dev) break;
    if (is_safe_dir(&st)) return cur;
    int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat next;
    if (up < 0 || fstat(up, &next) != 0 || (next.st_dev == st.st_dev && next.st_ino == st.st_ino)) {
      if (up >= 0) close(up);
      break;
    }
    close(cur);
    cur = up;
  }
  close(cur);
  return fcntl(parent, F_DUPFD_CLOEXEC, 0);
}

static int bind_unix_path(const struct bind_request *req, struct stat *st, struct failure *f) {
  char name[NAME_MAX + 1], priv[32];
  int parent = open_parent(req->path, name, sizeof name, f);
  if (parent < 0) return -1;
  int stage = open_stage(parent);
  if (stage < 0) {
    fail_errno(f, "open the directory of", req->path);
    close(parent);
    return -1;
  }
  int priv_fd = make_private_dir(stage, req->path, priv, sizeof priv, f);
  if (priv_fd < 0 && (f->error == EACCES || f->error == EPERM)) {
    /* an ancestor the daemon may not write (a daemon that is not root): the parent itself */
    close(stage);
    stage = fcntl(parent, F_DUPFD_CLOEXEC, 0);
    priv_fd = stage < 0 ? -1 : make_private_dir(stage, req->path, priv, sizeof priv, f);
  }
  if (priv_fd < 0) {
    close(stage);
    close(parent);
    return -1;
  }
  int fd = bind_private(priv_fd, req, st, f);
  if (fd >= 0 && place(parent, priv_fd, name, req, f) != 0) {
    close(fd);
    fd = -1;
  }
  unlinkat(priv_fd, "s", 0); /* a hard link's private name, or a failed bind's socket */
  remove_private_dir(stage, priv, priv_fd);
  close(priv_fd);
  close(stage);
  close(parent);
  return fd;
}

/* ---- JS glue ---- */

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
