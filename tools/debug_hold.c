/* ckptmpi-debug-hold PIDFILE COMMAND [ARGS...]: rank R's process of a job
 * run by `ckptmpi debug --rank R -np N` (tools/gdb/ckptmpi_job.py). mpirun
 * starts it in rank R's place; it says its pid (PIDFILE, written whole by
 * a rename), stops itself until GDB has attached, then becomes COMMAND
 * (the runtime) with address randomisation off, as GDB would start it.
 * A program of its own, linked statically: GDB reads the symbols of what
 * it attaches to, at every relaunch of the job. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <unistd.h>

extern char **environ;

/* The environment padded to the same size in every launch
 * (CKPTMPI_DEBUG_PAD): mpirun gives each launch values of other lengths
 * (pids, ports), and the rank's stack would start elsewhere; a reverse
 * command finds the positions it goes back to by their stack pointers. */
#define ENV_STEP 65536
static void pad_environment(void)
{
	size_t total = sizeof "CKPTMPI_DEBUG_PAD=", fill;
	char *pad;

	unsetenv("CKPTMPI_DEBUG_PAD");
	for (char **e = environ; *e; e++)
		total += strlen(*e) + 1;
	fill = (total / ENV_STEP + 1) * ENV_STEP - total;
	if (!(pad = malloc(fill + 1)))
		return;
	memset(pad, 'x', fill);
	pad[fill] = 0;
	setenv("CKPTMPI_DEBUG_PAD", pad, 1);
	free(pad);
}

static int failed(const char *what, const char *path)
{
	fprintf(stderr, "ckptmpi-debug-hold: %s%s%s: %s\n", what, path ? " " : "", path ? path : "",
	        strerror(errno));
	return 127;
}

int main(int argc, char **argv)
{
	char tmp[PATH_MAX], num[32];
	int fd, n, p;

	if (argc < 3) {
		fprintf(stderr, "usage: ckptmpi-debug-hold PIDFILE COMMAND [ARGS...] (run by ckptmpi "
		                "debug --rank R -np N)\n");
		return 2;
	}
	pad_environment();
	p = personality(0xffffffff);
	if (p < 0 || personality((unsigned long)p | ADDR_NO_RANDOMIZE) < 0)
		return failed("personality", NULL);
	snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
	n = snprintf(num, sizeof num, "%d\n", (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, num, (size_t)n) != n || close(fd) || rename(tmp, argv[1]))
		return failed("cannot write", argv[1]);
	if (raise(SIGSTOP))
		return failed("raise(SIGSTOP)", NULL);
	execv(argv[2], argv + 2);
	return failed("cannot execute", argv[2]);
}
