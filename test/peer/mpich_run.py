#!/usr/bin/env python3
"""Run cases of MPICH's test suite (test/mpi) natively and under ckptmpi.

Called by test/peer/mpich_testsuite.sh once the suite is configured for a
flavour (see there for the environment).  For each case of the selection it
builds the program (make in the configured tree), runs it natively
(mpirun -np N ./prog ARGS) and under ckptmpi (mpirun -np N RUNTIME ./prog
ARGS), judges both as MPICH's runtests does and prints a table.  Exit 1 if
a case that passes natively fails under ckptmpi.

Cases come from MPICH's own testlist files ("prog np key=value ..." lines:
arg=, env=, timeLimit=, xfail=, mem=, strict=, mpiexecarg=, resultTest=;
a line naming a directory descends into it).  Like runtests with its
defaults, xfail= cases are left out; so are mem= cases (gigabytes) and
mpiexecarg= cases (Hydra options).
"""
import argparse
import ctypes
import os
import re
import shlex
import signal
import subprocess
import sys
import time

REFUSED = re.compile(r"ckptmpi: (MPIX?_\w+) is not supported")
NOERR = re.compile(r"^\s*No [Ee]rrors\s*$")
OK_LINES = re.compile(r"^\s*(Test Passed|.*requesting checkpoint|.*checkpoint completed)\s*$")


class Case:
    def __init__(self, d, prog, np, opts, line):
        self.dir, self.prog, self.np = d, prog, np
        self.args, self.envs = [], []
        self.opts = {}
        self.line = line
        for o in opts:
            k, _, v = o.partition("=")
            if k == "arg":
                self.args.append(v)
            elif k == "env":
                self.envs.append(v)
            else:
                self.opts[k] = v
        self.result = {}

    @property
    def name(self):
        return "%s/%s" % (self.dir, self.prog)

    @property
    def label(self):
        s = "%s %d" % (self.name, self.np)
        if self.args:
            s += " " + " ".join(self.args)
        if self.envs:
            s += " [" + " ".join(self.envs) + "]"
        return s

    def skip_reason(self):
        if "xfail" in self.opts:
            return "xfail=" + self.opts["xfail"]
        if "mem" in self.opts:
            return "mem=" + self.opts["mem"]
        if "mpiexecarg" in self.opts:
            return "mpiexecarg"
        if self.opts.get("strict") == "false":
            return None
        return None


def read_testlist(root, src, d, cases, extra_lists):
    """testlist files of directory d: made by configure (from testlist.in)
    in the build tree, or as they are in the source tree"""
    names = ["testlist"] + extra_lists
    for ln in names:
        path = os.path.join(root, d, ln)
        if not os.path.isfile(path):
            path = os.path.join(src, d, ln)
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            for raw in f:
                line = re.sub(r"#.*", "", raw).strip()
                if not line or line.startswith("!"):
                    continue
                w = line.split()
                sub = os.path.join(root, d, w[0])
                if len(w) == 1 and os.path.isdir(sub):
                    read_testlist(root, src, os.path.join(d, w[0]), cases, extra_lists)
                    continue
                if "@" in line:
                    continue            # an unconfigured substitution
                np = int(w[1]) if len(w) > 1 and w[1].isdigit() else 1
                opts = [x for x in w[2:] if "=" in x]
                cases.append(Case(d, w[0], np, opts, line))


def host_tags(flavour):
    """What a 'skip@WORD' line may name: the MPI flavour, and 'nofsgsbase'
    on a machine without FSGSBASE (AT_HWCAP2 bit 1), where each MPI call
    under ckptmpi switches the thread pointer with two arch_prctl system
    calls (4.3 us each on a PVM guest seen) instead of two instructions."""
    tags = {flavour}
    try:
        libc = ctypes.CDLL(None)
        libc.getauxval.restype = ctypes.c_ulong
        if not libc.getauxval(26) & 2:  # AT_HWCAP2, HWCAP2_FSGSBASE
            tags.add("nofsgsbase")
    except (OSError, AttributeError):
        pass
    return tags


def read_selection(path, flavour):
    """Lines: 'default DIR/PROG [NP]' (in the default run), 'skip DIR/PROG
    REASON' (never run; 'skip@WORD ...': not with that MPI, or not on such
    a machine: host_tags), 'dirs DIR...' (directories of the full run)."""
    tags = host_tags(flavour)
    default, skip, dirs = [], {}, []
    with open(path) as f:
        for raw in f:
            line = re.sub(r"#.*", "", raw).strip()
            if not line:
                continue
            w = line.split()
            if w[0] == "default":
                default.append((w[1], int(w[2]) if len(w) > 2 else None))
            elif w[0] == "skip" or (w[0].startswith("skip@") and w[0][5:] in tags):
                skip[w[1]] = " ".join(w[2:]) or "skipped"
            elif w[0] == "dirs":
                dirs.extend(w[1:])
            elif w[0].startswith("skip@"):
                pass
            else:
                raise SystemExit("%s: bad line: %s" % (path, raw.rstrip()))
    return default, skip, dirs


def tagged_pids(tag):
    me = os.getpid()
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            with open("/proc/%s/environ" % p, "rb") as f:
                if tag in f.read().split(b"\0"):
                    out.append(int(p))
        except OSError:
            pass
    return out


def kill_tagged(tag):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = tagged_pids(tag)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        time.sleep(0.5)


def judge(out, rc, result_test):
    lines = out.splitlines()
    if result_test == "TestErrFatal":
        return (rc != 0, "exit status 0, a failure expected" if rc == 0 else "")
    if result_test == "TestStatus":
        return (rc != 0, "exit status 0, a non-zero one expected" if rc == 0 else "")
    noerr = any(NOERR.match(x) for x in lines)
    bad = [x for x in lines if not NOERR.match(x) and not OK_LINES.match(x) and x.strip()]
    if result_test == "TestStatusNoErrors":
        return (noerr and not bad, "" if noerr and not bad else (bad[0] if bad else "no 'No Errors'"))
    if rc != 0:
        why = "exit %d" % rc if rc > 0 else "signal %d" % -rc
        return False, why + (": " + bad[0] if bad else "")
    if bad:
        return False, bad[0]
    if not noerr:
        return False, "no 'No Errors'"
    return True, ""


def run_one(case, cwd, cmd, timeout, tag):
    env = dict(os.environ)
    env.update(e.split("=", 1) for e in case.envs if "=" in e)
    env["CKPTMPI_PEER_JOB"] = tag
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        rc = p.returncode
        timed_out = False
    except KeyboardInterrupt:
        # SIGTERM or SIGINT: the job goes with the runner
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        kill_tagged(("CKPTMPI_PEER_JOB=" + tag).encode())
        raise
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            out, _ = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
        rc = -1
        timed_out = True
    kill_tagged(("CKPTMPI_PEER_JOB=" + tag).encode())
    dt = time.monotonic() - t0
    text = out.decode("utf-8", "replace")
    if timed_out:
        return False, "timeout after %ds" % timeout, dt, text
    ok, why = judge(text, rc, case.opts.get("resultTest"))
    return ok, why, dt, text


def build(root, cases, jobs, log):
    """make the programs of every case, directory by directory; return the
    set of names that exist afterwards."""
    bydir = {}
    for c in cases:
        bydir.setdefault(c.dir, set()).add(c.prog)
    built = set()
    for d, progs in sorted(bydir.items()):
        todo = sorted(p for p in progs if not os.path.isfile(os.path.join(root, d, p)))
        if todo:
            subprocess.run(["make", "-k", "-s", "-j%d" % jobs] + todo, cwd=os.path.join(root, d),
                           stdout=log, stderr=subprocess.STDOUT)
        for p in progs:
            if os.access(os.path.join(root, d, p), os.X_OK):
                built.add("%s/%s" % (d, p))
    return built


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flavour", required=True)
    ap.add_argument("--root", required=True, help="configured test/mpi tree of that flavour")
    ap.add_argument("--src", required=True, help="test/mpi of the source tree")
    ap.add_argument("--runtime", required=True)
    ap.add_argument("--selection", required=True)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--filter", default="")
    ap.add_argument("--timeout", type=int, default=0, help="cap of a run's time limit (s)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--results", default="")
    ap.add_argument("--show", type=int, default=6, help="output lines shown per regression")
    a = ap.parse_args()

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)

    default, skips, dirs = read_selection(a.selection, a.flavour)
    cases = []
    for d in dirs:
        read_testlist(a.root, a.src, d, cases, [])
    if not a.full:
        want = {}
        for name, np in default:
            want.setdefault(name, []).append(np)
        cases = [c for c in cases if c.name in want and
                 (None in want[c.name] or c.np in want[c.name])]
        found = {c.name for c in cases}
        missing = [n for n, _ in default if n not in found]
        if missing:
            print("selection names no testlist case: " + " ".join(missing))
            return 2
    if a.filter:
        cases = [c for c in cases if re.search(a.filter, c.label)]

    mpirun = {"mpich": ["mpirun.mpich"],
              "openmpi": ["mpirun.openmpi", "--oversubscribe"]}[a.flavour]
    if a.flavour == "openmpi" and os.geteuid() == 0:
        mpirun.append("--allow-run-as-root")

    log_path = os.path.join(a.root, "peer-build.log")
    t0 = time.monotonic()
    with open(log_path, "a") as log:
        built = build(a.root, [c for c in cases if c.name not in skips and not c.skip_reason()],
                      a.jobs, log)
    tbuild = time.monotonic() - t0

    rows = []
    t0 = time.monotonic()
    for i, c in enumerate(cases):
        why = skips.get(c.name) or c.skip_reason()
        if why:
            rows.append((c, "skip", why, None, None))
            continue
        if c.name not in built:
            rows.append((c, "nobuild", "does not compile with this MPI (%s)" % log_path, None, None))
            continue
        limit = int(c.opts.get("timeLimit", "180"))
        if a.timeout:
            limit = min(limit, a.timeout)
        argv = [os.path.join(".", c.prog)] + c.args
        cwd = os.path.join(a.root, c.dir)
        tag = "%s-%d-%d" % (a.flavour, os.getpid(), i)
        nat = run_one(c, cwd, mpirun + ["-np", str(c.np)] + argv, limit, tag + "n")
        ck = run_one(c, cwd, mpirun + ["-np", str(c.np), a.runtime] + argv, limit, tag + "c")
        rows.append((c, "ran", "", nat, ck))
        st = ("ok" if nat[0] else "FAIL") + "/" + ("ok" if ck[0] else "FAIL")
        print("  [%s %3d/%d] %-60s %-9s %5.1fs %5.1fs" % (a.flavour, i + 1, len(cases), c.label[:60], st,
                                                         nat[2], ck[2]), flush=True)
    trun = time.monotonic() - t0

    # ---- table
    n_nat = n_ck = n_reg = n_ran = n_ref = 0
    regress = []
    print()
    print("MPICH test suite, %s: %s selection" % (a.flavour, "full" if a.full else "default"))
    print("%-64s %-8s %-8s %s" % ("case", "native", "ckptmpi", "note"))
    res_lines = []
    for c, kind, why, nat, ck in rows:
        if kind != "ran":
            print("%-64s %-8s %-8s %s" % (c.label[:64], kind, "-", why))
            res_lines.append("%s\t%s\t%s\t-\t-\t-\t%s" % (a.flavour, c.label, kind, why))
            continue
        n_ran += 1
        n_nat += nat[0]
        n_ck += ck[0]
        note = ""
        refused = REFUSED.search(ck[3]) if not ck[0] else None
        if nat[0] and refused:
            # the shim says it does not support a function (documented)
            n_ref += 1
            note = "refused: %s is not supported by ckptmpi" % refused.group(1)
        elif nat[0] and not ck[0]:
            n_reg += 1
            note = "REGRESSION: " + ck[1]
            regress.append((c, ck))
        elif not nat[0]:
            note = "fails natively: " + nat[1]
        ckst = "pass" if ck[0] else ("refused" if refused else "FAIL")
        print("%-64s %-8s %-8s %s" % (c.label[:64], "pass" if nat[0] else "FAIL", ckst, note[:110]))
        res_lines.append("%s\t%s\t%s\t%s\t%.2f\t%.2f\t%s" % (a.flavour, c.label, "pass" if nat[0] else "fail",
                                                        ckst, nat[2], ck[2], note))
    for c, ck in regress:
        print("\n---- %s (%s) under ckptmpi: %s" % (c.label, a.flavour, ck[1]))
        for line in ck[3].splitlines()[:a.show]:
            print("     | " + line[:200])
    print("\n%s: %d cases run (%d skipped or not built): native pass %d, ckptmpi pass %d, "
          "refused by ckptmpi %d, regressions %d; build %.0fs, runs %.0fs"
          % (a.flavour, n_ran, len(rows) - n_ran, n_nat, n_ck, n_ref, n_reg, tbuild, trun))
    if a.results:
        with open(a.results, "a") as f:
            f.write("\n".join(res_lines) + "\n")
    return 1 if n_reg else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("mpich_run.py: interrupted", file=sys.stderr)
        sys.exit(130)
