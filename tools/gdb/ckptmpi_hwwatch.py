# ckptmpi_hwwatch.py: do hardware watchpoints fire on this machine?
#
# GDB's hardware watchpoints are the CPU's debug registers, set through
# ptrace. Some virtual machines accept the registers but never raise the
# trap (seen: a Firecracker guest on AMD EPYC): GDB then reports
# "Hardware watchpoint 2: x" and the program runs past every write to x
# as if there were none, so `watch`, reverse execution's watchpoints and
# `ckptmpi bisect`'s search for the moment a condition became true would
# answer wrong without a word. The kernel's perf breakpoints are the same
# registers: one on a variable of this process that counts no write after
# four writes says they do not fire, and GDB is told to use its software
# watchpoints (it single-steps the program and compares: slow, but right).

import ctypes
import os
import struct

_SYS_perf_event_open = 298     # x86-64
_PERF_TYPE_BREAKPOINT = 5
_HW_BREAKPOINT_W = 2
_ATTR_SIZE = 112               # PERF_ATTR_SIZE_VER5
_EXCLUDE_KERNEL_HV = (1 << 5) | (1 << 6)


def hw_watchpoints_fire():
    """True or False; None when the kernel cannot tell (perf breakpoints
    refused, as with a seccomp filter: GDB's own may still work)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    var = ctypes.c_long(0)
    # struct perf_event_attr: type, size, ...; flags at 40; bp_type at 52;
    # bp_addr, bp_len at 56
    attr = bytearray(_ATTR_SIZE)
    struct.pack_into("II", attr, 0, _PERF_TYPE_BREAKPOINT, _ATTR_SIZE)
    struct.pack_into("Q", attr, 40, _EXCLUDE_KERNEL_HV)
    struct.pack_into("I", attr, 52, _HW_BREAKPOINT_W)
    struct.pack_into("QQ", attr, 56, ctypes.addressof(var), ctypes.sizeof(var))
    buf = (ctypes.c_char * _ATTR_SIZE).from_buffer(attr)
    fd = libc.syscall(_SYS_perf_event_open, buf, 0, -1, -1, 0)
    if fd < 0:
        return None
    try:
        for i in range(4):
            var.value = i + 1
        count = struct.unpack("Q", os.read(fd, 8))[0]
    except OSError:
        return None
    finally:
        os.close(fd)
    return count > 0


if __name__ == "__main__":
    # for scripts and tests: exit 0 (they fire), 1 (they do not), 2 (cannot tell)
    import sys
    fire = hw_watchpoints_fire()
    print({True: "fire", False: "do not fire", None: "unknown"}[fire])
    sys.exit({True: 0, False: 1, None: 2}[fire])
