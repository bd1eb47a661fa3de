/*
 * The walk every Unix socket operation starts with: the socket's parent directory, opened from
 * "/" one component at a time (O_PATH | O_NOFOLLOW). A symlink component is followed only when
 * it is owned by root or by the daemon's euid (the rule of fs.protected_symlinks), else refused.
 * Every later step goes through the directory fd this returns, never by path.
 */
#include "unix-walk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SYMLINKS 40

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

/* A walk in progress: what is left of the path, and the directory reached so far. */
struct walk {
  const char *dir;         /* the directory asked for, for messages */
  char todo[PATH_MAX * 2]; /* holds the rest of the walk, from p on */
  const char *p;
  int cur; /* O_PATH fd of the directory reached so far; -1 once lost */
  int links;
};

/*
 * A symlink component (`link`, O_PATH, closed here): followed only when root or the daemon's
 * euid owns it, by putting its target before the rest of the walk. -1 with `f` set.
 */
static int follow_symlink(struct walk *w, int link, const struct stat *st, const char *comp,
                          struct failure *f) {
  char target[PATH_MAX], rest[PATH_MAX * 2];
  if (st->st_uid != 0 && st->st_uid != geteuid()) {
    char why[PATH_MAX + 512];
    snprintf(why, sizeof why,
             "refusing to follow the symlink \"%.255s\" in %s: it is owned by uid %u, neither "
             "root nor the daemon's user",
             comp, w->dir, (unsigned)st->st_uid);
    close(link);
    return fail(f, EPERM, "%s: %s (%s)", why);
  }
  ssize_t n = readlinkat(link, "", target, sizeof target - 1);
  int error = errno;
  close(link);
  if (n < 0 || ++w->links > MAX_SYMLINKS) {
    errno = n < 0 ? error : ELOOP;
    return fail_errno(f, "open directory", w->dir);
  }
  target[n] = '\0';
  snprintf(rest, sizeof rest, "%s", w->p);
  if ((size_t)snprintf(w->todo, sizeof w->todo, "%s/%s", target, rest) >= sizeof w->todo) {
    return fail(f, ENAMETOOLONG, "open directory %s: %s (%s)", w->dir);
  }
  w->p = w->todo;
  if (target[0] != '/') return 0;
  close(w->cur);
  w->cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  return w->cur < 0 ? fail_errno(f, "open", "/") : 0;
}

/*
 * Opens directory `dir` from "/" one component at a time, never following a symlink that is not
 * owned by root or the daemon's euid. Returns an O_PATH fd, or -1 with `f` set.
 */
static int open_dir_safely(const char *dir, struct failure *f) {
  struct walk w = {.dir = dir, .links = 0};
  char comp[NAME_MAX + 1];
  if ((w.cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
    return fail_errno(f, "open", "/");
  }
  snprintf(w.todo, sizeof w.todo, "%s", dir);
  w.p = w.todo;
  for (;;) {
    while (*w.p == '/') w.p++;
    if (*w.p == '\0') return w.cur;
    size_t len = strcspn(w.p, "/");
    if (len > NAME_MAX) {
      close(w.cur);
      return fail(f, ENAMETOOLONG, "open %s: %s (%s)", dir);
    }
    memcpy(comp, w.p, len);
    comp[len] = '\0';
    w.p += len;
    if (strcmp(comp, ".") == 0) continue;
    int next = openat(w.cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (next < 0 || fstat(next, &st) != 0) {
      int error = errno;
      if (next >= 0) close(next);
      close(w.cur);
      errno = error;
      return fail_errno(f, "open directory", dir);
    }
    if (S_ISDIR(st.st_mode)) {
      close(w.cur);
      w.cur = next;
      continue;
    }
    if (!S_ISLNK(st.st_mode)) {
      close(next);
      close(w.cur);
      return fail(f, ENOTDIR, "open directory %s: %s (%s)", dir);
    }
    if (follow_symlink(&w, next, &st, comp, f) != 0) {
      if (w.cur >= 0) close(w.cur);
      return -1;
    }
  }
}

/* The safely opened parent of `path`, its last component in `name`. */
int open_parent(const char *path, char *name, size_t name_size, struct failure *f) {
  char dir[PATH_MAX];
  if (split_path(path, dir, sizeof dir, name, name_size, f) != 0) return -1;
  return open_dir_safely(dir[0] == '\0' ? "/" : dir, f);
}
