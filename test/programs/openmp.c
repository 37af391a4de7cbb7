/* openmp: a parallel-for reduction over an array each step.
 *
 *   OMP_NUM_THREADS=4 openmp [NSTEPS=40] [SLEEP_MS=50]
 *
 * Integer arithmetic only (wrap-around sums and xor are associative), so
 * the result does not depend on how the runtime combines the partial sums.
 * The team size and the iterations done by each thread (static schedule)
 * are printed too, so a restart that loses libgomp's thread pool shows.
 *
 * Output: "0 start ...", "K sum=... xor=... team=4 iters=...", final line
 * "NSTEPS+1 final checksum=...". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#define N (1 << 20)                   /* 8 MiB of uint64_t */
#define MAXT 64

static uint64_t a[N];
static uint64_t per_thread[MAXT];

int main(int argc, char **argv)
{
    long nsteps = arg_long(argc, argv, 1, 40);
    long sleep_ms = arg_long(argc, argv, 2, 50);
    uint64_t acc = 0;

    for (long i = 0; i < N; i++)
        a[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    printf("0 start nsteps=%ld max_threads=%d\n", nsteps, omp_get_max_threads());
    fflush(stdout);

    for (long step = 1; step <= nsteps; step++) {
        uint64_t sum = 0, x = 0;
        int team = 0;
        for (int t = 0; t < MAXT; t++)
            per_thread[t] = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum) reduction(^ : x)
        for (long i = 0; i < N; i++) {
            if (i == 0)
                team = omp_get_num_threads();
            int t = omp_get_thread_num();
            if (t < MAXT)
                per_thread[t]++;
            a[i] = a[i] * 6364136223846793005ULL + ((uint64_t)i ^ (uint64_t)step);
            sum += a[i] >> 7;
            x ^= a[i];
        }
        acc = mix64(mix64(acc, sum), x);
        printf("%ld sum=%016" PRIx64 " xor=%016" PRIx64 " team=%d iters=%" PRIu64
               ",%" PRIu64 "\n",
               step, sum, x, team, per_thread[0], per_thread[team > 1 ? team - 1 : 0]);
        fflush(stdout);
        pace_ms(sleep_ms);
    }

    uint64_t h = hash_words(acc, a, sizeof a);
    hold_before_final();
    printf("%ld final checksum=%016" PRIx64 "\n", nsteps + 1, h);
    return 0;
}
