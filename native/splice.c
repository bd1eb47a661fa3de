/*
 * proxyStart(clientFd, target, options, onEnd) -> id: the addon takes `clientFd` (an accepted
 * stream socket; the caller must not use or close it afterwards), connects to `target`
 * ({kind: 'unix', path, abstract} or {kind: 'tcp', host, port}, host an IP literal) without
 * blocking, writes options.header (a Buffer of at most 256 bytes, or null) to it, then copies
 * both ways with splice(2) (splice-conn.c). onEnd({connected, bytesFromClient, bytesToClient,
 * code, syscall}) is called once, after both sockets are closed: code null for a clean end (both
 * sides ended), else the errno name (ECONNREFUSED, ETIMEDOUT with syscall connect or idle, ...).
 * options.connectTimeoutMs bounds the connect; options.idleTimeoutMs (0: none) ends a
 * connection that moved no byte for that long. Throws only a TypeError for malformed arguments
 * (then `clientFd` is still the caller's).
 *
 * proxyClose(id): ends that connection now (onEnd then comes with code null); false when there
 * is none. The list is the process's (one loop thread uses it: the main thread's env). The env's teardown ends every connection without a call.
 */
#include "splice.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <uv.h>

#include "addon-state.h"
#include "names.h"
#include "splice-conn.h"

static struct splice_conn *connections;
static uint32_t next_id = 1;

static void unlink_conn(struct splice_conn *c) {
  if (c->prev != NULL) c->prev->next = c->next;
  else if (connections == c) connections = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void release_refs(struct splice_conn *c) {
  napi_env env = c->state->env;
  napi_delete_reference(env, c->on_end);
  napi_delete_reference(env, c->resource);
  napi_async_destroy(env, c->async_context);
}

/* libuv's names cover the network errors (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH...). */
static const char *code_name(int err) {
  const char *name = uv_err_name(-err);
  return strncmp(name, "Unknown", 7) == 0 ? errno_name(err) : name;
}

static napi_value make_result(napi_env env, struct splice_conn *c) {
  napi_value result, value;
  napi_create_object(env, &result);
  napi_get_boolean(env, c->connected, &value);
  napi_set_named_property(env, result, "connected", value);
  napi_create_double(env, (double)c->up.bytes, &value);
  napi_set_named_property(env, result, "bytesFromClient", value);
  napi_create_double(env, (double)c->down.bytes, &value);
  napi_set_named_property(env, result, "bytesToClient", value);
  if (c->err == 0) napi_get_null(env, &value);
  else napi_create_string_utf8(env, code_name(c->err), NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "code", value);
  if (c->syscall == NULL) napi_get_null(env, &value);
  else napi_create_string_utf8(env, c->syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "syscall", value);
  return result;
}

void splice_conn_ended(struct splice_conn *c) {
  napi_env env = c->state->env;
  napi_handle_scope scope;
  napi_value fn, resource, arg, ignored, exception;
  bool pending = false;
  unlink_conn(c);
  if (c->notify) {
    napi_open_handle_scope(env, &scope);
    napi_get_reference_value(env, c->on_end, &fn);
    napi_get_reference_value(env, c->resource, &resource);
    arg = make_result(env, c);
    if (napi_make_callback(env, c->async_context, resource, fn, 1, &arg, &ignored) != napi_ok) {
      napi_is_exception_pending(env, &pending);
      if (pending && napi_get_and_clear_last_exception(env, &exception) == napi_ok)
        napi_fatal_exception(env, exception);
    }
    release_refs(c);
    napi_close_handle_scope(env, scope);
  }
  free(c);
}

void stop_splice_watches(struct addon_state *state) {
  for (struct splice_conn *c = connections, *next; c != NULL; c = next) {
    next = c->next;
    if (c->state != state || !c->notify) continue;
    c->notify = 0;
    release_refs(c);
    splice_conn_finish(c, ECANCELED, NULL);
  }
}

static int get_string(napi_env env, napi_value object, const char *key, char *buf, size_t size,
                      size_t *len) {
  napi_value value;
  if (napi_get_named_property(env, object, key, &value) != napi_ok) return -1;
  return napi_get_value_string_utf8(env, value, buf, size, len) == napi_ok ? 0 : -1;
}

static int get_number(napi_env env, napi_value object, const char *key, double *out) {
  napi_value value;
  if (napi_get_named_property(env, object, key, &value) != napi_ok) return -1;
  return napi_get_value_double(env, value, out) == napi_ok ? 0 : -1;
}

static int parse_unix(napi_env env, napi_value target, struct splice_conn *c) {
  struct sockaddr_un *sun = (struct sockaddr_un *)&c->addr;
  napi_value value;
  bool abstract = false;
  size_t len = 0;
  char path[sizeof sun->sun_path + 1];
  if (get_string(env, target, "path", path, sizeof path, &len) != 0 || len == 0 ||
      len >= sizeof sun->sun_path)
    return -1;
  if (napi_get_named_property(env, target, "abstract", &value) == napi_ok)
    napi_get_value_bool(env, value, &abstract);
  sun->sun_family = AF_UNIX;
  memcpy(sun->sun_path + (abstract ? 1 : 0), path, len);
  /* a path with its NUL; an abstract name after its leading NUL, without one */
  c->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  return 0;
}

static int parse_tcp(napi_env env, napi_value target, struct splice_conn *c) {
  struct sockaddr_in *in4 = (struct sockaddr_in *)&c->addr;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->addr;
  char host[64];
  size_t len = 0;
  double port = -1;
  if (get_string(env, target, "host", host, sizeof host, &len) != 0 ||
      get_number(env, target, "port", &port) != 0 || port < 1 || port > 65535)
    return -1;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET, in4->sin_port = htons((uint16_t)port);
    c->addr_len = sizeof *in4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) return -1;
  in6->sin6_family = AF_INET6, in6->sin6_port = htons((uint16_t)port);
  c->addr_len = sizeof *in6;
  return 0;
}

static int parse_target(napi_env env, napi_value target, struct splice_conn *c) {
  char kind[8];
  size_t len = 0;
  if (get_string(env, target, "kind", kind, sizeof kind, &len) != 0) return -1;
  if (strcmp(kind, "unix") == 0) return parse_unix(env, target, c);
  if (strcmp(kind, "tcp") == 0) return parse_tcp(env, target, c);
  return -1;
}

static int parse_options(napi_env env, napi_value options, struct splice_conn *c) {
  napi_value header;
  napi_valuetype type;
  bool is_buffer = false;
  void *data;
  size_t len;
  double connect_ms = 0, idle_ms = 0;
  if (get_number(env, options, "connectTimeoutMs", &connect_ms) != 0 || connect_ms < 1 ||
      get_number(env, options, "idleTimeoutMs", &idle_ms) != 0 || idle_ms < 0)
    return -1;
  c->deadline = (uint64_t)connect_ms, c->idle_ms = (uint64_t)idle_ms;
  if (napi_get_named_property(env, options, "header", &header) != napi_ok) return -1;
  napi_typeof(env, header, &type);
  if (type == napi_null || type == napi_undefined) return 0;
  if (napi_is_buffer(env, header, &is_buffer) != napi_ok || !is_buffer) return -1;
  napi_get_buffer_info(env, header, &data, &len);
  if (len > sizeof c->header) return -1;
  memcpy(c->header, data, len);
  c->header_len = len;
  return 0;
}

napi_value js_proxy_start(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 4;
  napi_value args[4], name, resource, id;
  napi_valuetype type = napi_undefined;
  int32_t fd = -1;
  struct splice_conn *c;
  napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state);
  if (argc >= 4) napi_typeof(env, args[3], &type);
  if ((c = calloc(1, sizeof *c)) == NULL) return throw_system_error(env, ENOMEM, "proxyStart");
  if (argc < 4 || type != napi_function || napi_get_value_int32(env, args[0], &fd) != napi_ok ||
      fd < 0 || parse_target(env, args[1], c) != 0 || parse_options(env, args[2], c) != 0) {
    free(c);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "proxyStart(fd, target, {header, connectTimeoutMs, idleTimeoutMs}, onEnd)");
    return NULL;
  }
  c->state = state, c->client = fd, c->target = -1, c->notify = 1, c->id = next_id++;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "SocketeerProxy", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &c->async_context);
  napi_create_reference(env, resource, 1, &c->resource);
  napi_create_reference(env, args[3], 1, &c->on_end);
  c->next = connections;
  if (c->next != NULL) c->next->prev = c;
  connections = c;
  napi_create_uint32(env, c->id, &id);
  splice_conn_start(c);
  return id;
}

napi_value js_proxy_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  uint32_t id = 0;
  struct splice_conn *c = connections;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_uint32(env, arg, &id) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "proxyClose(id)");
    return NULL;
  }
  while (c != NULL && c->id != id) c = c->next;
  if (c != NULL) splice_conn_finish(c, 0, NULL);
  napi_get_boolean(env, c != NULL && c->phase == SPLICE_CLOSING, &result);
  return result;
}
