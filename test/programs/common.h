/* Shared helpers for the ckptmpi end-to-end test programs.
 *
 * Every program prints lines that start with a step number and a space,
 * flushes stdout once per step (one line per step, so a restart that
 * re-prints a line still in the stdio buffer at the checkpoint re-prints a
 * whole step), paces itself with a short sleep per step, and prints a final
 * line "<nsteps+1> final checksum=..." covering all of its state.
 *
 * Nothing printed may depend on addresses, pids, time or scheduling. */
#ifndef CKPTMPI_TEST_COMMON_H
#define CKPTMPI_TEST_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hold_end.h"

/* Sleep ms milliseconds, restarting after signal interruptions, so a
 * signal (a timer tick, a checkpoint request) never shortens a step. */
static inline void pace_ms(long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
        ;
}

/* 64-bit mixing (FNV-1a style with an extra avalanche step). */
static inline uint64_t mix64(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
    return h;
}

static inline uint64_t hash_words(uint64_t h, const void *p, size_t bytes)
{
    const uint64_t *w = p;
    size_t n = bytes / 8;
    for (size_t i = 0; i < n; i++)
        h = mix64(h, w[i] + i);
    const unsigned char *c = (const unsigned char *)p + n * 8;
    for (size_t i = 0; i < bytes % 8; i++)
        h = mix64(h, c[i]);
    return h;
}

static inline uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline long arg_long(int argc, char **argv, int i, long dflt)
{
    if (argc <= i)
        return dflt;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end != '\0' || v < 0) {
        fprintf(stderr, "%s: bad argument %d: '%s'\n", argv[0], i, argv[i]);
        exit(2);
    }
    return v;
}

#endif
