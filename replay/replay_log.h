/* The replay log of libckptmpi-replay.so (see replay_calls.c): what a
 * program observed of the outside world, recorded from its start and
 * handed back, call by call, when a restart of one of its checkpoints
 * re-executes the same stretch (ckptmpi debug's reverse commands).
 *
 * The log is a file (CKPTMPI_REPLAY_LOG, next to the session's
 * checkpoints) of fixed size, mapped MAP_SHARED: a checkpoint records
 * such a mapping by path and maps the file again at restart, so records
 * written after the checkpoint survive it. Where the program stands in
 * the log (the offset of its next record) is ordinary private memory:
 * a restart resumes at the checkpoint's own offset. */
#ifndef CKPTMPI_REPLAY_LOG_H
#define CKPTMPI_REPLAY_LOG_H

#include <stddef.h>
#include <stdint.h>

enum replay_kind {
	REPLAY_READ = 1,      /* read(fd, _, count): a = fd, b = count, data = bytes read */
	REPLAY_CLOCK = 2,     /* clock_gettime(id): a = id, data = struct timespec */
	REPLAY_GETTIMEOFDAY = 3, /* data = struct timeval */
	REPLAY_TIME = 4,      /* time(): ret */
	REPLAY_GETRANDOM = 5, /* getrandom(_, len, flags): a = len, b = flags, data = bytes */
};

/* The outcome of one call, as recorded or as it is to be replayed. */
struct replay_rec {
	uint32_t kind;
	uint32_t len;  /* bytes of data after the record */
	int64_t a, b;  /* the call's arguments that must match (see the kinds) */
	int64_t ret;
	int32_t err;   /* errno when ret < 0 */
	uint32_t pad;
};

/* Is the log on (CKPTMPI_REPLAY_LOG set and mapped)? */
int replay_on(void);

/* One call. kind, a, b: what the program asks now. If the log holds the
 * next record (a re-execution), it must be the same call with the same
 * a and b: then its outcome is copied to *out and data (at most cap
 * bytes) and 1 is returned. A different call is a divergence: said on
 * stderr and to the debugger (ckptmpi_replay_diverged), the recorded rest
 * is dropped, and 0 is returned: the caller runs the call live and
 * records it (replay_record). 0 as well past the log's end. */
int replay_next(uint32_t kind, int64_t a, int64_t b, struct replay_rec *out, void *data,
                size_t cap);
/* A divergence, said in words; a debugger stops the program here. */
void ckptmpi_replay_diverged(const char *why);

/* Append the outcome of a call that ran live (after replay_next said 0).
 * Each of the two takes the log's lock by itself; the live call between
 * runs unlocked (a read may block): threads record in the order their
 * calls end, and a re-execution must call in that order again. */
void replay_record(uint32_t kind, int64_t a, int64_t b, int64_t ret, int err, const void *data,
                   size_t len);

#endif
