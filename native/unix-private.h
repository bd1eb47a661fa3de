/*
 * unix-private.c: a Unix socket bound in a fresh private directory, given its owner and mode
 * there, then renamed into place.
 */
#ifndef SOCKETEER_UNIX_PRIVATE_H
#define SOCKETEER_UNIX_PRIVATE_H

#include <sys/stat.h>
#include <sys/types.h>

#include "unix-failure.h"

struct bind_request {
  const char *path;
  mode_t mode;
  uid_t uid; /* (uid_t)-1: unchanged */
  gid_t gid;
  int backlog;
  int replace;
};

int bind_unix_path(const struct bind_request *req, struct stat *st, struct failure *f);

#endif
