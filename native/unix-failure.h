/*
 * unix-failure.c: the errors of the Unix socket operations (unix-bind.c and the files it uses):
 * an errno with a message of our own, thrown as a Node error with that errno's code.
 */
#ifndef SOCKETEER_UNIX_FAILURE_H
#define SOCKETEER_UNIX_FAILURE_H

#include <limits.h>
#include <node_api.h>

/* An error with a code (errno name) and a message of our own. */
struct failure {
  int error;
  char message[PATH_MAX * 2 + 512];
};

int fail(struct failure *f, int error, const char *format, const char *what);
int fail_errno(struct failure *f, const char *step, const char *what);
napi_value throw_failure(napi_env env, const struct failure *f);

#endif
