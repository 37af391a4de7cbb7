/* The program's output after a SIGTERM, held for the restart
 * (core/held_output.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "core/held_output.h"
#include "core/log.h"
#include "core/procstate.h"
#include "core/rawsys.h"

/* One of the program's two streams. memfd and orig are the runtime's
 * (lower) fds, made at the start so the handler only moves fds around:
 * orig receives the program's fd at the SIGTERM, memfd takes its place. */
static struct stream {
	int fd;                /* 1 or 2 */
	int memfd, orig;       /* -1: not held */
	volatile int active;   /* the program's fd is the memory file now */
	char *kept;            /* a restart: what its generation held */
	size_t kept_len;
} streams[2] = { {1, -1, -1, 0, NULL, 0}, {2, -1, -1, 0, NULL, 0} };
static volatile int begun, printed;

int held_output_init(void)
{
	static const char *const names[2] = {"ckptmpi-held-stdout", "ckptmpi-held-stderr"};

	for (int i = 0; i < 2; i++) {
		struct stream *s = &streams[i];
		int m = memfd_create(names[i], MFD_CLOEXEC), o;

		if (m < 0) {
			log_error("memfd_create (the program's %s after a SIGTERM): %s",
			          i ? "stderr" : "stdout", strerror(errno));
			return -1;
		}
		if ((o = procstate_move_lower_fd(m)) < 0) {
			close(m);
			return -1;
		}
		m = o;
		/* a place for the program's fd at the SIGTERM (a copy of it now;
		 * /dev/null when it is closed) */
		o = fcntl(s->fd, F_DUPFD_CLOEXEC, 900);
		if (o < 0 && (o = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0)
			o = procstate_move_lower_fd(o);
		else if (o >= 0)
			procstate_register_lower_fd(o);
		if (o < 0) {
			log_error("the program's %s after a SIGTERM: no fd for it", i ? "stderr" : "stdout");
			close(m);
			return -1;
		}
		s->memfd = m;
		s->orig = o;
	}
	return 0;
}

/* What launchers give their processes: a pipe, a socket, or a terminal
 * that is not the process's controlling one (Open MPI's orted gives its
 * ranks' stdout a pty of its own). A user's terminal, a file, /dev/null:
 * not held. Raw syscalls (a signal handler). */
static int launcher_stream(int fd)
{
	struct stat st;
	struct termios t;
	int sid;

	if (raw_syscall2(SYS_fstat, fd, &st))
		return 0;
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		return 1;
	return S_ISCHR(st.st_mode) && raw_syscall3(SYS_ioctl, fd, TCGETS, &t) == 0 &&
	       raw_syscall3(SYS_ioctl, fd, TIOCGSID, &sid) < 0;
}

void held_output_begin(void)
{
	if (__atomic_exchange_n(&begun, 1, __ATOMIC_ACQ_REL))
		return;
	for (int i = 0; i < 2; i++) {
		struct stream *s = &streams[i];

		if (s->memfd < 0 || !launcher_stream(s->fd))
			continue;
		/* the program's fd kept aside, then the memory file in its place
		 * (each dup3 atomic: a write under way goes to one or the other) */
		if (raw_syscall3(SYS_dup3, s->fd, s->orig, O_CLOEXEC) < 0)
			continue;
		if (raw_syscall3(SYS_dup3, s->memfd, s->fd, 0) < 0)
			continue;
		__atomic_store_n(&s->active, 1, __ATOMIC_RELEASE);
		/* the runtime's own lines still go out at once */
		if (s->fd == 2)
			log_set_fd(s->orig);
	}
}

/* bytes held in s so far, or -1 */
static long held_size(const struct stream *s)
{
	struct stat st;

	if (fstat(s->memfd, &st))
		return -1;
	return (long)st.st_size;
}

int held_output_capture(struct ck_image *img)
{
	for (int i = 0; i < 2; i++) {
		struct stream *s = &streams[i];
		struct ck_fd *f, *nv;
		long n;

		if (!__atomic_load_n(&s->active, __ATOMIC_ACQUIRE))
			continue;
		if ((n = held_size(s)) < 0) {
			log_error("the program's %s held since the SIGTERM: fstat: %s",
			          i ? "stderr" : "stdout", strerror(errno));
			return -1;
		}
		if (!n)
			continue;
		if (!(nv = realloc(img->fds, (img->nfds + 1) * sizeof *nv)))
			return -1;
		img->fds = nv;
		f = &img->fds[img->nfds];
		memset(f, 0, sizeof *f);
		f->fd = s->fd;
		f->kind = CK_FD_HELD;
		f->data_len = (uint64_t)n;
		f->path = strdup(i ? "(stderr held since SIGTERM)" : "(stdout held since SIGTERM)");
		f->data = malloc((size_t)n);
		if (!f->path || !f->data || pread(s->memfd, f->data, (size_t)n, 0) != n) {
			log_error("the program's %s held since the SIGTERM (%ld bytes) cannot be read",
			          i ? "stderr" : "stdout", n);
			free(f->path);
			free(f->data);
			return -1;
		}
		img->nfds++;
		log_info("%ld bytes the program wrote to its %s since the SIGTERM are kept with the "
		         "generation", n, i ? "stderr" : "stdout");
	}
	return 0;
}

/* write all of [p, p+n) to fd, or give up (a reader gone) */
static void write_out(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

void held_output_release(void)
{
	for (int i = 0; i < 2; i++) {
		struct stream *s = &streams[i];
		char buf[65536];
		off_t off = 0;
		ssize_t n;

		if (!__atomic_exchange_n(&s->active, 0, __ATOMIC_ACQ_REL))
			continue;
		if (s->fd == 2)
			log_set_fd(2);
		/* the program's fd back first: what it writes meanwhile follows */
		if (dup3(s->orig, s->fd, 0) < 0)
			continue;
		while ((n = pread(s->memfd, buf, sizeof buf, off)) > 0) {
			write_out(s->fd, buf, (size_t)n);
			off += n;
		}
	}
}

int held_output_restored(const struct ck_image *img)
{
	for (size_t k = 0; k < img->nfds; k++) {
		const struct ck_fd *f = &img->fds[k];
		struct stream *s;

		if (f->kind != CK_FD_HELD || (f->fd != 1 && f->fd != 2) || !f->data_len)
			continue;
		s = &streams[f->fd - 1];
		free(s->kept);
		if (!(s->kept = malloc(f->data_len)))
			return -1;
		memcpy(s->kept, f->data, f->data_len);
		s->kept_len = f->data_len;
	}
	return 0;
}

void held_output_print(void)
{
	if (__atomic_exchange_n(&printed, 1, __ATOMIC_ACQ_REL))
		return;
	for (int i = 0; i < 2; i++) {
		struct stream *s = &streams[i];

		if (!s->kept_len)
			continue;
		write_out(s->fd, s->kept, s->kept_len);
		log_debug("restart: %zu bytes the program wrote to its %s after the SIGTERM before "
		          "this generation, written again", s->kept_len, i ? "stderr" : "stdout");
		free(s->kept);
		s->kept = NULL;
		s->kept_len = 0;
	}
}
