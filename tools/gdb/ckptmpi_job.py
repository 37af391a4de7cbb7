# ckptmpi_job.py: `ckptmpi debug --rank R -np N -- PROGRAM ARGS`, GDB on
# rank R of an MPI job that runs under mpirun (issue 10 item 4). Loaded
# by ckptmpi.py.
#
# The job is launched by mpirun from here, every rank under
# ckptmpi-runtime-FLAVOUR, rank R's slot as `ckptmpi-debug-hold PIDFILE
# RUNTIME PROGRAM ARGS` (tools/debug_hold.c): it says its pid, stops itself, and
# GDB attaches to it (its own child's child: no ptrace privilege needed);
# once attached it becomes the runtime, which GDB follows like `run`, and
# is stopped at the program's `main` (nothing the program decides happens
# before it). That stop is the session's one checkpoint: the job's start.
#
# The first launch records what MPI decided on every rank
# (CKPTMPI_MPI_RECORD=1, pmpi/replay_mpi.c, logs in DIR/replay/); with
# --replay DIR the recorded run DIR is replayed instead. A reverse command
# of ckptmpi_reverse.py "restarts the checkpoint": here, the whole job is
# killed and launched again with CKPTMPI_MPI_REPLAY on every rank, so that
# every rank retraces its path, and rank R is re-executed from `main` to
# the target by ckptmpi_reverse's own machinery (positions, recorders).

import json
import os
import shlex
import signal
import subprocess
import time

import gdb
import __main__ as ck

JOB = [None]   # the job of this session (ckptmpi_reverse looks here)


def _msg(text):
    ck._msg(text)


class JobError(gdb.GdbError):
    pass


def _die_with_gdb():
    """mpirun's preexec: SIGKILL when GDB dies (killed, say, by a timeout
    that left it no time to end the job), so that the launcher takes the
    ranks with it instead of leaving them waiting on rank R forever."""
    import ctypes
    ctypes.CDLL(None).prctl(1, 9)   # PR_SET_PDEATHSIG, SIGKILL


def _session_of(pid):
    """(parent, session) of a live process; (None, None) for one gone or
    a zombie (dead, its parent has not reaped it yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            return None, None
        return int(fields[1]), int(fields[3])   # ppid, session
    except (OSError, ValueError, IndexError):
        return None, None


class Job:
    def __init__(self, plan):
        self.plan = plan
        self.rank = int(plan["rank"])
        self.np = int(plan["np"])
        # a job run on from a generation: {"generation": G, "env": {...}}
        # (CKPTMPI_DIR a sandbox holding it, CKPTMPI_RESTART, the map of
        # the working directory to its copy); rank R is held at its cut
        self.restart = plan.get("restart")
        self.proc = None
        self.launches = 0
        self.pidfile = os.path.join(plan["dir"], "debug-hold.pid")
        self.start_time = 0.0

    # ---- the log of rank R (divergences)

    def replay_dir(self):
        return self.plan["replay"] or self.plan["dir"]

    def log_path(self):
        d = self.replay_dir()
        p = os.path.join(d, "replay", "mpi.rank-%d.log" % self.rank)
        return p if os.path.exists(p) or not self.plan["replay"] else \
            os.path.join(d, "mpi.rank-%d.log" % self.rank)

    def diverged(self):
        """(divergences recorded in rank R's log, the last in words):
        pmpi/replay_mpi.c's struct mrr_header."""
        try:
            with open(self.log_path(), "rb") as f:
                head = f.read(48 + 512)
        except OSError:
            return 0, ""
        if len(head) < 48 or head[:8] != b"ckmpilog":
            return 0, ""
        return int.from_bytes(head[40:48], "little"), \
            head[48:].split(b"\0", 1)[0].decode(errors="replace")

    def error_tail(self):
        out = self.plan.get("output")
        if not out:
            return ""
        try:
            with open(out + ".err", errors="replace") as f:
                lines = [x for x in f.read().splitlines() if x.strip()]
        except OSError:
            return ""
        div = [x for x in lines if "diverged" in x]
        said = [x for x in lines if x.strip("-= ")]
        return (div or said[:1] or [""])[-1]

    # ---- launching and killing

    def _env(self):
        env = dict(os.environ)
        for k in ("CKPTMPI_RESTART", "CKPTMPI_MPI_RECORD", "CKPTMPI_MPI_REPLAY",
                  "CKPTMPI_INSPECT_RANK", "CKPTMPI_REPLAY_LOG", "CKPTMPI_REPLAY_AGAIN"):
            env.pop(k, None)
        env["CKPTMPI_DIR"] = self.plan["dir"]
        env["CKPTMPI_INTERVAL"] = "0"
        if self.restart:
            # recorded from the cut by the first launch, replayed by every
            # relaunch (pmpi/lower_cut.c tells the restored shim)
            env.pop("CKPTMPI_RESTORE_MAP", None)
            env.update(self.restart["env"])
            if self.restart.get("record"):
                if self.launches:
                    env["CKPTMPI_MPI_REPLAY"] = self.replay_dir()
                else:
                    env["CKPTMPI_MPI_RECORD"] = "1"
        else:
            if self.plan["replay"] or self.launches:
                env["CKPTMPI_MPI_REPLAY"] = self.replay_dir()
            else:
                env["CKPTMPI_MPI_RECORD"] = "1"
            # the replay library (reads, clocks, random bytes) on every
            # rank, a log each; a restart from a generation finds its
            # image's log and position by itself
            lib = self.plan.get("replay_lib")
            if lib:
                env["CKPTMPI_PRELOAD"] = lib + (":" + env["CKPTMPI_PRELOAD"]
                                                if env.get("CKPTMPI_PRELOAD") else "")
                env["CKPTMPI_REPLAY_LOG"] = os.path.join(self.plan["dir"], "replay",
                                                         "calls.rank-%r.log")
                env["CKPTMPI_REPLAY_AGAIN"] = "1" if self.launches else "0"
                os.makedirs(os.path.join(self.plan["dir"], "replay"), exist_ok=True)
        # what the MPI runtime sets before it re-executes itself
        # (pmpi/lower_mpi.c): set here, rank R does not re-execute
        for k, v in (("UCX_MEM_MALLOC_HOOKS", "no"), ("UCX_MEM_MMAP_HOOK_MODE", "none"),
                     ("UCX_MEM_EVENTS", "no")):
            env.setdefault(k, v)
        return env

    def command(self):
        p = self.plan
        prog = [p["runtime"]] + ([] if self.restart else list(p["argv"]))
        hold = [p["holder"], self.pidfile] + prog
        r, n = self.rank, self.np
        cmd = shlex.split(p["mpirun"])
        if r > 0:
            cmd += ["-np", str(r)] + prog + [":"]
        cmd += ["-np", "1"] + hold
        if r < n - 1:
            cmd += [":", "-np", str(n - 1 - r)] + prog
        return cmd

    def launch(self):
        """mpirun in the background; returns rank R's pid, stopped."""
        try:
            os.unlink(self.pidfile)
        except OSError:
            pass
        out = self.plan.get("output")
        files = []
        try:
            if out:
                files = [open(out, "w"), open(out + ".err", "w")]
            self.proc = subprocess.Popen(self.command(), env=self._env(), cwd=self.plan["cwd"],
                                         stdin=subprocess.DEVNULL,
                                         stdout=files[0] if files else None,
                                         stderr=files[1] if files else None,
                                         start_new_session=True, preexec_fn=_die_with_gdb)
        except OSError as e:
            raise JobError("cannot start %s: %s" % (shlex.split(self.plan["mpirun"])[0], e))
        finally:
            for f in files:
                f.close()
        self.start_time = time.time()
        deadline = time.time() + 60
        while True:
            try:
                with open(self.pidfile) as f:
                    pid = int(f.read().strip())
                os.unlink(self.pidfile)
                break
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise JobError("mpirun exited (status %d) before rank %d started%s"
                               % (self.proc.returncode, self.rank,
                                  ": " + self.error_tail() if self.error_tail() else ""))
            if time.time() > deadline:
                self.kill()
                raise JobError("rank %d of the job did not start within 60 s" % self.rank)
            time.sleep(0.005)
        self.launches += 1
        return pid

    def _job_pids(self):
        """mpirun's session and everything below it."""
        if self.proc is None:
            return []
        sid = self.proc.pid
        procs = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                ppid, s = _session_of(int(d))
                if ppid is not None:
                    procs[int(d)] = (ppid, s)
        out = {p for p, (_pp, s) in procs.items() if s == sid}
        grew = True
        while grew:
            grew = False
            for p, (pp, _s) in procs.items():
                if pp in out and p not in out:
                    out.add(p)
                    grew = True
        return sorted(out)

    def kill_launcher(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass

    def kill(self):
        if self.proc is None:
            return
        for _i in range(500):
            pids = self._job_pids()
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            if self.proc.poll() is not None and not [p for p in pids if p != self.proc.pid]:
                break
            time.sleep(0.01)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def wait_end(self, timeout):
        """At the end of the session: the job's other ranks finish (rank R
        has exited), else are killed."""
        if self.proc is None:
            return
        if timeout:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _msg("the job did not end within %d s after rank %d: killed"
                     % (timeout, self.rank))
        self.kill()


# ------------------------------------------------------------------ GDB side

class _StopAt(gdb.Breakpoint):
    """An internal breakpoint that stops (cond() says when)."""

    def __init__(self, spec, cond=None):
        super().__init__(spec, internal=True)
        self.silent = True
        self.cond = cond

    def stop(self):
        return self.cond() if self.cond else True


def _program_main():
    """The address of the program's own main (its executable's symbol)."""
    prog = os.path.realpath(ck._program_path())
    for o in gdb.objfiles():
        if o.filename and os.path.realpath(o.filename) == prog:
            sym = o.lookup_global_symbol("main")
            if sym is not None:
                return int(sym.value().address)
    return None


def _program_entry():
    """The program's entry point (_start): its load address on the upper
    link map (the entry with an empty name) plus the ELF header's
    e_entry."""
    rd = ck._link("upper_r_debug")
    lm = ck._u64(rd + 8)
    for _i in range(4096):
        if not lm:
            break
        if not ck._cstr(ck._u64(lm + 8)):
            with open(ck._program_path(), "rb") as f:
                head = f.read(32)
            return ck._u64(lm) + int.from_bytes(head[24:32], "little")
        lm = ck._u64(lm + 24)
    return None


# callee-saved registers are unspecified at a program's entry (the x86-64
# ABI): what the runtime left in them there differs from launch to launch
# (a pid), and main inherits it; zeroed, every launch is the same there
ENTRY_ZEROED = ("rbx", "r12", "r13", "r14", "r15")


def _consistent():
    rd = ck._link("upper_r_debug")
    try:
        return int.from_bytes(bytes(ck._inf().read_memory(rd + 24, 4)), "little") == 0 and \
            ck._u64(rd + 8) != 0
    except (gdb.MemoryError, gdb.error):
        return False


def _trace(text):
    if os.environ.get("CKPTMPI_JOB_TRACE"):
        _msg("job: " + text)


_t0 = [0.0]


def _attach(pid):
    """Attach to the held rank (stopped by its own SIGSTOP)."""
    saved = gdb.parameter("confirm")
    gdb.execute("set confirm off", to_string=True)
    try:
        gdb.execute("attach %d" % pid, to_string=True)
        _trace("attached %.3f" % (time.time() - _t0[0]))
    finally:
        gdb.execute("set confirm %s" % ("on" if saved else "off"), to_string=True)
    # its own SIGSTOP (pending or taken) is no signal of the program's
    gdb.execute("handle SIGSTOP nostop noprint nopass", to_string=True)


def _continue_to(function, tries=8):
    """continue until the selected frame is FUNCTION's. False if the
    process ended or it did not come."""
    for _i in range(tries):
        gdb.execute("continue", to_string=True)
        if not ck._inf().pid:
            return False
        if gdb.selected_frame().name() == function:
            return True
    return False


def attach_to_main(pid):
    """Attach to the held rank, let it become the runtime and run it to
    the program's main. Returns True there."""
    inf = ck._inf()
    _t0[0] = time.time()
    with ck._Silence():
        _attach(pid)
        bps = []
        ck.stop_at_upper_start[0] = True
        try:
            if not _continue_to("control_upper_started"):
                return False
            ck.stop_at_upper_start[0] = False
            _trace("at control_upper_started %.3f" % (time.time() - _t0[0]))
            # the upper loader is mapped: its r_brk says when the program
            # and its libraries are
            ck._arm_upper_loader()
            brk = ck._brk_bp.location if ck._brk_bp is not None else None
            if not brk:
                return False
            bps.append(_StopAt(brk, _consistent))
            for _i in range(64):
                gdb.execute("continue", to_string=True)
                if not inf.pid:
                    return False
                if _consistent():
                    break
            else:
                return False
            ck.load_upper_symbols()
            entry = _program_entry()
            if entry is None:
                raise JobError("the program's entry point not found on the upper link map")
            bps.append(_StopAt("*%#x" % entry))
            for _i in range(64):
                gdb.execute("continue", to_string=True)
                if not inf.pid:
                    return False
                if ck._stopped_at(entry):
                    break
            else:
                return False
            for r in ENTRY_ZEROED:
                gdb.execute("set $%s = 0" % r, to_string=True)
            main = _program_main()
            if main is None:
                raise JobError("the program's main not found (is it built with -g?)")
            bps.append(_StopAt("*%#x" % main))
            for _i in range(64):
                gdb.execute("continue", to_string=True)
                if not inf.pid:
                    return False
                if ck._stopped_at(main):
                    break
            else:
                return False
        finally:
            ck.stop_at_upper_start[0] = False
            for b in bps:
                if b.is_valid():
                    b.delete()
            gdb.execute("handle SIGSTOP stop print pass", to_string=True)
    ck.mark_threads()
    return ck._stopped_at(main)


def attach_to_cut(pid):
    """Attach to the held rank of a job restarted from a generation, let
    it become the runtime and restore its image, and stop every restored
    thread on the program's own instruction (ckptmpi.py's hold of a
    restart). True there."""
    inf = ck._inf()
    _t0[0] = time.time()
    with ck._Silence():
        _attach(pid)
        bp = None
        catch = None
        ok = False
        try:
            # the holder's exec of the runtime: from there on its symbols
            # are known, and no thread of the image exists yet (threads
            # are cloned before the main one reaches the restorer: a stop
            # any later could let one run the program)
            before = set(b.number for b in gdb.breakpoints() or [])
            gdb.execute("catch exec", to_string=True)
            catch = [b for b in gdb.breakpoints() or [] if b.number not in before][0]
            gdb.execute("continue", to_string=True)
            if not inf.pid:
                return False
            catch.delete()
            catch = None
            _trace("restart: exec %.3f" % (time.time() - _t0[0]))
            bp = gdb.Breakpoint("restorer_finish_thread", internal=True)
            bp.silent = True
            if not _continue_to("restorer_finish_thread"):
                return False
            bp.delete()
            bp = None
            ok = ck.hold_restored_threads()
        finally:
            for b in (bp, catch):
                if b is not None and b.is_valid():
                    b.delete()
            # left so: the threads the restorer cloned while GDB was
            # attaching get GDB's own SIGSTOPs late, which are no signal
            # of the program's (a program that stops itself is not seen)
    _trace("restart held %.3f" % (time.time() - _t0[0]))
    return ok


def attach(job, pid):
    """Rank R of the job, just launched: at its main, or at its cut for a
    job restarted from a generation."""
    return attach_to_cut(pid) if job.restart else attach_to_main(pid)


def relaunch(gen=None):
    """Kill the job (rank R with GDB) and launch it again, replaying;
    stopped at rank R's main (or at the session's generation's cut). gen:
    from this job-wide generation the session took instead, in place
    (its files rolled back), the MPI log where its image stood. True on
    success."""
    job = JOB[0]
    first = job.restart
    if gen is not None:
        job.restart = {"generation": gen, "env": {"CKPTMPI_RESTART": str(gen)},
                       "record": False}
    try:
        return _relaunch(job)
    finally:
        job.restart = first


def _relaunch(job):
    inf = ck._inf()
    t0 = time.time()
    # mpirun first: it would report rank R's death to the terminal
    job.kill_launcher()
    if inf.pid:
        with ck._Silence():
            gdb.execute("kill", to_string=True)
    t1 = time.time()
    job.kill()
    t2 = time.time()
    pid = job.launch()
    t3 = time.time()
    # the runtime's libraries' symbols are not read again (what starting
    # a process under GDB costs most): the program's are kept
    saved = gdb.parameter("auto-solib-add")
    gdb.execute("set auto-solib-add off", to_string=True)
    try:
        ok = attach(job, pid)
    finally:
        gdb.execute("set auto-solib-add %s" % ("on" if saved else "off"), to_string=True)
    _trace("relaunch: gdb kill %.3f, job kill %.3f, launch %.3f, to main %.3f s"
           % (t1 - t0, t2 - t1, t3 - t2, time.time() - t3))
    return ok


def refuse_run():
    """hook-run, hook-start: the job is launched by ckptmpi (rank R was
    stopped at main), not by GDB."""
    if JOB[0] is not None and ck._Silence.depth == 0:
        raise gdb.GdbError("rank %d of the %d-rank job was started by ckptmpi debug (it stopped "
                           "at main): continue, next, ... run it; reverse commands go back"
                           % (JOB[0].rank, JOB[0].np))


class _RefuseRun(gdb.Command):
    """ckptmpi-refuse-run: hook-run/start/starti: refused for an inspected
    rank or a rank of a live job (said without a Python traceback)."""

    def __init__(self):
        super().__init__("ckptmpi-refuse-run", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        ck.refuse_if_inspecting()
        refuse_run()


_RefuseRun()


class JobCommand(gdb.Command):
    """ckptmpi-job PLAN: launch the MPI job of PLAN with rank R under GDB,
    stopped at its main."""

    def __init__(self):
        super().__init__("ckptmpi-job", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        import ckptmpi_reverse as rv
        with open(arg.strip()) as f:
            plan = json.load(f)
        job = Job(plan)
        JOB[0] = job

        def at_exit(event=None):
            # rank R still there: the job goes with it; ended: the other
            # ranks finish what they do
            try:
                alive = bool(ck._inf().pid)
                if alive:
                    job.kill_launcher()
                    gdb.execute("kill", to_string=True)
            except gdb.error:
                alive = True
            job.wait_end(0 if alive else 30)
            if plan.get("scratch"):
                import shutil
                shutil.rmtree(plan["dir"], ignore_errors=True)
        gdb.events.gdb_exiting.connect(at_exit)
        t0 = time.time()
        with rv._Busy():
            pid = job.launch()
            if not attach_to_main(pid):
                raise JobError("rank %d did not reach main%s" % (
                    job.rank, ": " + job.error_tail() if job.error_tail() else ""))
        _msg("rank %d of a %d-rank %s job (mpirun, pid %d) stopped at main in %.2f s; the other "
             "ranks run under ckptmpi; MPI outcomes %s %s"
             % (job.rank, job.np, plan["flavour"], job.proc.pid, time.time() - t0,
                "replayed from" if plan["replay"] else "recorded in",
                job.replay_dir()))
        rv.job_started()
        gdb.execute("frame", to_string=False)


JobCommand()
