/*
 * The reaper of a torn-down environment's children (a worker that ended, or the main thread at
 * exit): a detached thread with every signal blocked waits for each child in turn, closes its
 * pidfd and unmaps its arena if it still had one (the child may have been running on it).
 */
#include "orphans.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "arena.h"
#include "launch.h"

static void *reap_orphans(void *arg) {
  struct orphans *orphans = arg;
  for (size_t i = 0; i < orphans->count; i++) {
    int fd = orphans->list[i].pidfd, flags = fcntl(fd, F_GETFL);
    struct arena *arena = orphans->list[i].arena;
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK); /* libuv made it non-blocking */
    reap_child(fd);
    close(fd);
    if (arena != NULL) arena_unmap(arena);
  }
  free(orphans);
  return NULL;
}

int reap_in_background(struct orphans *orphans) {
  pthread_t thread;
  pthread_attr_t attr;
  sigset_t all, old;
  int rc;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the reaper takes none of the daemon's signals */
  rc = pthread_create(&thread, &attr, reap_orphans, orphans);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return rc;
}
