"""The test harness's hold at the end, for the Python test programs (the
same as hold_end.h, which says why): while the file named by
CKPTMPI_TEST_HOLD exists, wait before the final line; FILE.reached says
so."""
import os
import time


def hold_before_final():
    hold = os.environ.get("CKPTMPI_TEST_HOLD")
    if not hold or not os.path.exists(hold):
        return
    open(hold + ".reached", "a").close()
    while os.path.exists(hold):
        time.sleep(0.02)
