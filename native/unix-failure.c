/*
 * The errors of the Unix socket operations. fail's format takes, in order, `what`, the errno's
 * text and its name: "%s: %s (%s): not a socket" gives "/run/x.sock: file exists (EEXIST): not a
 * socket"; fail_errno's reads "STEP WHAT: TEXT (NAME)". Both return -1.
 */
#include "unix-failure.h"

#include <errno.h>
#include <stdio.h>

#include "names.h"

/* names.c's list, and the socket errors it lacks */
static const char *error_name(int error) {
  if (error == EADDRINUSE) return "EADDRINUSE";
  if (error == ECONNREFUSED) return "ECONNREFUSED";
  return errno_name(error);
}

int fail(struct failure *f, int error, const char *format, const char *what) {
  char text[128];
  describe_errno(error, text, sizeof text);
  f->error = error;
  snprintf(f->message, sizeof f->message, format, what, text, error_name(error));
  return -1;
}

int fail_errno(struct failure *f, const char *step, const char *what) {
  int error = errno;
  char format[64];
  snprintf(format, sizeof format, "%s %%s: %%s (%%s)", step);
  return fail(f, error, format, what);
}

napi_value throw_failure(napi_env env, const struct failure *f) {
  napi_value error, code, message, number;
  napi_create_string_utf8(env, error_name(f->error), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, f->message, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -f->error, &number);
  napi_set_named_property(env, error, "errno", number);
  napi_throw(env, error);
  return NULL;
}
