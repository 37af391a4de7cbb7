#!/usr/bin/env python3
"""compute.py: a deterministic Python computation, one step at a time.

    python3 compute.py [NSTEPS=40] [SLEEP_MS=50]

State: a list of ints, a dict, a running sha256, a big integer and a float,
all updated each step.  Output: "0 start ...", "K state=... dig=...",
final line "NSTEPS+1 final checksum=...".  Nothing printed depends on
hash() of strings, addresses or time.
"""
import hashlib
import struct
import sys
import time

from hold_end import hold_before_final


def main():
    nsteps = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    sleep_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 50

    state = [(i * 2654435761) % 2**32 for i in range(4000)]
    counts = {}
    running = hashlib.sha256(b"compute.py")
    big = 1
    flt = 0.0
    words = []

    print(f"0 start nsteps={nsteps}", flush=True)
    for step in range(1, nsteps + 1):
        for i in range(len(state)):
            state[i] = (state[i] * 1103515245 + 12345 + step) % 2**31
        key = state[step % len(state)] % 97
        counts[key] = counts.get(key, 0) + step
        running.update(struct.pack(f"<{len(state)}I", *state))
        big = (big * 3 + step) ** 2 % (10**60 + 7)
        flt = flt * 0.5 + (state[0] % 1000) / 7.0
        words.append(format(state[1] % 65536, "04x"))
        print(f"{step} state={sum(state) % 1000003} dig={running.hexdigest()[:16]} "
              f"keys={len(counts)} big={big % 10**12} flt={flt!r} w={''.join(words[-4:])}",
              flush=True)
        time.sleep(sleep_ms / 1000.0)

    final = hashlib.sha256(repr((state, sorted(counts.items()), big, flt, words)).encode()
                           + running.digest()).hexdigest()[:32]
    hold_before_final()
    print(f"{nsteps + 1} final checksum={final}", flush=True)


if __name__ == "__main__":
    main()
