/*
 * Arenas: one per spawn in flight, each its own mapping (guard page, the child's stack, then the
 * plan), so that the child can run in the daemon's memory while the daemon goes on.
 *
 * An arena is pending from clone until it is known to be unused by its child: either the kernel
 * has zeroed child_tid (CLONE_CHILD_CLEARTID does it when the child's exec replaces its memory,
 * or when it exits) with no failure reported, which arena_sweep checks at each spawn and each
 * exit without a system call; or the child has been reaped. A pending arena with a failure
 * report stays until the exit watch has read the report. Freed arenas are kept for reuse (no
 * mmap, no page faults, no munmap with its TLB shootdown per spawn), up to ARENA_CACHE_MAX.
 */
#include "arena.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addon-state.h"

/* The child uses 136 bytes of stack (glibc's clone trampoline included; measured by painting). */
#define ARENA_STACK (8 * 1024)
#define ARENA_DATA (8 * 1024) /* argv, envp, paths, groups, rlimits; more goes to calloc */
#define ARENA_CACHE_MAX 64

static size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

static struct arena *map_arena(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t stack = round_up(ARENA_STACK, page);
  size_t size = page + stack + round_up(sizeof(struct arena) + ARENA_DATA, page);
  char *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                    -1, 0);
  if (base == MAP_FAILED) return NULL;
  if (mprotect(base, page, PROT_NONE) != 0) { /* the guard page: the stack grows down into it */
    munmap(base, size);
    return NULL;
  }
  struct arena *arena = (struct arena *)(base + page + stack);
  arena->base = base;
  arena->size = size;
  return arena;
}

static void unlink_arena(struct arena **head, struct arena *arena) {
  if (arena->prev != NULL) arena->prev->next = arena->next;
  else *head = arena->next;
  if (arena->next != NULL) arena->next->prev = arena->prev;
  arena->prev = arena->next = NULL;
}

/* NULL with errno set (mmap's) when no arena can be mapped. */
struct arena *arena_acquire(struct addon_state *state) {
  struct arena *arena;
  arena_sweep(state);
  if ((arena = state->free_arenas) != NULL) {
    unlink_arena(&state->free_arenas, arena);
    state->cached_arenas--;
  } else if ((arena = map_arena()) == NULL) {
    return NULL;
  }
  arena->owner = NULL;
  arena->pending = 0;
  arena->child_tid = CHILD_GONE;
  arena->report = (struct child_report){.step = STEP_NONE, .error = 0, .rlimit_index = -1};
  arena->err_fd = -1;
  arena->pool.next = arena->data;
  arena->pool.end = (char *)arena->base + arena->size;
  arena->pool.count = 0;
  arena->tmpl = NULL;
  state->live_arenas++;
  return arena;
}

/* Only once the child no longer runs on it: exec'd, exited, or never cloned. */
void arena_release(struct addon_state *state, struct arena *arena) {
  if (arena->pending) unlink_arena(&state->pending_arenas, arena);
  if (arena->owner != NULL) *arena->owner = NULL;
  arena->owner = NULL;
  arena->pending = 0;
  pool_free(&arena->pool);
  if (arena->tmpl != NULL) spawn_template_release(arena->tmpl);
  arena->tmpl = NULL;
  state->live_arenas--;
  if (state->cached_arenas >= ARENA_CACHE_MAX) {
    munmap(arena->base, arena->size);
    return;
  }
  arena->next = state->free_arenas;
  if (arena->next != NULL) arena->next->prev = arena;
  state->free_arenas = arena;
  state->cached_arenas++;
}

/* The child was cloned on it; *owner (the exit watch's pointer) is cleared when it is freed. */
void arena_set_pending(struct addon_state *state, struct arena *arena, struct arena **owner) {
  arena->owner = owner;
  arena->pending = 1;
  arena->next = state->pending_arenas;
  if (arena->next != NULL) arena->next->prev = arena;
  state->pending_arenas = arena;
}

/* Frees the arenas whose child has exec'd: child_tid zeroed and no failure reported. */
void arena_sweep(struct addon_state *state) {
  struct arena *arena = state->pending_arenas, *next;
  for (; arena != NULL; arena = next) {
    next = arena->next;
    /* Acquire: the report, written before the child's exit, is read after its child_tid. */
    if (__atomic_load_n(&arena->child_tid, __ATOMIC_ACQUIRE) == CHILD_GONE &&
        arena->report.step == STEP_NONE) {
      arena_release(state, arena);
    }
  }
}

/* Teardown: the reaper thread now owns the pending arenas (it unmaps each after its reap). */
void arena_abandon_pending(struct addon_state *state) {
  while (state->pending_arenas != NULL) {
    struct arena *arena = state->pending_arenas;
    unlink_arena(&state->pending_arenas, arena);
    if (arena->owner != NULL) *arena->owner = NULL;
    arena->owner = NULL;
    arena->pending = 0;
  }
}

void arena_drop_cache(struct addon_state *state) {
  while (state->free_arenas != NULL) {
    struct arena *arena = state->free_arenas;
    unlink_arena(&state->free_arenas, arena);
    munmap(arena->base, arena->size);
  }
  state->cached_arenas = 0;
}

/* An orphan's arena, from the reaper thread once its child is reaped (orphans.c). */
void arena_unmap(struct arena *arena) {
  pool_free(&arena->pool);
  if (arena->tmpl != NULL) spawn_template_release(arena->tmpl);
  munmap(arena->base, arena->size);
}
