/* orphans.c: the reaper of a torn-down environment's children. */
#ifndef SOCKETEER_ORPHANS_H
#define SOCKETEER_ORPHANS_H

#include <stddef.h>

struct arena;

struct orphan {
  int pidfd;
  struct arena *arena; /* pending: unmapped once its child is reaped */
};

struct orphans {
  size_t count;
  struct orphan list[];
};

/* Takes the list (malloc'd) on success. */
int reap_in_background(struct orphans *orphans);

#endif
