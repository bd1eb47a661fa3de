/* unix-walk.c: a path's parent directory, opened from "/" without a stranger's symlink. */
#ifndef SOCKETEER_UNIX_WALK_H
#define SOCKETEER_UNIX_WALK_H

#include <stddef.h>

#include "unix-failure.h"

int open_parent(const char *path, char *name, size_t name_size, struct failure *f);

#endif
