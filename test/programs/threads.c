/* threads: 4 pthreads taking turns under a mutex + condition variable.
 *
 *   threads [NSTEPS=40] [SLEEP_MS=50]
 *
 * Each step the main thread hands out ROUNDS rounds; in each round worker
 * 0, 1, 2, 3 (in that order) update the shared state and their own
 * __thread counters.  Then the main thread prints, outside the lock, and
 * sleeps while the workers wait on the condition variable, which is where a
 * checkpoint usually finds them.  Each worker checks its TLS counter
 * against a stack copy and counts mismatches (lost or swapped TLS shows up
 * as err>0 and different counts).
 *
 * Output: "0 start ...", "K shared=... counts=... acc=... err=0", final
 * line "NSTEPS+1 final checksum=...". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#define NT 4
#define ROUNDS 25
#define MAIN_TURN NT

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn = MAIN_TURN;
static int rounds_left;
static int done;
static uint64_t shared_state = 1;
static int errors;

static __thread uint64_t tls_count;                     /* .tbss */
static __thread uint64_t tls_acc = 0x5555aaaa5555aaaaULL; /* .tdata */
static __thread int tls_id = -1;

static uint64_t *tls_count_ptr[NT];
static uint64_t *tls_acc_ptr[NT];
static uint64_t final_count[NT], final_acc[NT];

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t local = 0;          /* stack copy of tls_count */
    tls_id = id;

    pthread_mutex_lock(&mu);
    tls_count_ptr[id] = &tls_count;
    tls_acc_ptr[id] = &tls_acc;
    for (;;) {
        while (turn != id && !done)
            pthread_cond_wait(&cv, &mu);
        if (done)
            break;
        tls_count++;
        local++;
        if (tls_count != local || tls_id != id)
            errors++;
        tls_acc = tls_acc * 6364136223846793005ULL + (uint64_t)id + 1;
        shared_state = mix64(shared_state, tls_acc ^ (uint64_t)id);
        if (id == NT - 1)
            turn = (--rounds_left == 0) ? MAIN_TURN : 0;
        else
            turn = id + 1;
        pthread_cond_broadcast(&cv);
    }
    final_count[id] = tls_count;
    final_acc[id] = tls_acc;
    if (tls_count != local || tls_id != id)
        errors++;
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(int argc, char **argv)
{
    long nsteps = arg_long(argc, argv, 1, 40);
    long sleep_ms = arg_long(argc, argv, 2, 50);
    pthread_t th[NT];

    for (int i = 0; i < NT; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    printf("0 start nsteps=%ld threads=%d\n", nsteps, NT);
    fflush(stdout);

    for (long step = 1; step <= nsteps; step++) {
        uint64_t counts[NT], accs[NT], shared;
        int err;
        pthread_mutex_lock(&mu);
        rounds_left = ROUNDS;
        turn = 0;
        pthread_cond_broadcast(&cv);
        while (turn != MAIN_TURN)
            pthread_cond_wait(&cv, &mu);
        for (int i = 0; i < NT; i++) {
            counts[i] = *tls_count_ptr[i];
            accs[i] = *tls_acc_ptr[i];
        }
        shared = shared_state;
        err = errors;
        pthread_mutex_unlock(&mu);

        uint64_t acc = 0;
        for (int i = 0; i < NT; i++)
            acc = mix64(acc, accs[i]);
        printf("%ld shared=%016" PRIx64 " counts=%" PRIu64 ",%" PRIu64 ",%" PRIu64
               ",%" PRIu64 " acc=%016" PRIx64 " err=%d\n",
               step, shared, counts[0], counts[1], counts[2], counts[3], acc, err);
        fflush(stdout);
        pace_ms(sleep_ms);
    }

    pthread_mutex_lock(&mu);
    done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);

    uint64_t h = mix64(0xcbf29ce484222325ULL, shared_state);
    for (int i = 0; i < NT; i++) {
        h = mix64(h, final_count[i]);
        h = mix64(h, final_acc[i]);
    }
    h = mix64(h, (uint64_t)errors);
    hold_before_final();
    printf("%ld final checksum=%016" PRIx64 " err=%d\n", nsteps + 1, h, errors);
    return 0;
}
