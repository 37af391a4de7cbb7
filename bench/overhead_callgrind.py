#!/usr/bin/env python3
"""Instructions the shim adds per call, from a callgrind dump of
bench/overhead_calls.c's loop:

    overhead_callgrind.py CALLGRIND_OUT N

All the loop's instructions, minus what the harness's main and the stub
lower half (functions named stub_*) execute themselves, minus what the
arch_prctl fallback costs (valgrind has no FSGSBASE, so the shim switches
the thread pointer with arch_prctl under it), plus one instruction for
each of those switches (natively one rdfsbase or wrfsbase). Divided by N.
"""
import re
import sys

FS_FUNCS = {"ckpt_arch_set_fs", "ckpt_arch_get_fs"}


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    names = {}          # "(id)" -> name, for compressed name strings
    fn = cfn = None
    in_call = False
    total = main_self = stub_self = fs_incl = fs_calls = 0

    def name_of(spec):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), spec)

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = name_of(line[3:])
                continue
            if line.startswith("cfn="):
                cfn = name_of(line[4:])
                continue
            if line.startswith("calls="):
                in_call = True
                if cfn in FS_FUNCS:
                    fs_calls += int(line[6:].split()[0])
                continue
            if not line or not (line[0].isdigit() or line[0] in "+-*"):
                continue
            ir = int(line.split()[-1])
            if in_call:       # inclusive cost of the call just named
                in_call = False
                if cfn in FS_FUNCS and fn not in FS_FUNCS:
                    fs_incl += ir
                continue
            total += ir
            if fn == "main":
                main_self += ir
            elif fn and fn.startswith("stub_"):
                stub_self += ir
    shim = total - main_self - stub_self - fs_incl + fs_calls
    print("%.1f" % (shim / n))


if __name__ == "__main__":
    main()
