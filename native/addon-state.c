/*
 * The per-env state's life: made at load, ended at the env's teardown (addon.c stops every
 * watch first). A watch's uv handles close asynchronously and their callbacks still use the
 * state, so the end waits for the last of them: each close is counted here.
 */
#include "addon-state.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "fds.h"

/* SOCKETEER_NATIVE_VFORK=1, read once per process at the first load. */
static int read_vfork_option(void) {
  static int use_vfork = -1;
  if (use_vfork < 0) {
    const char *value = getenv("SOCKETEER_NATIVE_VFORK");
    use_vfork = value != NULL && strcmp(value, "1") == 0;
  }
  return use_vfork;
}

/* The state, attached to the env's loop and to its teardown; NULL with a JS error thrown. */
struct addon_state *addon_state_new(napi_env env, napi_async_cleanup_hook teardown) {
  struct addon_state *state = calloc(1, sizeof *state);
  if (state == NULL) {
    napi_throw_error(env, "ENOMEM", "socketeer_native: out of memory");
    return NULL;
  }
  state->env = env;
  state->use_vfork = read_vfork_option();
  state->devnull_fd = -1;
  if (napi_get_uv_event_loop(env, &state->loop) != napi_ok ||
      napi_add_async_cleanup_hook(env, teardown, state, &state->cleanup) != napi_ok) {
    free(state);
    napi_throw_error(env, NULL, "socketeer_native: cannot attach to the event loop");
    return NULL;
  }
  return state;
}

void addon_state_handle_closing(struct addon_state *state) {
  state->closing++;
}

void addon_state_handle_closed(struct addon_state *state) {
  state->closing--;
  if (state->tearing_down) addon_state_end(state);
}

/*
 * The last step of teardown: once no handle is closing, tell Node the async cleanup is done
 * and free what the state holds (cached arenas, /dev/null, the fd reserve), then the state.
 */
void addon_state_end(struct addon_state *state) {
  state->tearing_down = 1;
  if (state->closing > 0) return;
  napi_remove_async_cleanup_hook(state->cleanup);
  arena_drop_cache(state);
  if (state->devnull_fd >= 0) close(state->devnull_fd);
  fd_reserve_release(state);
  free(state);
}
