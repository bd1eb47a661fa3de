/* exit-watch.c: a child's exit, reaped through its pidfd and handed to a JS callback. */
#ifndef SOCKETEER_EXIT_WATCH_H
#define SOCKETEER_EXIT_WATCH_H

#include <node_api.h>

struct addon_state;
struct arena;

int open_exit_hub(struct addon_state *state);
int watch_exit(struct addon_state *state, int pidfd, struct arena *arena, napi_value callback);
void stop_exit_watches(struct addon_state *state);

#endif
