# ckptmpi_reverse.py: reverse execution in `ckptmpi debug`, by checkpoints
# and re-execution (issue 10, part 2). Loaded by ckptmpi.py.
#
# The session takes checkpoints of the program by itself, at its current
# stop (the runtime's own checkpoint, driven from GDB so that no thread
# executes an instruction of the program meanwhile): at the first stop
# after `run`/`start`, then after every CHECKPOINT_STOPS user commands or
# CHECKPOINT_SECONDS of run time. Every place the program stopped at is
# remembered as a position: the thread, its registers and the bytes of its
# innermost frame. Going back = restarting the newest checkpoint before the
# target in this same GDB session (the program's symbols stay loaded: same
# addresses) and running on, with the user's breakpoints out of the way,
# to the target: a breakpoint on its pc that stops where the registers and
# the frame are those of the position. libckptmpi-replay.so (replay/)
# makes the re-execution see what the first execution saw.
#
#   reverse-step, reverse-next: the previous line (any frame / this frame):
#       line-start breakpoints of the frame's function, one re-execution to
#       find the last one hit before now, one to land there
#   reverse-finish: the call of the current function (its call instruction)
#   reverse-continue: the previous hit of an enabled breakpoint/watchpoint
#   undo: the stop before the last command
#   reverse-watch EXPR: the last change of EXPR before now
#
# Each search re-executes from the newest checkpoint before now; if it
# finds nothing there, from the one before, and so on.

import os
import sys
import threading
import time

import gdb
import __main__ as ck

PARK_SIGNAL = "SIG40"         # core/park.h: SIGRTMIN + 6
# the registers that tell a position: pc, stack and the callee-saved ones.
# Not the scratch registers nor the flags: after a call they hold what the
# callee left, and a replayed call (replay/) leaves other leftovers than
# the recorded one did
REGS = ("rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15")


def _msg(text):
    ck._msg(text)


class ReverseError(gdb.GdbError):
    pass


# ------------------------------------------------------------------ positions

class Position:
    """One instant of the execution: a thread (by its thread pointer, the
    same in every re-execution), its registers and its innermost frame's
    bytes. The first time after checkpoint `base` that the program is in
    that state is the instant."""

    __slots__ = ("pc", "sp", "fs", "fp", "base", "line", "func", "label", "bps")

    def __init__(self, base, label=""):
        f = gdb.newest_frame()
        vals = [int(f.read_register(r)) & 0xffffffffffffffff for r in REGS]
        self.pc, self.sp = vals[0], vals[1]
        self.fs = int(f.read_register("fs_base"))
        self.fp = _fingerprint(f, vals)
        self.base = base
        sal = gdb.find_pc_line(self.pc)
        self.line = sal.line if sal.symtab else 0
        self.func = f.name() or "??"
        self.label = label
        self.bps = ()   # the user's breakpoints that stopped the program here

    def here(self):
        """Is the selected thread in this state now?"""
        f = gdb.newest_frame()
        if int(f.read_register("rsp")) & 0xffffffffffffffff != self.sp:
            return False
        if int(f.read_register("fs_base")) != self.fs:
            return False
        vals = [int(f.read_register(r)) & 0xffffffffffffffff for r in REGS]
        return _fingerprint(f, vals) == self.fp

    def __repr__(self):
        return "<%s:%d pc=%#x base=%d %s>" % (self.func, self.line, self.pc, self.base, self.label)


def _fingerprint(frame, vals):
    """The registers of REGS and the bytes of the frame between rsp and the
    saved rbp (at most 512): at -O0 the locals; what lies below rsp (dead,
    or an inferior call's leftovers) is not looked at."""
    sp, bp = vals[1], vals[2]
    n = bp + 16 - sp if sp <= bp < sp + 4096 else 64
    n = max(16, min(n, 512))
    try:
        mem = bytes(gdb.selected_inferior().read_memory(sp, n))
    except gdb.MemoryError:
        mem = b""
    return (tuple(vals), mem)


def _thread_fs(th):
    """th's thread pointer; None for a thread that is gone (GDB may still
    list a thread of the process a restart killed)."""
    cur = gdb.selected_thread()
    try:
        th.switch()
        return int(gdb.parse_and_eval("$fs_base"))
    except gdb.error:
        return None
    finally:
        if cur is not None and cur.is_valid():
            try:
                cur.switch()
            except gdb.error:
                pass


def _program_threads():
    out = []
    for th in gdb.selected_inferior().threads():
        fs = _thread_fs(th) if th.is_valid() else None
        if fs is not None and not ck.WINDOW[0] <= fs < ck.WINDOW[1]:
            out.append(th)
    return out


def _thread_with_fs(fs):
    for th in gdb.selected_inferior().threads():
        if th.is_valid() and _thread_fs(th) == fs:
            return th
    return None


# ------------------------------------------------------------------ the session

class Checkpoint:
    __slots__ = ("gen", "pos", "fragile")

    def __init__(self, gen, pos, fragile=False):
        self.gen = gen
        self.pos = pos
        # taken in a process the session restarted: such an image does not
        # always restore under GDB yet ("cannot map 0x7ffffffdd000-...: File
        # exists": a page of the runtime's own stack taken for the
        # program's); if it does not, the one before is used
        self.fragile = fragile


class Session:
    def __init__(self):
        self.checkpoints = []   # oldest first; positions name them by index
        self.history = []       # the stop after each user command: undo's stack
        self.run_time = 0.0     # run time since the newest checkpoint
        self.total_run = 0.0    # run time of the user's commands in this run
        self.stops = 0          # user commands since the newest checkpoint
        self.cont_at = None
        self.busy = 0           # > 0: the extension drives the program
        self.off = False
        self.diverged = 0       # divergences of the replay reported
        self.stop_seq = 0       # the user's stops, and the last one handled
        self.done_seq = 0
        self.fast = None        # what the last next/step noted (before_step_command)
        self.cont_fast = None   # the last continue (before_continue)
        self.stop_bps = ()      # the user's breakpoints of the last stop
        self.restarted = False  # this process is a restart of the session's

    def reset(self):
        for c in self.checkpoints:
            _remove_generation(c.gen)
        _drop_fast()
        self.__init__()


S = Session()


def _ckdir():
    """The program's checkpoint directory (the inferior's environment:
    `ckptmpi debug --restart` gives it a scratch one; an MPI job's is
    its plan's)."""
    if _job() is not None:
        return _job().plan["dir"]
    try:
        out = gdb.execute("show environment CKPTMPI_DIR", to_string=True)
        if " = " in out:
            return out.split(" = ", 1)[1].strip()
    except gdb.error:
        pass
    return os.environ.get("CKPTMPI_DIR", "")


def _generation_path(gen):
    return os.path.join(_ckdir(), "ckpt-%06d.h5" % gen)


def _remove_generation(gen):
    try:
        os.unlink(_generation_path(gen))
    except OSError:
        pass


class _Busy:
    def __enter__(self):
        S.busy += 1
        ck._keep_symbols += 1
        return self

    def __exit__(self, *exc):
        S.busy -= 1
        ck._keep_symbols -= 1
        return False


class _UserBreakpointsOff:
    """The user's breakpoints and watchpoints do not stop a re-execution
    (and are not inserted before the program's memory is back)."""

    def __enter__(self):
        self.saved = []
        for b in gdb.breakpoints() or []:
            if b.is_valid() and b.enabled and b.number > 0:
                self.saved.append(b)
                b.enabled = False
        return self

    def __exit__(self, *exc):
        for b in self.saved:
            if b.is_valid():
                b.enabled = True
        return False


# ------------------------------------------------------------------ checkpoint at the stop

_restorer = [None]   # the lower libc's __restore_rt: where park_handler returns to


class _ParkEntry(gdb.Breakpoint):
    """park_handler's first instruction: its return address is the lower
    libc's signal restorer (learned once per session)."""

    def __init__(self):
        super().__init__("park_handler", internal=True)
        self.silent = True

    def stop(self):
        if _restorer[0] is None:
            sp = int(gdb.parse_and_eval("$rsp"))
            _restorer[0] = ck._u64(sp)
            return True
        return False


class _ParkReturn(gdb.Breakpoint):
    """The restorer, reached by a thread of the program on its way back from
    the park handler: stop it there (one rt_sigreturn from its own code)."""

    def __init__(self, addr):
        super().__init__("*%#x" % addr, internal=True)
        self.silent = True

    def stop(self):
        fs = int(gdb.parse_and_eval("$fs_base"))
        return not (ck.WINDOW[0] <= fs < ck.WINDOW[1])


def _link_int(field):
    return int(ck._link_area()[field])


def _pc():
    return int(gdb.parse_and_eval("$pc"))


def _through_restorer(th):
    """th, alone: if it stands on the signal restorer, step it through
    its rt_sigreturn. True when it is then on its own code (a thread that
    was in a system call stands on its `syscall`, to restart it)."""
    th.switch()
    r = _restorer[0]
    for _i in range(3):
        if r is None or not r <= _pc() < r + 16:
            break
        gdb.execute("stepi", to_string=True)
    return not ck.is_lower(_pc())


def _signal_rounds(inf, progs, bps, before):
    """Until the runtime has an outcome: every thread of the program on its
    own code gets the park signal queued and the program runs (the runtime
    with it) until a thread stops in the runtime's handler. before: the
    runtime's (committed, failed) counts before it was asked. Returns "ok"
    or "failed", every thread stopped."""
    committed, failed = before
    t0 = time.time()
    while True:
        with ck.Alone():
            back = [th for th in progs if th.is_valid() and _through_restorer(th)]
        if _link_int("committed") != committed:
            return "ok"
        if _link_int("failed") != failed:
            return "failed"
        if time.time() - t0 > 60:
            raise ReverseError("the checkpoint did not complete within 60 s")
        # threads inside the handler get no second signal
        for th in back:
            th.switch()
            gdb.execute("queue-signal %s" % PARK_SIGNAL, to_string=True)
        gdb.execute("continue", to_string=True)
        if not inf.pid:
            raise ReverseError("the program ended while a checkpoint was taken")
        # the first stop learns the restorer (_ParkEntry): from the next
        # round on, every return from the handler stops there
        if _restorer[0] is not None and len(bps) == 1:
            bps.append(_ParkReturn(_restorer[0]))


def _park_pending(pid, tid):
    """Has the kernel a park signal pending for thread tid? (the runtime
    signals again a thread that does not park at once)"""
    try:
        with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith("SigPnd:"):
                    return bool(int(line.split()[1], 16) >> 39 & 1)
    except (OSError, ValueError):
        pass
    return False


def _return_alone(inf, progs):
    """After the commit (the runtime has released its park): each thread
    still in the runtime's handler, or with a park signal still pending for
    it (the runtime signals again a thread slow to park), runs alone
    through the handler back to its own code, not in the middle of the
    user's next command; the other threads do not run at all."""
    with ck.Alone():
        for th in progs:
            for _i in range(8):
                if not th.is_valid() or (_through_restorer(th) and
                                         not _park_pending(inf.pid, th.ptid[1])):
                    break
                gdb.execute("continue", to_string=True)
                if not inf.pid:
                    raise ReverseError("the program ended while a checkpoint was taken")
            if th.is_valid() and ck.is_lower(_pc()):
                raise ReverseError("a thread of the program did not come back from the "
                                   "checkpoint")


def take_checkpoint():
    """A checkpoint of the program where it stands, every thread of it
    exactly where it stopped. Returns the generation number.

    The runtime is asked for one (a byte on its trigger pipe, as
    ckptmpi_checkpoint() does) and the program is resumed with the park
    signal queued on each of its threads, so that each runs the runtime's
    park handler before any instruction of its own. A handler that finds
    no checkpoint under way yet returns at once; every return is caught on
    the signal restorer and stepped through its rt_sigreturn, which puts
    the thread back on its own instruction, and round it goes again until
    the checkpoint is committed. Then each thread still in the handler is
    brought back alone."""
    inf = gdb.selected_inferior()
    if not inf.pid or not ck._link("upper_r_debug"):
        raise ReverseError("the program is not running under ckptmpi")
    user_thread = gdb.selected_thread()
    user_frame = gdb.selected_frame()
    progs = _program_threads()
    before = (_link_int("committed"), _link_int("failed"))
    fd = _link_int("trigger_fd")
    try:
        w = os.open("/proc/%d/fd/%d" % (inf.pid, fd), os.O_WRONLY)
        os.write(w, b"a")
        os.close(w)
    except OSError as e:
        raise ReverseError("cannot ask the runtime for a checkpoint: %s" % e)
    bps = [_ParkEntry()]
    if _restorer[0] is not None:
        bps.append(_ParkReturn(_restorer[0]))
    outcome = None
    # no breakpoint may be inserted in the program's memory while the
    # runtime copies it: the image would keep GDB's int3 bytes
    off = _UserBreakpointsOff()
    off.__enter__()
    internal = [b for b in (ck._brk_bp, _diverge_bp[0]) if b is not None and b.is_valid()
                and b.enabled]
    for b in internal:
        b.enabled = False
    try:
        with ck._Silence():
            outcome = _signal_rounds(inf, progs, bps, before)
            _return_alone(inf, progs)
    finally:
        for b in bps:
            if b.is_valid():
                b.delete()
        off.__exit__(None, None, None)
        for b in internal:
            if b.is_valid():
                b.enabled = True
        if user_thread is not None and user_thread.is_valid():
            user_thread.switch()
            try:
                user_frame.select()
            except gdb.error:
                pass
    if outcome != "ok":
        raise ReverseError("the runtime could not take a checkpoint (see the program's stderr)")
    return _newest_generation()


def _newest_generation():
    best = 0
    for n in os.listdir(_ckdir()):
        if n.startswith("ckpt-") and n.endswith(".h5"):
            try:
                best = max(best, int(n[5:-3]))
            except ValueError:
                pass
    return best


def checkpoint_here(label="checkpoint"):
    """Take a checkpoint at the current stop and remember it (with its
    position)."""
    with _Busy():
        t0 = time.time()
        gen = take_checkpoint()
        pos = Position(len(S.checkpoints), label)
        S.checkpoints.append(Checkpoint(gen, pos, S.restarted))
        S.run_time = 0.0
        S.stops = 0
        _stats["checkpoint"] = time.time() - t0
    return pos


# ------------------------------------------------------------------ going back

_stats = {}


def _job():
    """The live MPI job of this session (ckptmpi_job.py), or None."""
    mod = sys.modules.get("ckptmpi_job")
    return mod.JOB[0] if mod is not None else None


def _restart_job(index):
    """An MPI job's session: checkpoint 0 is the job's start (or the
    generation the session restarted); later ones are job-wide generations
    the session took at rank R's stops. The whole job is killed and
    launched again from it, rank R held there, every rank replaying what
    MPI decided (from the start: the session's log; from a generation: the
    image's own log position)."""
    c = S.checkpoints[index]
    t0 = time.time()
    div = _diverge_bp[0] if _diverge_bp[0] is not None and _diverge_bp[0].is_valid() else None
    if div is not None:
        div.enabled = False
    try:
        with _UserBreakpointsOff():
            ok = sys.modules["ckptmpi_job"].relaunch(c.gen if index else None)
    finally:
        if div is not None and div.is_valid():
            div.enabled = True
    if not ok:
        if index > 0:
            _msg("the job's generation %d (checkpoint %d) did not restart: re-executing from "
                 "the checkpoint before" % (c.gen, index))
            return _restart_job(index - 1)
        raise ReverseError("the relaunch of the job did not bring rank %d back%s"
                           % (_job().rank, ": " + _job().error_tail() if _job().error_tail()
                              else ""))
    if index:
        th = _thread_with_fs(c.pos.fs)
        if th is not None:
            th.switch()
    _stats["restart"] = round(time.time() - t0, 3)
    S.restarted = True
    for later in S.checkpoints[index + 1:]:
        _remove_generation(later.gen)
    del S.checkpoints[index + 1:]
    for p in S.history:
        if p.base > index:
            p.base = index
    return index


def job_started():
    """ckptmpi_job.py: rank R stands at main, the job's start: the
    session's checkpoint (what a reverse command restarts) and the first
    stop undo knows."""
    S.reset()
    with _Busy():
        pos = Position(0, "start")
        S.checkpoints.append(Checkpoint(0, pos))
        S.history.append(Position(0, "stop"))
    _arm_diverge()


def _restart(index):
    """Restart checkpoint `index` in this GDB session, stopped before the
    program runs on. Later checkpoints are dropped (they lie in a future
    that the re-execution makes again); positions based on them rebased."""
    if _job() is not None:
        return _restart_job(index)
    c = S.checkpoints[index]
    plan = {"dir": _ckdir()}
    gen = {"generation": c.gen, "path": _generation_path(c.gen)}
    sb = {"root": _ckdir(), "ckdir": _ckdir(), "map": ""}
    t0 = time.time()
    # no breakpoint in the program's code while its memory is not back: GDB
    # would keep the bytes it found there and write them back later
    div = _diverge_bp[0] if _diverge_bp[0] is not None and _diverge_bp[0].is_valid() else None
    if div is not None:
        div.enabled = False
    # GDB's own share of a restart is starting a process: no shell, and no
    # symbols of the runtime's libraries (the program's are kept)
    saved = {}
    for name in ("auto-solib-add", "startup-with-shell"):
        saved[name] = gdb.parameter(name)
        gdb.execute("set %s off" % name, to_string=True)
    try:
        with _UserBreakpointsOff():
            ok = ck.restore_stop(plan, gen, sb, quiet=True)
    finally:
        for name, value in saved.items():
            gdb.execute("set %s %s" % (name, "on" if value else "off"), to_string=True)
        if div is not None and div.is_valid():
            div.enabled = True
    with ck._Silence():
        gdb.execute("unset environment CKPTMPI_RESTART", to_string=True)
    if not ok:
        if c.fragile and index > 0:
            _msg("checkpoint %d (generation %d, taken in a restarted process) does not restore: "
                 "dropped, re-executing from the one before" % (index, c.gen))
            return _restart(index - 1)
        raise ReverseError("the restart of checkpoint %d (generation %d) failed" % (index, c.gen))
    th = _thread_with_fs(c.pos.fs)
    if th is not None:
        th.switch()
    _stats["restart"] = round(time.time() - t0, 3)
    S.restarted = True
    for later in S.checkpoints[index + 1:]:
        _remove_generation(later.gen)
    del S.checkpoints[index + 1:]
    for p in S.history:
        if p.base > index:
            p.base = index
    return index


class _Target(gdb.Breakpoint):
    """Stops where the program is in the state of a position."""

    def __init__(self, pos):
        super().__init__("*%#x" % pos.pc, internal=True)
        self.silent = True
        self.pos = pos
        self.hit = False

    def stop(self):
        if self.pos.here():
            self.hit = True
            return True
        return False


class _Recorder(gdb.Breakpoint):
    """Notes each pass for which on_hit() returns something, never stops."""

    def __init__(self, spec, on_hit, watch=False):
        if watch:
            super().__init__(spec, gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=True)
        else:
            super().__init__(spec, internal=True)
        self.silent = True
        self.on_hit = on_hit
        self.watch = watch
        self.pc = int(spec[1:], 16) if spec.startswith("*0x") else None

    def stop(self):
        try:
            self.on_hit()
        except gdb.error:
            pass
        return False


REPLAY_HEAD = 56  # replay/replay_log.c: struct replay_header up to why[]


def _replay_state():
    """(divergences so far, the last one in words) from the replay log
    (an MPI job's: rank R's MPI log)."""
    if _job() is not None:
        return _job().diverged()
    path = os.environ.get("CKPTMPI_REPLAY_LOG")
    if not path:
        return 0, ""
    try:
        with open(path, "rb") as f:
            head = f.read(REPLAY_HEAD + 512)
    except OSError:
        return 0, ""
    if len(head) < REPLAY_HEAD:
        return 0, ""
    diverged = int.from_bytes(head[32:40], "little")
    why = head[REPLAY_HEAD:].split(b"\0", 1)[0].decode(errors="replace")
    return diverged, why


class Diverged(ReverseError):
    pass


_diverge_bp = [None]


def _arm_diverge():
    """The breakpoint on ckptmpi_replay_diverged, once the replay library's
    symbols are there (the program runs)."""
    if _diverge_bp[0] is not None and _diverge_bp[0].is_valid():
        return
    try:
        gdb.parse_and_eval("&ckptmpi_replay_diverged")
    except gdb.error:
        return
    _diverge_bp[0] = _DivergeBreakpoint()


class _DivergeBreakpoint(gdb.Breakpoint):
    """ckptmpi_replay_diverged() in the replay library: the program did
    something the recorded run did not. A re-execution of the extension's
    own notices it (_run_until); the user's run stops there, said so."""

    def __init__(self):
        super().__init__("ckptmpi_replay_diverged", internal=True)
        self.silent = True

    def stop(self):
        if S.busy or ck._Silence.depth:
            return False
        d, why = _replay_state()
        S.diverged = d
        _msg("the program diverged from the recorded run (%s): from here it runs live, "
             "another execution than the one recorded" % why)
        return True


def _run_until(target, limit):
    """Continue, silently, until the _Target breakpoint is hit. The
    program's end, a divergence of the replay, `limit` seconds: errors."""
    inf = gdb.selected_inferior()
    timer, expired = ck.interrupt_after(limit)
    d0 = _replay_state()[0]
    try:
        while not target.hit:
            with ck._Silence():
                gdb.execute("continue", to_string=True)
            if not inf.pid:
                why = _job().error_tail() if _job() is not None else ""
                raise Diverged("the program ended before the re-execution came back to where it "
                               "was: it did not retrace its steps%s" % (" (the job: %s)" % why
                                                                        if why else ""))
            d, why = _replay_state()
            if d != d0:
                S.diverged = d
                raise Diverged("the re-execution diverged from the recorded run (%s): what "
                               "the program shows now is another execution" % why)
            if expired:
                raise Diverged("the re-execution did not come back to where it was within "
                               "%.0f s: it took another path" % limit)
    finally:
        timer.cancel()


def _limit():
    """How long a re-execution may take: ten times what the user's own
    commands ran (from any checkpoint), and 30 s at least."""
    return max(30.0, 10 * S.total_run + 10)


def _reexecute(index, end, make=None):
    """Restart checkpoint index and run on to position `end` with the
    breakpoints make() returns in place (deleted afterwards). Returns the
    checkpoint restarted (an older one if that one did not restore)."""
    index = _restart(index)
    th = _thread_with_fs(end.fs)
    if th is not None:
        th.switch()
        if end.here():
            return index
    t = _Target(end)
    made = make() if make else []
    # the checkpoint's own position is passed too: a breakpoint there
    # would have been hit had the run come from before it
    pc = _pc()
    for b in made:
        if isinstance(b, _Recorder) and not b.watch and b.pc == pc:
            b.stop()
    try:
        with _UserBreakpointsOff():
            _run_until(t, _limit())
    finally:
        t.delete()
        for b in made:
            if b.is_valid():
                b.delete()
    th = _thread_with_fs(end.fs)
    if th is not None:
        th.switch()
    return index


def goto(pos):
    """Put the program in the state of position pos."""
    _reexecute(pos.base, pos)


def _scan(make, now):
    """Events before now: re-execute from the newest checkpoint to now
    with the breakpoints make(events) creates (each appends to events what
    it saw); if nothing was seen, from the checkpoint before, up to that
    one's position, and so on. Returns the events, each a
    (Position, what) with the position based on the checkpoint it was
    found after."""
    idx = len(S.checkpoints) - 1
    end = now
    while idx >= 0:
        start = S.checkpoints[idx].pos
        if start.fp == end.fp and start.fs == end.fs:
            idx -= 1  # an empty window (a checkpoint taken right here): no restart for it
            continue
        events = []
        idx = _reexecute(idx, end, lambda: make(events))
        events = [e for e in events if not (e[0].fp == end.fp and e[0].fs == end.fs)]
        if events:
            for e in events:
                e[0].base = idx
            return events
        end = S.checkpoints[idx].pos
        idx -= 1
    return []


def _frame_cfa(frame):
    older = frame.older()
    if older is None:
        return None
    return int(older.read_register("rsp"))


def _newest_fs_rsp():
    f = gdb.newest_frame()
    return int(f.read_register("fs_base")), int(f.read_register("rsp"))


class _FrameInfo:
    """What a search needs of one frame of now's stack: its function's
    line starts and its CFA (the same in every re-execution)."""

    def __init__(self, frame):
        self.cfa = _frame_cfa(frame)
        self.name = frame.name() or "??"
        self.lower = ck.is_lower(frame.pc())
        self.start, self.starts = None, {}
        block = None
        try:
            block = frame.block()
            while block is not None and block.function is None:
                block = block.superblock
        except RuntimeError:
            block = None
        sal = frame.find_sal()
        if block is not None and sal.symtab is not None:
            self.start = block.start
            for e in sal.symtab.linetable():
                if block.start <= e.pc < block.end and e.line > 0:
                    self.starts.setdefault(e.pc, e.line)


def _stack_info(limit=64):
    out = []
    f = gdb.newest_frame()
    while f is not None and len(out) < limit:
        out.append(_FrameInfo(f))
        f = f.older()
    return out


def _line_events(fi, now):
    """Line starts passed in the instance of frame fi before now:
    [(Position, line)]."""
    def make(events):
        def on_hit_at(pc, line):
            def on_hit():
                f = gdb.newest_frame()
                if int(f.read_register("fs_base")) != now.fs or _frame_cfa(f) != fi.cfa:
                    return
                if pc == fi.start:
                    del events[:]  # the function entered anew: a new instance of the frame
                events.append((Position(-1), line))
            return on_hit
        return [_Recorder("*%#x" % pc, on_hit_at(pc, line)) for pc, line in fi.starts.items()]
    return _scan(make, now)


def _last_line_run(events):
    """The first event of the last run of events on one line."""
    i = len(events) - 1
    while i > 0 and events[i - 1][1] == events[i][1]:
        i -= 1
    return events[i][0]


def _has_call(pos, fi):
    """Does the line that starts at pos contain a call instruction?"""
    ends = sorted(pc for pc in fi.starts if pc > pos.pc)
    end = ends[0] if ends else pos.pc + 64
    arch = gdb.newest_frame().architecture()
    return any(i["asm"].startswith("call") for i in arch.disassemble(pos.pc, end - 1))


def before_step_command():
    """hook-next, hook-step: while the command runs, the line starts the
    current frame passes are noted (breakpoints that never stop on the
    function's line-table addresses), so that a reverse-next or
    reverse-step right after it knows the previous line without a search:
    one restart instead of two."""
    if S.busy or ck._Silence.depth:
        return  # the extension's own step (reverse-step's walk)
    _drop_fast()
    if S.off or not S.checkpoints:
        return
    th = gdb.selected_thread()
    if not gdb.selected_inferior().pid or th is None or th.is_running():
        return
    try:
        f = gdb.newest_frame()
        fi = _FrameInfo(f)
        if fi.lower or not fi.starts or fi.cfa is None:
            return
        base = len(S.checkpoints) - 1
        start = Position(base, "before")
    except gdb.error:
        return
    events = []
    if start.pc in fi.starts:
        events.append((start, fi.starts[start.pc]))

    def on_hit_at(pc, line):
        def on_hit():
            f = gdb.newest_frame()
            if int(f.read_register("fs_base")) != start.fs or _frame_cfa(f) != fi.cfa:
                return
            if pc == fi.start:
                del events[:]
            events.append((Position(base), line))
        return on_hit
    bps = [_Recorder("*%#x" % pc, on_hit_at(pc, line)) for pc, line in fi.starts.items()]
    S.fast = {"cfa": fi.cfa, "fs": start.fs, "events": events, "bps": bps,
              "hist": len(S.history)}


def _disarm_fast():
    """The noting breakpoints go (kept: what they noted)."""
    if S.fast:
        for b in S.fast["bps"]:
            if b.is_valid():
                b.delete()
        S.fast["bps"] = []


def _drop_fast():
    _disarm_fast()
    S.fast = None


def _fast_line_target(now, fi):
    """The previous line start of this frame, from what the last command
    noted (None: search)."""
    F = S.fast
    if not F or F["hist"] != len(S.history) - 1 or F["fs"] != now.fs or F["cfa"] != fi.cfa:
        return None
    events = [e for e in F["events"] if not (e[0].fp == now.fp and e[0].fs == now.fs)]
    return _last_line_run(events) if events else None


def reverse_line(step_into):
    now = _current_position()
    stack = _stack_info()
    fast = _fast_line_target(now, stack[0]) if stack else None
    if fast is not None:
        _stats["fast"] = True
        target = fast
        if step_into and _has_call(target, stack[0]):
            inner = _last_callee_line(target, now, stack[0].cfa)
            if inner is not None:
                target = inner
        goto(target)
        return target
    _stats["fast"] = False
    for level, fi in enumerate(stack):
        if fi.lower or not fi.starts:
            if level == 0:
                raise ReverseError("no line information for %s: use reverse-finish or undo"
                                   % fi.name)
            break
        events = _line_events(fi, now)
        if events:
            target = _last_line_run(events)
            if step_into and level == 0 and _has_call(target, fi):
                inner = _last_callee_line(target, now, fi.cfa)
                if inner is not None:
                    target = inner
            goto(target)
            return target
        # now is the first line of this function: the line that called it
    raise ReverseError("No more reverse-execution history.")


def _last_callee_line(start, now, cfa):
    """reverse-step into the previous line's calls: from the start of that
    line, `step` forward to now; the last line start in a function it
    called (one level down, with line information) is the target."""
    goto(start)
    last = None
    t = _Target(now)
    try:
        with _UserBreakpointsOff(), ck._Silence():
            for _i in range(100000):
                gdb.execute("step", to_string=True)
                if t.hit or now.here() or not gdb.selected_inferior().pid:
                    break
                f = gdb.newest_frame()
                if _frame_cfa(f) == cfa:
                    continue
                older = f.older()
                if older is not None and _frame_cfa(older) == cfa:
                    if f.find_sal().symtab is not None:
                        last = Position(start.base, "callee")
                    continue
                gdb.execute("finish", to_string=True)  # deeper: back up one level
    finally:
        t.delete()
    return last


def _call_address(caller_pc, arch):
    """The address of the call instruction that returns to caller_pc."""
    block = gdb.block_for_pc(caller_pc - 1)
    lo = caller_pc - 16
    while block is not None and block.function is None:
        block = block.superblock
    if block is not None:
        lo = block.start
    for i in arch.disassemble(lo, caller_pc - 1):
        if i["addr"] + i["length"] == caller_pc:
            return i["addr"]
    raise ReverseError("cannot find the call instruction before %#x" % caller_pc)


def reverse_finish():
    now = _current_position()
    frame = gdb.selected_frame()
    caller = frame.older()
    if caller is None or ck.is_lower(caller.pc()):
        raise ReverseError('"finish" not meaningful in the outermost frame.')
    call = _call_address(caller.pc(), frame.architecture())
    cfa = _frame_cfa(frame)

    def make(events):
        def on_hit():
            if _newest_fs_rsp() == (now.fs, cfa):
                events.append((Position(-1), None))
        return [_Recorder("*%#x" % call, on_hit)]
    events = _scan(make, now)
    if not events:
        raise ReverseError("the call of this function is older than the session's first "
                           "checkpoint")
    goto(events[-1][0])
    return events[-1][0]


def _watch_spec(expr):
    """A location expression for EXPR's object (its address and type), so
    that watching does not depend on a frame."""
    v = gdb.parse_and_eval(expr)
    if v.address is None:
        raise ReverseError("%s is not an lvalue: it cannot be watched backwards" % expr)
    return "*(%s *) %#x" % (v.type, int(v.address))


def reverse_continue():
    now = _current_position()
    prev, num = _fast_continue_target()
    _stats["fast"] = prev is not None
    if prev is not None:
        goto(prev)
        return prev, num
    specs = []
    for b in gdb.breakpoints() or []:
        if not b.is_valid() or not b.enabled or b.number <= 0:
            continue
        if b.type == gdb.BP_BREAKPOINT:
            for loc in getattr(b, "locations", []):
                if loc.enabled and loc.address is not None and not ck.is_lower(loc.address):
                    specs.append((b.number, "*%#x" % loc.address, b.condition, False))
        elif b.type in (gdb.BP_WATCHPOINT, gdb.BP_HARDWARE_WATCHPOINT):
            try:
                specs.append((b.number, _watch_spec(b.expression), None, True))
            except (gdb.error, ReverseError) as e:
                raise ReverseError("watchpoint %d: %s" % (b.number, e))
    if not specs:
        return None, None

    def make(events):
        out = []
        for num, spec, cond, watch in specs:
            def on_hit(num=num, cond=cond):
                if cond and not bool(gdb.parse_and_eval(cond)):
                    return
                events.append((Position(-1), num))
            out.append(_Recorder(spec, on_hit, watch))
        return out
    events = _scan(make, now)
    if not events:
        return None, None
    target, num = events[-1]
    goto(target)
    return target, num


def reverse_watch(expr):
    now = _current_position()
    spec = _watch_spec(expr)
    before = []

    def make(events):
        def on_hit():
            events.append((Position(-1), str(gdb.parse_and_eval(spec))))
        # the value at the window's start: the old value of its first change
        before.append(str(gdb.parse_and_eval(spec)))
        return [_Recorder(spec, on_hit, True)]
    events = _scan(make, now)
    if not events:
        goto(now)
        raise ReverseError("%s did not change since the session's first checkpoint" % expr)
    target, new = events[-1]
    old = events[-2][1] if len(events) > 1 else before[-1]
    goto(target)
    return target, old, new


def _current_position():
    th = gdb.selected_thread()
    if th is None or not gdb.selected_inferior().pid:
        raise ReverseError("The program is not being run.")
    if not S.checkpoints:
        raise ReverseError("no checkpoint of this run yet: reverse execution starts at the "
                           "first stop after `run` (ckptmpi debug takes one there)")
    gdb.newest_frame().select()
    return Position(len(S.checkpoints) - 1, "now")


# ------------------------------------------------------------------ user commands

def _show_line(before_func):
    """What GDB says after a step: the frame when the function changed,
    else the line."""
    f = gdb.selected_frame()
    sal = f.find_sal()
    if f.name() != before_func or sal.symtab is None:
        gdb.execute("frame", to_string=False)
        return
    gdb.write("%d\t%s\n" % (sal.line, ck._source_line(sal.symtab.fullname(), sal.line)))


def _frame_line():
    out = gdb.execute("frame", to_string=True)
    return out[4:] if out.startswith("#0  ") else out


def _cmd_next(arg, before):
    t = reverse_line(False)
    _push(t)
    _show_line(before)


def _cmd_step(arg, before):
    t = reverse_line(True)
    _push(t)
    _show_line(before)


def _cmd_finish(arg, before):
    callee = gdb.execute("frame", to_string=True).splitlines()[0] if \
        gdb.selected_inferior().pid else ""
    t = reverse_finish()
    _push(t)
    gdb.write("Run back to call of %s\n\n" % callee)
    gdb.execute("frame", to_string=False)


def _cmd_continue(arg, before):
    target, num = reverse_continue()
    if target is None:
        goto(S.checkpoints[0].pos)
        _push(S.checkpoints[0].pos)
        gdb.write("\nNo more reverse-execution history.\n")
        gdb.execute("frame", to_string=False)
        return
    _push(target)
    S.history[-1].bps = (num,)
    kind = "Breakpoint"
    for b in gdb.breakpoints() or []:
        if b.number == num and b.type != gdb.BP_BREAKPOINT:
            kind = "Watchpoint"
    gdb.write("\n%s %d, %s" % (kind, num, _frame_line()))


def _cmd_undo(arg, before):
    if len(S.history) < 2:
        raise ReverseError("nothing to undo: this is the first stop of the run")
    S.history.pop()
    goto(S.history[-1])
    gdb.newest_frame().select()
    gdb.execute("frame", to_string=False)


def _cmd_watch(arg, before):
    expr = arg.strip()
    if not expr:
        raise ReverseError("usage: reverse-watch EXPRESSION")
    target, old, new = reverse_watch(expr)
    _push(target)
    f = gdb.newest_frame()
    sal = gdb.find_pc_line(f.pc() - 1)  # the store just executed
    where = "%s:%d" % (sal.symtab.filename, sal.line) if sal.symtab else "??"
    gdb.write("\nreverse-watch %s: last changed at %s in %s\n" % (expr, where, f.name() or "??"))
    if sal.symtab:
        gdb.write("%d\t%s\n" % (sal.line, ck._source_line(sal.symtab.fullname(), sal.line)))
    gdb.write("\nOld value = %s\nNew value = %s\n" % (old, new))
    gdb.execute("frame", to_string=False)


def _cmd_checkpoint(arg, before):
    pos = checkpoint_here("user")
    gdb.write("checkpoint %d taken (generation %d) in %.3f s\n"
              % (pos.base, S.checkpoints[-1].gen, _stats.get("checkpoint", 0)))


def _push(target):
    """Where a reverse command landed: undo's stack gets it."""
    S.history.append(Position(target.base, "reverse"))


def _make_command(name, doc, fn):
    class C(gdb.Command):
        __doc__ = doc

        def __init__(self):
            super().__init__(name, gdb.COMMAND_RUNNING)

        def invoke(self, arg, from_tty):
            if S.busy:
                raise gdb.GdbError("%s: the program is being re-executed" % name)
            before = None
            if gdb.selected_inferior().pid:
                try:
                    before = gdb.selected_frame().name()
                except gdb.error:
                    pass
            t0 = time.time()
            _disarm_fast()
            try:
                with _Busy():
                    fn(arg, before)
            except ReverseError as e:
                raise gdb.GdbError(str(e))
            except gdb.error as e:
                raise gdb.GdbError("%s: %s" % (name, e))
            finally:
                S.fast = None
                S.cont_fast = None
                _stats["command"] = (name, round(time.time() - t0, 3))
    C()


class _InfoReverse(gdb.Command):
    """info ckptmpi-reverse: the session's checkpoints, positions, timings."""

    def __init__(self):
        super().__init__("info ckptmpi-reverse", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        gdb.write("checkpoints: %d\n" % len(S.checkpoints))
        for i, c in enumerate(S.checkpoints):
            gdb.write("  %d: generation %d at %s:%d\n" % (i, c.gen, c.pos.func, c.pos.line))
        gdb.write("stops remembered (undo): %d\n" % len(S.history))
        for k, v in sorted(_stats.items()):
            gdb.write("  last %s: %s\n" % (k, v))
        d, why = _replay_state()
        if d:
            gdb.write("replay: %d divergence(s), the last: %s\n" % (d, why))


# ------------------------------------------------------------------ following the user

def _on_cont(event):
    if not S.busy and S.cont_at is None:
        S.cont_at = time.time()


def _on_user_stop(event):
    if not S.busy and not ck._Silence.depth:
        S.stop_seq += 1
        S.stop_bps = tuple(b.number for b in getattr(event, "breakpoints", []) or []
                           if b.is_valid() and b.number > 0)


def _bp_signature():
    return tuple((b.number, b.enabled, b.condition, b.type, getattr(b, "location", None),
                  getattr(b, "expression", None))
                 for b in gdb.breakpoints() or [] if b.is_valid() and b.number > 0)


def before_continue():
    """hook-continue: with the same breakpoints, the previous hit before
    the stop this continue makes is the stop it starts from, if that one
    was a hit (reverse-continue then needs no search)."""
    if S.busy or ck._Silence.depth:
        return  # the extension's own continue (a checkpoint, a re-execution)
    S.cont_fast = None
    if S.off or not S.history:
        return
    S.cont_fast = {"hist": len(S.history), "sig": _bp_signature(), "hits": _hit_counts()}


def _hit_counts():
    return {b.number: b.hit_count for b in gdb.breakpoints() or [] if b.is_valid() and
            b.number > 0}


def _fast_continue_target():
    F = S.cont_fast
    if not F or F["hist"] != len(S.history) - 1 or F["sig"] != _bp_signature():
        return None, None
    # one hit in all (the stop): `continue N` passes hits it ignores
    if sum(n - F["hits"].get(k, 0) for k, n in _hit_counts().items()) > 1:
        return None, None
    prev = S.history[-2]
    live = {b.number for b in gdb.breakpoints() or [] if b.is_valid() and b.enabled}
    hit = [n for n in prev.bps if n in live]
    return (prev, hit[0]) if hit else (None, None)


def _before_prompt():
    # interactive GDB runs `continue` & co. in the background: their
    # hookpost comes before the stop, the prompt after it
    if S.stop_seq != S.done_seq:
        after_user_command()


def after_user_command():
    """After a command that ran the program stopped (its hookpost in a
    script, the next prompt interactively): remember where the program
    stopped; take a checkpoint at the first stop and then now and then."""
    if S.busy or ck._Silence.depth:
        return  # the extension's own run/continue (a restart, a bisect probe)
    th = gdb.selected_thread()
    if th is not None and th.is_valid() and th.is_running():
        return  # not stopped yet: the prompt will come after the stop
    S.done_seq = S.stop_seq
    _disarm_fast()  # before a checkpoint: no breakpoint of ours in the program's code
    _arm_diverge()
    d, why = _replay_state()
    if d != S.diverged:
        S.diverged = d
        _msg("the program diverged from the recorded run (%s): from here it runs live, "
             "another execution than the one recorded" % why)
    try:
        if gdb.selected_inferior().pid and gdb.newest_frame().name() == "ckptmpi_replay_diverged":
            # stopped by the divergence: show where the program is
            ck.program_frame().select()
            gdb.execute("frame", to_string=False)
    except gdb.error:
        pass
    if S.off:
        return
    if S.cont_at is not None:
        S.run_time += time.time() - S.cont_at
        S.total_run += time.time() - S.cont_at
        S.cont_at = None
    inf = gdb.selected_inferior()
    if not inf.pid or not ck._link("upper_r_debug"):
        return
    th = gdb.selected_thread()
    if th is None or not th.is_valid():
        return
    S.stops += 1
    try:
        sel = gdb.selected_frame()
        # an MPI job's: job-wide generations (rank R asks, rank 0 cuts)
        if (not S.checkpoints or
                               S.run_time >= _param("ckptmpi-checkpoint-seconds", 1) or
                               S.stops >= _param("ckptmpi-checkpoint-stops", 50)):
            checkpoint_here("start" if not S.checkpoints else "auto")
        with _Busy():
            pos = Position(len(S.checkpoints) - 1, "stop")
            pos.bps = S.stop_bps
            S.history.append(pos)
        sel.select()
    except (ReverseError, gdb.error) as e:
        _msg("reverse execution is off for this run: %s" % e)
        S.off = True


def _param(name, default):
    try:
        return float(gdb.parameter(name))
    except (gdb.error, TypeError, ValueError):
        return default


def before_run():
    """run/start/kill: a new execution, a new session."""
    if S.busy:
        return
    S.reset()


class _Param(gdb.Parameter):
    def __init__(self, name, doc, default):
        self.set_doc = doc
        self.show_doc = doc
        super().__init__(name, gdb.COMMAND_RUNNING, gdb.PARAM_ZUINTEGER)
        self.value = default


def setup():
    _Param("ckptmpi-checkpoint-seconds",
           "Run time (s) after which ckptmpi debug takes a checkpoint for reverse execution.", 1)
    _Param("ckptmpi-checkpoint-stops",
           "Commands after which ckptmpi debug takes a checkpoint for reverse execution.", 50)
    cmds = [
        ("reverse-next", "Step backward one line in this frame (over calls): re-executed from "
         "a checkpoint.", _cmd_next, "rn"),
        ("reverse-step", "Step backward one line, into the last line of a function called on "
         "it: re-executed from a checkpoint.", _cmd_step, "rs"),
        ("reverse-finish", "Go back to the call of the current function.", _cmd_finish, None),
        ("reverse-continue", "Go back to the previous hit of a breakpoint or watchpoint.",
         _cmd_continue, "rc"),
        ("undo", "Go back to where the program was before the last command.", _cmd_undo, None),
        ("reverse-watch", "reverse-watch EXPR: go back to the last change of EXPR.", _cmd_watch,
         None),
        ("ckptmpi-checkpoint", "Take a checkpoint for reverse execution here.",
         _cmd_checkpoint, None),
    ]
    for name, doc, fn, alias in cmds:
        _make_command(name, doc, fn)
        if name.startswith("reverse-"):
            _make_command("ckptmpi-" + name, doc, fn)
        if alias:
            try:
                gdb.execute("alias -a %s = %s" % (alias, name), to_string=True)
            except gdb.error:
                pass
    _InfoReverse()
    gdb.events.cont.connect(_on_cont)
    gdb.events.stop.connect(_on_user_stop)
    gdb.events.before_prompt.connect(_before_prompt)
    # an inspected rank of an MPI job (ckptmpi.py) never runs on
    for c in ("next", "step"):
        gdb.execute("define hook-%s\npython refuse_if_inspecting()\n"
                    "python ckptmpi_reverse.before_step_command()\nend" % c, to_string=True)
    gdb.execute("define hook-continue\npython refuse_if_inspecting()\n"
                "python ckptmpi_reverse.before_continue()\nend", to_string=True)
    for c in ("stepi", "nexti", "finish", "until", "advance", "jump", "signal"):
        gdb.execute("define hook-%s\npython refuse_if_inspecting()\nend" % c, to_string=True)
    for c in ("next", "step", "stepi", "nexti", "continue", "finish", "until", "advance",
              "run", "start", "starti", "jump", "signal"):
        gdb.execute("define hookpost-%s\npython ckptmpi_reverse.after_user_command()\nend" % c,
                    to_string=True)


setup()
