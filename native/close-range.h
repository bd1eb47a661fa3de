/* close_range(2), Linux 5.11, for headers that predate it (child.c, fds.c). */
#ifndef SOCKETEER_CLOSE_RANGE_H
#define SOCKETEER_CLOSE_RANGE_H

#include <sys/syscall.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#endif
