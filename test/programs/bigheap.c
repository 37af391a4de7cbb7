/* bigheap: a large touched heap, so that a checkpoint takes a while.
 *
 *   bigheap [NSTEPS=40] [SLEEP_MS=50] [MIB=512] [WORDS=4096]
 *
 * Fills MIB MiB of malloc'd memory with a non-zero, poorly compressible
 * pattern, then each step rewrites WORDS scattered words and prints a
 * checksum of what it changed; the final line checksums the whole heap.
 * Used by kill_during_checkpoint.
 *
 * Output: "0 start ...", "K sum=...", final line
 * "NSTEPS+1 final checksum=...". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

int main(int argc, char **argv)
{
    long nsteps = arg_long(argc, argv, 1, 40);
    long sleep_ms = arg_long(argc, argv, 2, 50);
    long mib = arg_long(argc, argv, 3, 512);
    long nwords = arg_long(argc, argv, 4, 4096);
    size_t words = (size_t)mib * (1u << 20) / 8;
    if (words == 0)
        words = 1;

    uint64_t *heap = malloc(words * 8);
    if (!heap) {
        perror("malloc");
        return 1;
    }
    uint64_t s = 0x243f6a8885a308d3ULL;
    for (size_t i = 0; i < words; i++)
        heap[i] = xorshift64(&s) | 1;

    printf("0 start nsteps=%ld mib=%ld\n", nsteps, mib);
    fflush(stdout);

    uint64_t acc = 0;
    for (long step = 1; step <= nsteps; step++) {
        uint64_t h = (uint64_t)step;
        for (long k = 0; k < nwords; k++) {
            size_t i = (size_t)(xorshift64(&s) % words);
            heap[i] = mix64(heap[i], (uint64_t)step);
            h = mix64(h, heap[i]);
        }
        acc = mix64(acc, h);
        printf("%ld sum=%016" PRIx64 " acc=%016" PRIx64 "\n", step, h, acc);
        fflush(stdout);
        pace_ms(sleep_ms);
    }

    uint64_t h = hash_words(acc, heap, words * 8);
    hold_before_final();
    printf("%ld final checksum=%016" PRIx64 "\n", nsteps + 1, h);
    free(heap);
    return 0;
}
