/* Whether a tracer (a debugger) is attached to this process: TracerPid
 * in /proc/self/status. Header-only, for the runtime and the MPI shim
 * alike. */
#ifndef CKPTMPI_CORE_TRACED_H
#define CKPTMPI_CORE_TRACED_H

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline int process_traced(void)
{
	char buf[4096];
	const char *t;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	t = strstr(buf, "TracerPid:");
	return t && atoi(t + 10) != 0;
}

#endif
