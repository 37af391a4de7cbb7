/* heap_mmap: memory of every kind, plus an appended file.
 *
 *   heap_mmap [NSTEPS=40] [SLEEP_MS=50] [APPEND_PATH=heap_mmap.log]
 *
 * State: small malloc blocks (churned every step), large (>1 MiB, so
 * mmap-backed) malloc blocks (one re-allocated every 8 steps), an anonymous
 * mmap region (sparsely touched, its last page made read-only), .data and
 * .bss globals, and a 10000-deep recursion whose locals feed the per-step
 * result; each step's sleep happens at the bottom of that recursion, so a
 * checkpoint usually finds the deep stack.  A file opened with
 * fopen(path, "a") gets one line per step and is flushed every 5 steps, so
 * at a checkpoint it usually has unflushed data in its stdio buffer and,
 * after the checkpoint, grows beyond its size at the checkpoint.
 *
 * Output: "0 start ...", one line per step "K sum=...", final line
 * "NSTEPS+1 final checksum=...". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

#define NSMALL 256
#define NLARGE 3
#define LARGE_SZ ((size_t)3 << 20)     /* 3 MiB */
#define MMAP_SZ ((size_t)8 << 20)      /* 8 MiB */
#define PAGE 4096
#define DEPTH 10000

/* .data: initialised, non-zero */
static uint64_t data_arr[1024] = {[0 ... 1023] = 0x0123456789abcdefULL};
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static const char tag[] = "heap_mmap-data-segment";
/* .bss */
static uint64_t bss_arr[1 << 16];      /* 512 KiB */
static uint64_t rec_acc;

static unsigned char *small[NSMALL];
static size_t small_sz[NSMALL];
static unsigned char *large[NLARGE];
static unsigned char *region;          /* anonymous mmap */
static long sleep_ms;

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++) {
        if ((i & 7) == 0)
            s = xorshift64(&s) | 1;
        p[i] = (unsigned char)(s >> ((i & 7) * 8));
    }
}

static void new_small(int i)
{
    free(small[i]);
    size_t sz = 16 + (size_t)(xorshift64(&rng_state) % 4080);
    small[i] = malloc(sz);
    if (!small[i]) {
        perror("malloc");
        exit(1);
    }
    small_sz[i] = sz;
    fill(small[i], sz, xorshift64(&rng_state));
}

static void new_large(int i)
{
    free(large[i]);
    large[i] = malloc(LARGE_SZ);
    if (!large[i]) {
        perror("malloc");
        exit(1);
    }
    /* malloc may hand back recycled memory: define every byte (the
     * checksum reads them all), then a non-zero pattern on every page */
    memset(large[i], 0, LARGE_SZ);
    for (size_t off = 0; off < LARGE_SZ; off += PAGE)
        fill(large[i] + off, 64, xorshift64(&rng_state));
}

/* Deep recursion: the locals are volatile and used after the call returns,
 * so every frame's contents matter for the result. */
static __attribute__((noinline)) uint64_t recurse(int depth, uint64_t seed)
{
    volatile uint64_t local[6];
    for (int i = 0; i < 6; i++)
        local[i] = seed * (uint64_t)(i + 3) + (uint64_t)depth;
    uint64_t r;
    if (depth == 0) {
        pace_ms(sleep_ms);             /* sleep at the bottom of the stack */
        r = seed;
    } else {
        r = recurse(depth - 1, local[depth % 6] ^ (seed >> 3));
    }
    for (int i = 0; i < 6; i++)
        r = mix64(r, local[i]);
    return r;
}

/* Protection of the region's last page as /proc/self/maps shows it. */
static void ro_prot(char out[8])
{
    strcpy(out, "none");
    FILE *m = fopen("/proc/self/maps", "r");
    if (!m)
        return;
    char line[512];
    uintptr_t want = (uintptr_t)(region + MMAP_SZ - PAGE);
    while (fgets(line, sizeof line, m)) {
        uintptr_t lo, hi;
        char perms[8];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, perms) == 3 &&
            lo <= want && want < hi) {
            strcpy(out, perms);
            break;
        }
    }
    fclose(m);
}

static uint64_t checksum_all(void)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = hash_words(h, data_arr, sizeof data_arr);
    h = hash_words(h, bss_arr, sizeof bss_arr);
    h = hash_words(h, tag, sizeof tag);
    h = mix64(h, rng_state);
    h = mix64(h, rec_acc);
    for (int i = 0; i < NSMALL; i++) {
        h = mix64(h, small_sz[i]);
        h = hash_words(h, small[i], small_sz[i]);
    }
    for (int i = 0; i < NLARGE; i++)
        h = hash_words(h, large[i], LARGE_SZ);
    h = hash_words(h, region, MMAP_SZ);
    return h;
}

int main(int argc, char **argv)
{
    long nsteps = arg_long(argc, argv, 1, 40);
    sleep_ms = arg_long(argc, argv, 2, 50);
    const char *path = argc > 3 ? argv[3] : "heap_mmap.log";

    FILE *log = fopen(path, "a");
    if (!log) {
        perror(path);
        return 1;
    }
    region = mmap(NULL, MMAP_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    fill(region + MMAP_SZ - PAGE, PAGE, 77);
    if (mprotect(region + MMAP_SZ - PAGE, PAGE, PROT_READ) != 0) {
        perror("mprotect");
        return 1;
    }
    for (int i = 0; i < NSMALL; i++)
        new_small(i);
    for (int i = 0; i < NLARGE; i++)
        new_large(i);

    printf("0 start nsteps=%ld\n", nsteps);
    fflush(stdout);

    for (long step = 1; step <= nsteps; step++) {
        /* churn the small blocks */
        for (int k = 0; k < 16; k++)
            new_small((int)(xorshift64(&rng_state) % NSMALL));
        /* scattered writes to the large blocks; re-allocate one now and then */
        if (step % 8 == 0)
            new_large((int)(step / 8) % NLARGE);
        for (int i = 0; i < NLARGE; i++)
            for (int k = 0; k < 64; k++) {
                size_t off = (size_t)(xorshift64(&rng_state) % (LARGE_SZ / 8)) * 8;
                *(uint64_t *)(large[i] + off) ^= xorshift64(&rng_state);
            }
        /* touch a few pages of the mmap region (not the read-only one) */
        for (int k = 0; k < 16; k++) {
            size_t pg = (size_t)(xorshift64(&rng_state) % (MMAP_SZ / PAGE - 1));
            size_t off = pg * PAGE + (size_t)(xorshift64(&rng_state) % (PAGE / 8)) * 8;
            *(uint64_t *)(region + off) += xorshift64(&rng_state) | 1;
        }
        /* globals */
        for (int k = 0; k < 32; k++) {
            data_arr[xorshift64(&rng_state) % 1024] ^= xorshift64(&rng_state);
            bss_arr[xorshift64(&rng_state) % (1 << 16)] += (uint64_t)step;
        }
        /* deep recursion (sleeps at the bottom) */
        uint64_t rec = recurse(DEPTH, (uint64_t)step * 0x9e3779b97f4a7c15ULL);
        rec_acc = mix64(rec_acc, rec);

        uint64_t sum = checksum_all();
        char prot[8];
        ro_prot(prot);
        fprintf(log, "%ld log sum=%016" PRIx64 " rec=%016" PRIx64
                " ................................................................\n",
                step, sum, rec);
        if (step % 5 == 0)
            fflush(log);
        printf("%ld sum=%016" PRIx64 " rec=%016" PRIx64 " small0=%zu roprot=%s\n",
               step, sum, rec, small_sz[0], prot);
        fflush(stdout);
    }

    hold_before_final();
    uint64_t final = checksum_all();
    fprintf(log, "%ld final checksum=%016" PRIx64 "\n", nsteps + 1, final);
    if (fclose(log) != 0) {
        perror("fclose");
        return 1;
    }
    printf("%ld final checksum=%016" PRIx64 "\n", nsteps + 1, final);
    return 0;
}
