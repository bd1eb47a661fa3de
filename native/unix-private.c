/*
 * unixBind's way to a socket at a path, through the parent directory opened by unix-walk.c:
 * mkdirat a private directory with an unpredictable name (getrandom; EEXIST: another name), mode
 * 0700, opened O_NOFOLLOW and checked (a directory of the daemon's euid, no access for others,
 * empty): nobody else can write in it. The socket is bound to "s" inside it through its fd
 * ("/proc/self/fd/N/s": the magic link pins the directory), chowned and chmodded there, listens,
 * then is renamed into the parent under its name (atomic; RENAME_NOREPLACE when the name is
 * free, so a racing file is never replaced) and the private directory is removed.
 */
#include "unix-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix-walk.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define PRIVATE_TRIES 1024

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

int bind_unix_path(const struct bind_request *req, struct stat *st, struct failure *f) {
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
