/* libckptmpi-replay.so: preloaded into the program (upper half) by
 * `ckptmpi debug`, it records what the program observes of the outside
 * world that a restart would not give back the same way, and gives back
 * the recorded outcomes when a restart re-executes (replay_log.h):
 *
 *   read() from anything but a regular file (a terminal, pipe, socket);
 *     regular files are rolled back by the restart itself
 *   clock_gettime(), gettimeofday(), time()
 *   getrandom()
 *
 * Standard input read through stdio (fgets, scanf...) is covered by
 * replay_stdin.c: glibc's stdio calls its internal read, not read().
 * Without CKPTMPI_REPLAY_LOG every call goes straight through. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "replay/replay_log.h"

#define REAL(name) \
	static __typeof__(name) *real_##name; \
	if (!real_##name) \
		real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static int recorded_fd(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

ssize_t replay_read(int fd, void *buf, size_t count)
{
	struct replay_rec r;
	ssize_t n;
	REAL(read);

	if (!replay_on() || !recorded_fd(fd))
		return real_read(fd, buf, count);
	if (replay_next(REPLAY_READ, fd, (int64_t)count, &r, buf, count)) {
		errno = r.err;
		return (ssize_t)r.ret;
	}
	n = real_read(fd, buf, count);
	replay_record(REPLAY_READ, fd, (int64_t)count, n, errno, buf, n > 0 ? (size_t)n : 0);
	return n;
}

ssize_t read(int fd, void *buf, size_t count) { return replay_read(fd, buf, count); }

int clock_gettime(clockid_t id, struct timespec *ts)
{
	struct replay_rec r;
	struct timespec t;
	int rc;
	REAL(clock_gettime);

	if (!replay_on())
		return real_clock_gettime(id, ts);
	if (replay_next(REPLAY_CLOCK, id, 0, &r, &t, sizeof t)) {
		if (r.ret == 0)
			*ts = t;
		errno = r.err;
		return (int)r.ret;
	}
	rc = real_clock_gettime(id, &t);
	replay_record(REPLAY_CLOCK, id, 0, rc, errno, &t, rc == 0 ? sizeof t : 0);
	if (rc == 0)
		*ts = t;
	return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct replay_rec r;
	struct timeval t;
	int rc;
	REAL(gettimeofday);

	if (!replay_on())
		return real_gettimeofday(tv, tz);
	if (replay_next(REPLAY_GETTIMEOFDAY, 0, 0, &r, &t, sizeof t)) {
		if (r.ret == 0)
			*tv = t;
		if (tz)
			memset(tz, 0, sizeof(struct timezone));
		errno = r.err;
		return (int)r.ret;
	}
	rc = real_gettimeofday(&t, tz);
	replay_record(REPLAY_GETTIMEOFDAY, 0, 0, rc, errno, &t, rc == 0 ? sizeof t : 0);
	if (rc == 0)
		*tv = t;
	return rc;
}

time_t time(time_t *out)
{
	struct replay_rec r;
	time_t t;
	REAL(time);

	if (!replay_on())
		return real_time(out);
	if (replay_next(REPLAY_TIME, 0, 0, &r, &t, 0))
		t = (time_t)r.ret;
	else {
		t = real_time(NULL);
		replay_record(REPLAY_TIME, 0, 0, t, 0, NULL, 0);
	}
	if (out)
		*out = t;
	return t;
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	struct replay_rec r;
	ssize_t n;
	REAL(getrandom);

	if (!replay_on())
		return real_getrandom(buf, len, flags);
	if (replay_next(REPLAY_GETRANDOM, (int64_t)len, flags, &r, buf, len)) {
		errno = r.err;
		return (ssize_t)r.ret;
	}
	n = real_getrandom(buf, len, flags);
	replay_record(REPLAY_GETRANDOM, (int64_t)len, flags, n, errno, buf, n > 0 ? (size_t)n : 0);
	return n;
}
