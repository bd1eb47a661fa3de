/* fds.c: the daemon's own fds, and the reserve held for a spawn while accepting. */
#ifndef SOCKETEER_FDS_H
#define SOCKETEER_FDS_H

#include <node_api.h>

struct addon_state;

int fd_reserve_fill(struct addon_state *state);
int fd_reserve_release(struct addon_state *state);
napi_value js_close_on_exec_from(napi_env env, napi_callback_info info);

#endif
