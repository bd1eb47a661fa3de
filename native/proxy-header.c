/*
 * Reading a PROXY protocol header (HAProxy's send-proxy / send-proxy-v2) off an accepted socket
 * without reading a byte past it: the handler gets the raw fd, so its stdin must start exactly
 * at the first byte after the header.
 *
 * proxyPeek(fd, max): recv(MSG_PEEK | MSG_DONTWAIT) of up to `max` bytes (1..65551). Returns a
 *   Buffer with what is waiting (nothing is consumed), an empty Buffer at EOF, or null when
 *   nothing is waiting (EAGAIN). Throws a system error (ECONNRESET...).
 * proxyConsume(fd, count): reads and drops exactly `count` bytes (1..65551) that a peek has
 *   shown are waiting (recv(MSG_DONTWAIT), EINTR retried). Returns how many were dropped: fewer
 *   than `count` only if they were no longer there (EAGAIN, EOF). Throws a system error.
 */
#include "proxy-header.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "names.h"

#define PROXY_HEADER_MAX (16 + 65535)

static int read_args(napi_env env, napi_callback_info info, int32_t *fd, int32_t *count) {
  size_t argc = 2;
  napi_value args[2];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 2 || napi_get_value_int32(env, args[0], fd) != napi_ok ||
      napi_get_value_int32(env, args[1], count) != napi_ok || *fd < 0 || *count < 1 ||
      *count > PROXY_HEADER_MAX) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "(fd, count 1..65551)");
    return -1;
  }
  return 0;
}

napi_value js_proxy_peek(napi_env env, napi_callback_info info) {
  int32_t fd, max;
  char *bytes;
  ssize_t n;
  napi_value result;
  void *data;
  if (read_args(env, info, &fd, &max) != 0) return NULL;
  if ((bytes = malloc((size_t)max)) == NULL) return throw_system_error(env, ENOMEM, "malloc");
  do n = recv(fd, bytes, (size_t)max, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    free(bytes);
    if (err == EAGAIN || err == EWOULDBLOCK) {
      napi_get_null(env, &result);
      return result;
    }
    return throw_system_error(env, err, "recv");
  }
  if (napi_create_buffer_copy(env, (size_t)n, bytes, &data, &result) != napi_ok) result = NULL;
  free(bytes);
  return result;
}

napi_value js_proxy_consume(napi_env env, napi_callback_info info) {
  int32_t fd, count, done = 0;
  char bytes[4096];
  napi_value result;
  if (read_args(env, info, &fd, &count) != 0) return NULL;
  while (done < count) {
    size_t want = (size_t)(count - done) < sizeof bytes ? (size_t)(count - done) : sizeof bytes;
    ssize_t n = recv(fd, bytes, want, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return throw_system_error(env, errno, "recv");
    if (n == 0) break;
    done += (int32_t)n;
  }
  napi_create_int32(env, done, &result);
  return result;
}
