/*
 * The options object of spawn() into a launch_plan: every allocation and check happens here,
 * before the clone. Malformed options throw a TypeError (a bug in the caller). The memory comes
 * from the spawn's arena (calloc beyond it), which the child reads until it has exec'd; the
 * child's scratch is reserved here too (passFds lifted above their targets, LISTEN_PID's digits).
 */
#include "spawn-options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not zeroed when taken from the arena: every caller fills what it asks for. */
static void *pool_alloc(struct pool *pool, size_t size) {
  size_t rounded = (size + 15) & ~(size_t)15;
  void *mem;
  if ((size_t)(pool->end - pool->next) >= rounded) {
    mem = pool->next;
    pool->next += rounded;
    return mem;
  }
  if (pool->count == sizeof pool->items / sizeof pool->items[0]) return NULL;
  if ((mem = calloc(1, size)) != NULL) pool->items[pool->count++] = mem;
  return mem;
}

void pool_free(struct pool *pool) {
  while (pool->count > 0) free(pool->items[--pool->count]);
}

void spawn_template_hold(struct spawn_template *t) {
  __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void spawn_template_release(struct spawn_template *t) {
  if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  pool_free(&t->pool);
  free(t);
}

static int invalid(napi_env env, const char *key, const char *expected) {
  char message[128];
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return -1;
  snprintf(message, sizeof message, "spawn: options.%s must be %s", key, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return -1;
}

/* The property, or NULL when it is missing, undefined or null. */
static napi_value get_prop(napi_env env, napi_value obj, const char *key) {
  napi_value value;
  napi_valuetype type;
  if (napi_get_named_property(env, obj, key, &value) != napi_ok) return NULL;
  if (napi_typeof(env, value, &type) != napi_ok) return NULL;
  return type == napi_undefined || type == napi_null ? NULL : value;
}

/* With dest NULL: the length only. Fails on a non-string or an embedded NUL. */
static int read_string(napi_env env, napi_value value, char *dest, size_t size, size_t *len) {
  if (napi_get_value_string_utf8(env, value, dest, size, len) != napi_ok) return -1;
  if (dest != NULL && strlen(dest) != *len) return -1; /* embedded NUL */
  return 0;
}

static int read_optional_string(napi_env env, napi_value obj, const char *key, struct pool *pool,
                                const char **out) {
  napi_value value = get_prop(env, obj, key);
  size_t len;
  char *copy;
  *out = NULL;
  if (value == NULL) return 0;
  if (read_string(env, value, NULL, 0, &len) != 0 || len == 0) return invalid(env, key, "a string");
  if ((copy = pool_alloc(pool, len + 1)) == NULL) return invalid(env, key, "allocatable");
  if (read_string(env, value, copy, len + 1, &len) != 0) return invalid(env, key, "NUL-free");
  *out = copy;
  return 0;
}

/* An array of strings as a NULL-terminated vector and its strings, in one allocation. */
static int read_string_vector(napi_env env, napi_value obj, const char *key, struct pool *pool,
                              char ***out) {
  napi_value array = get_prop(env, obj, key), item;
  uint32_t count;
  size_t total = 0, len;
  bool is_array = false;
  if (array != NULL) napi_is_array(env, array, &is_array);
  if (!is_array || napi_get_array_length(env, array, &count) != napi_ok) {
    return invalid(env, key, "an array of strings");
  }
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, array, i, &item) != napi_ok ||
        read_string(env, item, NULL, 0, &len) != 0) {
      return invalid(env, key, "an array of strings");
    }
    total += len + 1;
  }
  char **vector = pool_alloc(pool, sizeof(char *) * (count + 1) + total);
  if (vector == NULL) return invalid(env, key, "allocatable");
  char *cursor = (char *)(vector + count + 1);
  for (uint32_t i = 0; i < count; i++) {
    napi_get_element(env, array, i, &item);
    if (read_string(env, item, cursor, total, &len) != 0) return invalid(env, key, "NUL-free");
    vector[i] = cursor;
    cursor += len + 1, total -= len + 1;
  }
  vector[count] = NULL;
  *out = vector;
  return 0;
}

/* A number in [min, max], integral; *has = 0 when null or missing. */
static int read_optional_int(napi_env env, napi_value obj, const char *key, double min,
                             double max, int *has, double *out) {
  napi_value value = get_prop(env, obj, key);
  *has = 0;
  if (value == NULL) return 0;
  if (napi_get_value_double(env, value, out) != napi_ok || !(*out >= min && *out <= max) ||
      *out != (double)(long long)*out) { /* the negated range test also refuses NaN */
    return invalid(env, key, "an integer in range, or null");
  }
  *has = 1;
  return 0;
}

static int read_optional_bool(napi_env env, napi_value obj, const char *key, int fallback,
                              int *out) {
  napi_value value = get_prop(env, obj, key);
  bool flag = fallback;
  if (value != NULL && napi_get_value_bool(env, value, &flag) != napi_ok) {
    return invalid(env, key, "a boolean");
  }
  *out = flag;
  return 0;
}

static int read_groups(napi_env env, napi_value obj, struct pool *pool, struct launch_plan *p) {
  napi_value array = get_prop(env, obj, "groups"), item;
  uint32_t count = 0;
  bool is_array = false;
  double gid;
  p->set_groups = array != NULL || p->has_uid; /* a uid drop without a list clears them */
  p->ngroups = 0;
  if (array == NULL) return 0;
  napi_is_array(env, array, &is_array);
  if (!is_array || napi_get_array_length(env, array, &count) != napi_ok || count > 65536) {
    return invalid(env, "groups", "an array of gids");
  }
  if ((p->groups = pool_alloc(pool, sizeof(gid_t) * (count + 1))) == NULL) return -1;
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, array, i, &item) != napi_ok ||
        napi_get_value_double(env, item, &gid) != napi_ok || !(gid >= 0 && gid < 4294967295.0) ||
        gid != (double)(gid_t)gid) {
      return invalid(env, "groups", "an array of gids");
    }
    p->groups[i] = (gid_t)gid;
  }
  p->ngroups = count;
  return 0;
}

static const struct {
  const char *name;
  int resource;
} rlimit_resources[] = {
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"as", RLIMIT_AS},
    {"data", RLIMIT_DATA},     {"stack", RLIMIT_STACK}, {"cpu", RLIMIT_CPU},
    {"fsize", RLIMIT_FSIZE},   {"core", RLIMIT_CORE},   {"memlock", RLIMIT_MEMLOCK},
};

static int read_rlimit(napi_env env, napi_value item, struct rlimit_setting *out) {
  char name[16];
  size_t len, i, n = sizeof rlimit_resources / sizeof rlimit_resources[0];
  int has_soft, has_hard;
  double soft, hard;
  napi_value resource = get_prop(env, item, "resource");
  if (resource == NULL || read_string(env, resource, name, sizeof name, &len) != 0) return -1;
  for (i = 0; i < n && strcmp(name, rlimit_resources[i].name) != 0; i++) {
  }
  if (i == n) return -1;
  if (read_optional_int(env, item, "soft", 0, 9007199254740991.0, &has_soft, &soft) != 0 ||
      read_optional_int(env, item, "hard", 0, 9007199254740991.0, &has_hard, &hard) != 0) {
    return -1;
  }
  out->resource = rlimit_resources[i].resource;
  out->name = rlimit_resources[i].name;
  out->limit.rlim_cur = has_soft ? (rlim_t)soft : RLIM_INFINITY;
  out->limit.rlim_max = has_hard ? (rlim_t)hard : RLIM_INFINITY;
  return 0;
}

static int read_rlimits(napi_env env, napi_value obj, struct pool *pool, struct launch_plan *p) {
  napi_value array = get_prop(env, obj, "rlimits"), item;
  uint32_t count = 0;
  bool is_array = false;
  p->nrlimits = 0;
  if (array == NULL) return 0;
  napi_is_array(env, array, &is_array);
  if (!is_array || napi_get_array_length(env, array, &count) != napi_ok || count > 64) {
    return invalid(env, "rlimits", "an array of limits");
  }
  if ((p->rlimits = pool_alloc(pool, sizeof(struct rlimit_setting) * (count + 1))) == NULL) {
    return -1;
  }
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, array, i, &item) != napi_ok ||
        read_rlimit(env, item, &p->rlimits[i]) != 0) {
      return invalid(env, "rlimits", "an array of { resource, soft, hard }");
    }
  }
  p->nrlimits = count;
  return 0;
}

static int read_stderr_mode(napi_env env, napi_value obj, struct launch_plan *p) {
  napi_value value = get_prop(env, obj, "stderr");
  char mode[8];
  size_t len;
  if (value == NULL || read_string(env, value, mode, sizeof mode, &len) != 0) mode[0] = '\0';
  if (strcmp(mode, "pipe") == 0) p->stderr_mode = STDERR_PIPE;
  else if (strcmp(mode, "socket") == 0) p->stderr_mode = STDERR_SOCKET;
  else if (strcmp(mode, "null") == 0) p->stderr_mode = STDERR_NULL;
  else return invalid(env, "stderr", "'pipe', 'socket' or 'null'");
  return 0;
}

/* passFds: the fds, then as many ints of scratch for the child. */
static int read_pass_fds(napi_env env, napi_value obj, struct pool *pool, struct launch_plan *p) {
  napi_value array = get_prop(env, obj, "passFds"), item;
  uint32_t count = 0;
  bool is_array = false;
  double fd;
  int *fds;
  if (array == NULL) return 0; /* missing: none, as [] */
  napi_is_array(env, array, &is_array);
  if (!is_array || napi_get_array_length(env, array, &count) != napi_ok || count > MAX_PASS_FDS ||
      (fds = pool_alloc(pool, sizeof(int) * 2 * count)) == NULL) {
    return invalid(env, "passFds", "an array of at most 1024 fds");
  }
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, array, i, &item) != napi_ok ||
        napi_get_value_double(env, item, &fd) != napi_ok || !(fd >= 0 && fd <= 2147483647.0) ||
        fd != (double)(int)fd) {
      return invalid(env, "passFds", "an array of fds");
    }
    fds[i] = (int)fd;
  }
  p->pass_fds = fds, p->pass_scratch = fds + count, p->npass = count;
  return 0;
}

/* setListenPid: envp without its LISTEN_PID entries, then "LISTEN_PID=" with room for a pid. */
static int add_listen_pid(napi_env env, struct pool *pool, struct launch_plan *p) {
  size_t n = 0, kept = 0, prefix = sizeof LISTEN_PID_PREFIX - 1;
  char **envp;
  while (p->envp[n] != NULL) n++;
  envp = pool_alloc(pool, sizeof(char *) * (n + 2) + LISTEN_PID_SIZE);
  if (envp == NULL) return invalid(env, "envp", "allocatable");
  for (size_t i = 0; i < n; i++) {
    if (strncmp(p->envp[i], LISTEN_PID_PREFIX, prefix) != 0) envp[kept++] = p->envp[i];
  }
  p->listen_pid = memcpy(envp + n + 2, LISTEN_PID_PREFIX, prefix + 1);
  envp[kept++] = p->listen_pid, envp[kept] = NULL;
  p->envp = envp;
  return 0;
}

static int read_ids(napi_env env, napi_value obj, struct launch_plan *p) {
  double uid, gid, umask_value, nice_value;
  if (read_optional_int(env, obj, "uid", 0, 4294967294.0, &p->has_uid, &uid) != 0 ||
      read_optional_int(env, obj, "gid", 0, 4294967294.0, &p->has_gid, &gid) != 0 ||
      read_optional_int(env, obj, "umask", 0, 0777, &p->has_umask, &umask_value) != 0 ||
      read_optional_int(env, obj, "nice", -20, 19, &p->has_nice, &nice_value) != 0) {
    return -1;
  }
  p->uid = p->has_uid ? (uid_t)uid : 0;
  p->gid = p->has_gid ? (gid_t)gid : 0;
  p->umask_value = p->has_umask ? (mode_t)umask_value : 0;
  p->nice_value = p->has_nice ? (int)nice_value : 0;
  return 0;
}

/* The options a prepared spawn keeps: everything but the connection's own. */
int read_fixed_options(napi_env env, napi_value obj, struct pool *pool, struct launch_plan *p) {
  memset(p, 0, sizeof *p);
  p->cgroup_fd = -1;
  if (read_optional_string(env, obj, "file", pool, &p->file) != 0) return -1;
  if (p->file == NULL) return invalid(env, "file", "a string");
  if (read_string_vector(env, obj, "argv", pool, &p->argv) != 0 ||
      read_optional_string(env, obj, "cwd", pool, &p->cwd) != 0 ||
      read_optional_string(env, obj, "chroot", pool, &p->chroot_dir) != 0 ||
      read_ids(env, obj, p) != 0 || read_groups(env, obj, pool, p) != 0 ||
      read_rlimits(env, obj, pool, p) != 0 || read_stderr_mode(env, obj, p) != 0 ||
      read_optional_bool(env, obj, "noNewPrivileges", 0, &p->no_new_privs) != 0) {
    return -1;
  }
  return read_optional_bool(env, obj, "waitForSession", 1, &p->wait_for_session);
}

int read_spawn_options(napi_env env, napi_value obj, struct pool *pool, struct launch_plan *p) {
  int has_fd, set_listen_pid;
  double fd;
  if (read_fixed_options(env, obj, pool, p) != 0 ||
      read_string_vector(env, obj, "envp", pool, &p->envp) != 0 ||
      read_optional_int(env, obj, "stdinFd", 0, 2147483647.0, &has_fd, &fd) != 0) {
    return -1;
  }
  if (!has_fd) return invalid(env, "stdinFd", "a file descriptor");
  p->socket_fd = (int)fd;
  if (read_optional_int(env, obj, "cgroupFd", 0, 2147483647.0, &has_fd, &fd) != 0) return -1;
  p->cgroup_fd = has_fd ? (int)fd : -1;
  if (read_pass_fds(env, obj, pool, p) != 0 ||
      read_optional_bool(env, obj, "setListenPid", 0, &set_listen_pid) != 0 ||
      (set_listen_pid && add_listen_pid(env, pool, p) != 0)) {
    return -1;
  }
  return 0;
}

/*
 * One string, `count` entries joined by NUL bytes: one copy into the pool and one pass to find
 * the entries. An entry holding a NUL of its own shows as one entry too many: refused.
 */
int read_env_block(napi_env env, napi_value block, uint32_t count, struct pool *pool,
                   struct launch_plan *p) {
  size_t len, seen = 0;
  char **vector, *text, *start;
  if (napi_get_value_string_utf8(env, block, NULL, 0, &len) != napi_ok) {
    return invalid(env, "envp", "a string");
  }
  vector = pool_alloc(pool, sizeof(char *) * ((size_t)count + 1) + len + 1);
  if (vector == NULL) return invalid(env, "envp", "allocatable");
  start = text = (char *)(vector + count + 1);
  napi_get_value_string_utf8(env, block, text, len + 1, &len);
  for (size_t i = 0; count > 0 && i <= len; i++) {
    if (i < len && text[i] != '\0') continue;
    if (seen == count) return invalid(env, "envp", "NUL-free");
    vector[seen++] = start;
    start = text + i + 1;
  }
  if (count == 0 && len > 0) return invalid(env, "envp", "NUL-free");
  if (seen != count) return invalid(env, "envp", "NUL-free");
  vector[count] = NULL;
  p->envp = vector;
  return 0;
}
