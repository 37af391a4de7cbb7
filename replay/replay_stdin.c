/* Standard input through the replay log. glibc's stdio reads a stream
 * with its internal read, which no preloaded read() sees; so when fd 0
 * is not a regular file, `stdin` becomes a stream of ours (fopencookie)
 * that reads fd 0 through replay_read(). fileno(stdin) still says 0. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replay/replay_log.h"

ssize_t replay_read(int fd, void *buf, size_t count);

static ssize_t stdin_read(void *cookie, char *buf, size_t size)
{
	(void)cookie;
	return replay_read(0, buf, size);
}

/* after replay_open (constructor 101) */
__attribute__((constructor(102))) static void replay_stdin(void)
{
	cookie_io_functions_t io = {.read = stdin_read};
	struct stat st;
	FILE *f;

	if (!replay_on() || fstat(0, &st) || S_ISREG(st.st_mode))
		return;
	if (!(f = fopencookie(NULL, "r", io)))
		return;
	/* fileno() answers for streams of a file descriptor only */
	f->_fileno = 0;
	f->_flags |= 0x2000; /* _IO_IS_FILEBUF */
	stdin = f;
}
