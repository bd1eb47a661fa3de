/* arena.c: one spawn's memory, shared with its child until the child has exec'd or exited. */
#ifndef SOCKETEER_ARENA_H
#define SOCKETEER_ARENA_H

#include <stddef.h>

#include "child.h"
#include "spawn-options.h"

struct addon_state;

/*
 * A guard page, the child's stack, then this header (the stack grows down from it) and the
 * plan's bytes. The parent touches nothing the child reads until the kernel has zeroed
 * child_tid (CLONE_CHILD_CLEARTID: at exec and at exit) or the child has been reaped.
 */
struct arena {
  struct arena *next, *prev; /* the free list, or the pending list */
  struct arena **owner;      /* pending: the watch's pointer, cleared when the arena is freed */
  void *base;
  size_t size;
  int pending;
  int child_tid;               /* enum child_state: a futex, CLONE_CHILD_CLEARTID's word */
  struct child_report report;  /* the child's only writes outside its stack */
  int err_fd;                  /* becomes the child's fd 2 */
  struct launch_plan plan;
  struct pool pool;
  struct spawn_template *tmpl; /* a prepared spawn's: its fixed part of the plan, held */
  _Alignas(16) char data[];    /* up to the end of the mapping: the pool's bytes */
};

struct arena *arena_acquire(struct addon_state *state);
void arena_release(struct addon_state *state, struct arena *arena);
void arena_set_pending(struct addon_state *state, struct arena *arena, struct arena **owner);
void arena_sweep(struct addon_state *state);
void arena_abandon_pending(struct addon_state *state);
void arena_drop_cache(struct addon_state *state);
void arena_unmap(struct arena *arena);

#endif
