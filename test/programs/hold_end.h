/* The test harness's hold at the end (test/e2e/lib.sh hold_arm).
 *
 * A test that checkpoints a run and then kills it needs the run still
 * running at the kill.  On a slow or loaded machine the steps left after
 * the commit can all pass before the test gets there, and the run ends.
 * So, while the file named by CKPTMPI_TEST_HOLD exists, a test program
 * waits before its final line.  It creates FILE.reached first, so the
 * test knows no further step will come until it releases the hold.
 *
 * Nothing printed changes.  The variable is read at the end, so a
 * restarted run (whose environment is the checkpointed one) holds only if
 * the test armed the hold again.  Without the variable, or without the
 * file, there is no wait. */
#ifndef CKPTMPI_TEST_HOLD_END_H
#define CKPTMPI_TEST_HOLD_END_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline void hold_before_final(void)
{
    const char *hold = getenv("CKPTMPI_TEST_HOLD");
    if (hold == NULL || *hold == '\0' || access(hold, F_OK) != 0)
        return;
    char reached[4096];
    snprintf(reached, sizeof reached, "%s.reached", hold);
    int fd = open(reached, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    struct timespec tick = {0, 20 * 1000000L};
    while (access(hold, F_OK) == 0)
        while (nanosleep(&tick, &tick) == -1 && errno == EINTR)
            ;
}

#endif
