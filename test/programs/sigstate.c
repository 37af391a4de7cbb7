/* sigstate: process state other than memory.
 *
 *   sigstate [NSTEPS=40] [SLEEP_MS=50] [SUBDIR=sigstate.d]
 *
 * Sets up: a SIGUSR2 handler (SA_SIGINFO|SA_RESTART, SIGINT in its mask),
 * a SIGALRM handler fed by an ITIMER_REAL interval timer (20 ms), umask
 * 027, cwd = SUBDIR (created if needed, relative to the starting cwd) and
 * SIGHUP blocked.  Every step it checks all of that and prints what it
 * found ("handler=ok ..." or what differs), raises SIGUSR2 itself and
 * prints the count, and waits for at least one timer tick (a lost timer
 * prints "timer=LOST" after 2 s).
 *
 * Output: "0 start ...", one line per step, final line
 * "NSTEPS+1 final checksum=...". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

#define TICK_US 20000

static volatile sig_atomic_t usr2_count;
static volatile sig_atomic_t ticks;
static volatile sig_atomic_t usr2_bad_info;
static char start_cwd[PATH_MAX];
static uint64_t state[8192];

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig != SIGUSR2 || si->si_signo != SIGUSR2 || si->si_pid != getpid())
        usr2_bad_info = 1;
    usr2_count++;
}

static void on_alrm(int sig)
{
    (void)sig;
    ticks++;
}

static const char *check_handlers(void)
{
    struct sigaction sa;
    if (sigaction(SIGUSR2, NULL, &sa) != 0)
        return "usr2-query-failed";
    if (!(sa.sa_flags & SA_SIGINFO) || sa.sa_sigaction != on_usr2)
        return "usr2-handler-LOST";
    if (!(sa.sa_flags & SA_RESTART))
        return "usr2-flags-LOST";
    if (!sigismember(&sa.sa_mask, SIGINT))
        return "usr2-mask-LOST";
    if (sigaction(SIGALRM, NULL, &sa) != 0)
        return "alrm-query-failed";
    if ((sa.sa_flags & SA_SIGINFO) || sa.sa_handler != on_alrm)
        return "alrm-handler-LOST";
    if (!(sa.sa_flags & SA_RESTART))
        return "alrm-flags-LOST";
    if (sigaction(SIGTERM, NULL, &sa) != 0 || sa.sa_handler != SIG_IGN)
        return "term-ignore-LOST";
    return "ok";
}

int main(int argc, char **argv)
{
    long nsteps = arg_long(argc, argv, 1, 40);
    long sleep_ms = arg_long(argc, argv, 2, 50);
    const char *subdir = argc > 3 ? argv[3] : "sigstate.d";

    if (mkdir(subdir, 0755) != 0 && errno != EEXIST) {
        perror(subdir);
        return 1;
    }
    if (chdir(subdir) != 0 || !getcwd(start_cwd, sizeof start_cwd)) {
        perror("chdir");
        return 1;
    }
    umask(027);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    if (sigaction(SIGUSR2, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alrm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }
    signal(SIGTERM, SIG_IGN);

    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &block, NULL) != 0) {
        perror("sigprocmask");
        return 1;
    }

    struct itimerval itv = {.it_interval = {0, TICK_US}, .it_value = {0, TICK_US}};
    if (setitimer(ITIMER_REAL, &itv, NULL) != 0) {
        perror("setitimer");
        return 1;
    }

    for (size_t i = 0; i < sizeof state / sizeof state[0]; i++)
        state[i] = i * 0x9e3779b97f4a7c15ULL + 1;

    printf("0 start nsteps=%ld\n", nsteps);
    fflush(stdout);

    uint64_t h = 0xcbf29ce484222325ULL;
    int lost_timer_steps = 0;
    for (long step = 1; step <= nsteps; step++) {
        sig_atomic_t t0 = ticks;
        pace_ms(sleep_ms);
        /* The timer must tick during the step; give it up to 2 s. */
        for (int i = 0; i < 200 && ticks == t0; i++)
            pace_ms(10);
        int timer_ok = ticks != t0;
        if (!timer_ok)
            lost_timer_steps++;

        raise(SIGUSR2);

        const char *handlers = check_handlers();

        sigset_t cur;
        sigprocmask(SIG_BLOCK, NULL, &cur);
        int hup = sigismember(&cur, SIGHUP);
        int usr2 = sigismember(&cur, SIGUSR2);
        int alrm = sigismember(&cur, SIGALRM);

        mode_t m = umask(027);
        umask(m);

        char cwd[PATH_MAX];
        const char *cwd_state = "LOST";
        if (getcwd(cwd, sizeof cwd) && strcmp(cwd, start_cwd) == 0)
            cwd_state = "ok";

        struct itimerval cur_itv;
        getitimer(ITIMER_REAL, &cur_itv);

        for (size_t i = 0; i < sizeof state / sizeof state[0]; i++)
            state[i] = state[i] * 6364136223846793005ULL + (uint64_t)step + (uint64_t)usr2_count;
        uint64_t sh = hash_words(0, state, sizeof state);

        h = mix64(h, sh);
        h = mix64(h, (uint64_t)usr2_count);
        h = mix64(h, (uint64_t)m);
        h = mix64(h, (uint64_t)(hup * 4 + usr2 * 2 + alrm));

        printf("%ld handler=%s blocked=hup:%d,usr2:%d,alrm:%d umask=%03o cwd=%s "
               "timer=%s itv=%ldus usr2=%d info=%s state=%016" PRIx64 "\n",
               step, handlers, hup, usr2, alrm, (unsigned)m, cwd_state,
               timer_ok ? "ok" : "LOST", (long)cur_itv.it_interval.tv_usec,
               (int)usr2_count, usr2_bad_info ? "BAD" : "ok", sh);
        fflush(stdout);
    }

    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    h = mix64(h, (uint64_t)lost_timer_steps);
    hold_before_final();
    printf("%ld final checksum=%016" PRIx64 " usr2=%d\n", nsteps + 1, h, (int)usr2_count);
    return 0;
}
