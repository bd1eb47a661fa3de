/*
 * Identity look-ups: the peer of a Unix socket (SO_PEERCRED), users and groups through NSS
 * (getpwnam_r and friends, so config resolution needs no `getent`), and a user's group list.
 * NSS calls are synchronous: they are meant for config resolution, not the connection path.
 */
#include "accounts.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "names.h"

#define MAX_NSS_BUFFER (1 << 20)

static void set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value != NULL ? value : "", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, key, v);
}

/* A JS number that is a valid id (not the reserved (uid_t)-1). */
static int get_id(napi_env env, napi_value value, unsigned *id) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) return -1;
  if (!(d >= 0 && d < 4294967295.0) || d != (double)(unsigned)d) return -1; /* NaN too */
  *id = (unsigned)d;
  return 0;
}

/* Reads argument 0 as a name (string, into `name`) or an id (number). 1: name, 0: id. */
static int get_name_or_id(napi_env env, napi_callback_info info, char *name, size_t size,
                          unsigned *id) {
  size_t argc = 1, len;
  napi_value arg;
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_typeof(env, arg, &type) != napi_ok) type = napi_undefined;
  if (type == napi_number && get_id(env, arg, id) == 0) return 0;
  if (type == napi_string && napi_get_value_string_utf8(env, arg, name, size, &len) == napi_ok &&
      len > 0 && len < size - 1) {
    return 1;
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a non-empty name or a valid id");
  return -1;
}

napi_value js_peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t fd;
  struct ucred cred;
  socklen_t len = sizeof cred;

  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, arg, &fd) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a file descriptor");
    return NULL;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return throw_system_error(env, errno, "getsockopt");
  }
  napi_create_object(env, &result);
  set_number(env, result, "pid", cred.pid);
  set_number(env, result, "uid", cred.uid);
  set_number(env, result, "gid", cred.gid);
  return result;
}

napi_value js_group_list(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value args[2], result, item;
  char user[256];
  unsigned gid;
  int count = 32;
  gid_t *groups = NULL;

  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 2 || napi_get_value_string_utf8(env, args[0], user, sizeof user, &len) != napi_ok ||
      len == 0 || len >= sizeof user - 1 || get_id(env, args[1], &gid) != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (userName, gid)");
    return NULL;
  }
  for (;;) {
    int n = count;
    gid_t *grown = realloc(groups, sizeof(gid_t) * (size_t)count);
    if (grown == NULL) return free(groups), throw_system_error(env, ENOMEM, "getgrouplist");
    groups = grown;
    if (getgrouplist(user, gid, groups, &n) >= 0) {
      count = n;
      break;
    }
    count = n > count ? n : count * 2; /* n is the size needed */
    if (count > 65536) return free(groups), throw_system_error(env, ERANGE, "getgrouplist");
  }
  napi_create_array_with_length(env, (size_t)count, &result);
  for (int i = 0; i < count; i++) {
    napi_create_uint32(env, groups[i], &item);
    napi_set_element(env, result, (uint32_t)i, item);
  }
  free(groups);
  return result;
}

/* Runs one *_r look-up with a buffer grown on ERANGE. Returns 0, or the errno. */
#define LOOKUP_R(call, buf, size, rc)                                                       \
  for (size = 1024;; size *= 2) {                                                           \
    char *grown = realloc(buf, size);                                                       \
    if (grown == NULL) {                                                                    \
      rc = ENOMEM;                                                                          \
      break;                                                                                \
    }                                                                                       \
    buf = grown;                                                                            \
    rc = (call);                                                                            \
    if (rc != ERANGE || size >= MAX_NSS_BUFFER) break;                                      \
  }

/* Not found is (0, NULL), but some NSS modules report it as one of these errors. */
static int is_not_found(int rc) { return rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM; }

napi_value js_lookup_user(napi_env env, napi_callback_info info) {
  char name[256], *buf = NULL;
  unsigned id = 0;
  size_t size;
  int rc, by_name = get_name_or_id(env, info, name, sizeof name, &id);
  struct passwd pw, *found = NULL;
  napi_value result;

  if (by_name < 0) return NULL;
  LOOKUP_R(by_name ? getpwnam_r(name, &pw, buf, size, &found)
                   : getpwuid_r((uid_t)id, &pw, buf, size, &found),
           buf, size, rc);
  if (rc != 0 && !is_not_found(rc)) return free(buf), throw_system_error(env, rc, by_name ? "getpwnam_r" : "getpwuid_r");
  if (rc != 0 || found == NULL) return free(buf), napi_get_null(env, &result), result;
  napi_create_object(env, &result);
  set_number(env, result, "uid", pw.pw_uid);
  set_number(env, result, "gid", pw.pw_gid);
  set_string(env, result, "name", pw.pw_name);
  set_string(env, result, "home", pw.pw_dir);
  set_string(env, result, "shell", pw.pw_shell);
  free(buf);
  return result;
}

napi_value js_lookup_group(napi_env env, napi_callback_info info) {
  char name[256], *buf = NULL;
  unsigned id = 0;
  size_t size;
  int rc, by_name = get_name_or_id(env, info, name, sizeof name, &id);
  struct group gr, *found = NULL;
  napi_value result;

  if (by_name < 0) return NULL;
  LOOKUP_R(by_name ? getgrnam_r(name, &gr, buf, size, &found)
                   : getgrgid_r((gid_t)id, &gr, buf, size, &found),
           buf, size, rc);
  if (rc != 0 && !is_not_found(rc)) return free(buf), throw_system_error(env, rc, by_name ? "getgrnam_r" : "getgrgid_r");
  if (rc != 0 || found == NULL) return free(buf), napi_get_null(env, &result), result;
  napi_create_object(env, &result);
  set_number(env, result, "gid", gr.gr_gid);
  set_string(env, result, "name", gr.gr_name);
  free(buf);
  return result;
}
