# ckptmpi.py: GDB sees the program under ckptmpi, not the runtime.
#
# Loaded by `ckptmpi debug` and `ckptmpi bisect` into Debian's gdb (13,
# with Python). Under ckptmpi a program runs as the "upper half" of
# ckptmpi-runtime: the runtime maps a second copy of the system's dynamic
# loader, which loads the program and its libraries with an r_debug of its
# own that GDB does not know (GDB follows the runtime's). This file:
#
#  - finds the upper loader's r_debug through the runtime's link struct
#    (link_area.upper_r_debug, core/link.h) and loads symbols for every
#    object on its link map at its load address (add-symbol-file -o),
#    when the program starts and whenever the upper loader reports a
#    change (a breakpoint on its r_brk: dlopen, dlclose);
#  - disables the breakpoint locations that fall in the runtime (its own
#    `main`, the lower libc), names the runtime's threads
#    "ckptmpi-runtime" and hides the runtime's frames from backtraces of
#    the program's threads (a frame filter);
#  - `ckptmpi-restore PLAN`: starts a restart of a generation under GDB
#    and stops each restored thread on the program's own instruction (one
#    step past the runtime's rt_sigreturn), with the program's symbols;
#  - `ckptmpi-bisect PLAN`: the binary search of `ckptmpi bisect`.
#
# PLAN is a JSON file written by the ckptmpi tool (tools/debug.c). The
# restarted probes run in a scratch copy of the program's working
# directory (CKPTMPI_RESTORE_MAP), never on the job's own files.

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import gdb

WINDOW = (0x100000000000, 0x140000000000)  # core/lowmem.h: the lower window


def _msg(text):
    """To stderr, past GDB (whose output may be silenced meanwhile)."""
    gdb.flush()
    os.write(2, ("ckptmpi: %s\n" % text).encode())


# ------------------------------------------------------------------ ELF

def elf_symbol(path, name):
    """st_value of NAME in the .dynsym or .symtab of an ELF64 file, or 0."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return 0
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return 0
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = []
    for i in range(shnum):
        secs.append(struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize))
    want = name.encode()
    for s in secs:
        if s[1] not in (2, 11):  # SHT_SYMTAB, SHT_DYNSYM
            continue
        strtab = secs[s[6]]
        stroff = strtab[4]
        for k in range(s[5] // 24):
            st_name, _info, _other, _shndx, value, _size = struct.unpack_from(
                "<IBBHQQ", data, s[4] + k * 24)
            end = data.index(b"\0", stroff + st_name)
            if data[stroff + st_name:end] == want and value:
                return value
    return 0


# ------------------------------------------------------------------ inferior

def _inf():
    return gdb.selected_inferior()


def _u64(addr):
    return struct.unpack("<Q", bytes(_inf().read_memory(addr, 8)))[0]


def _cstr(addr, limit=4096):
    if not addr:
        return ""
    out = b""
    while len(out) < limit:
        # never past the page: the string may end at the top of a mapping
        # (the main program's name among argv, at the top of the stack)
        at = addr + len(out)
        chunk = bytes(_inf().read_memory(at, min(64, 4096 - (at & 4095))))
        z = chunk.find(b"\0")
        if z >= 0:
            return (out + chunk[:z]).decode(errors="replace")
        out += chunk
    return out.decode(errors="replace")


_link_sym = [None]


def _link_area():
    """The runtime's link_area (core/link.h). Looked up in the runtime's
    own symbols: an MPI program's shim (pmpi/shim_init.c) has a pointer
    of that name too, which a bare `link_area` may find once the
    program's symbols are loaded (a relaunch keeps them)."""
    sym = _link_sym[0]
    if sym is None or not sym.is_valid() or not sym.symtab.objfile.is_valid():
        sym = None
        exe = gdb.current_progspace().filename
        for o in gdb.objfiles():
            if exe and o.filename == exe:
                sym = o.lookup_static_symbol("link_area") or o.lookup_global_symbol("link_area")
                break
        _link_sym[0] = sym
    if sym is None:
        return gdb.parse_and_eval("link_area")
    return sym.value()


def _link(field):
    try:
        return int(_link_area()[field])
    except (gdb.error, RuntimeError):
        return 0


def _program_path():
    try:
        return gdb.parse_and_eval("upper.program").string()
    except gdb.error:
        return ""


_runtime_ranges = []


def _maps():
    pid = _inf().pid
    out = []
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                parts = line.split(None, 5)
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi, int(parts[2], 16), parts[5].strip() if len(parts) > 5 else ""))
    except OSError:
        pass
    return out


def _runtime_exe_ranges():
    global _runtime_ranges
    if not _runtime_ranges and _inf().pid:
        exe = os.path.realpath(gdb.current_progspace().filename or "")
        _runtime_ranges = [(lo, hi) for lo, hi, _o, p in _maps() if p == exe]
    return _runtime_ranges


def is_lower(pc):
    """Is this code or data address the runtime's (lower half)?"""
    if pc is None:
        return False
    if WINDOW[0] <= pc < WINDOW[1]:
        return True
    if gdb.solib_name(pc) is not None:  # the runtime's own libraries
        return True
    return any(lo <= pc < hi for lo, hi in _runtime_exe_ranges())


# ------------------------------------------------------------------ upper symbols

_loaded = {}          # (path, l_addr) -> True
_brk_bp = None        # breakpoint on the upper loader's r_brk
_keep_symbols = 0     # > 0: a restart of the reverse session's own checkpoint


class _Silence:
    """GDB's own reports (stops, frames, new threads) of what the extension
    does behind the user's back go nowhere."""

    depth = 0

    def __enter__(self):
        if _Silence.depth == 0:
            gdb.execute("set logging file /dev/null", to_string=True)
            gdb.execute("set logging redirect on", to_string=True)
            gdb.execute("set logging enabled on", to_string=True)
            gdb.execute("set suppress-cli-notifications on", to_string=True)
        _Silence.depth += 1
        return self

    def __exit__(self, *exc):
        _Silence.depth -= 1
        if _Silence.depth == 0:
            gdb.execute("set suppress-cli-notifications off", to_string=True)
            gdb.execute("set logging enabled off", to_string=True)
            gdb.execute("set logging redirect off", to_string=True)
        return False


def _quiet(cmd):
    confirm = gdb.parameter("confirm")
    gdb.execute("set confirm off", to_string=True)
    try:
        return gdb.execute(cmd, to_string=True)
    finally:
        if confirm:
            gdb.execute("set confirm on", to_string=True)


def load_upper_symbols(verbose=False):
    """Add the symbols of every object on the upper loader's link map."""
    rd = _link("upper_r_debug")
    if not rd:
        return 0
    try:
        lm = _u64(rd + 8)  # r_map
    except gdb.MemoryError:
        return 0
    program = _program_path()
    n = 0
    seen = 0
    while lm and seen < 4096:
        seen += 1
        l_addr = _u64(lm)
        name = _cstr(_u64(lm + 8))
        nxt = _u64(lm + 24)
        if not name:
            name = program
        if name and os.path.isfile(name):
            key = (os.path.realpath(name), l_addr)
            if key not in _loaded:
                try:
                    _quiet("add-symbol-file '%s' -o %#x" % (name, l_addr))
                    _loaded[key] = True
                    n += 1
                    if verbose:
                        _msg("symbols of %s at %#x" % (name, l_addr))
                except gdb.error as e:
                    _msg("cannot load symbols of %s: %s" % (name, e))
        lm = nxt
    return n


class _UpperLoaderBreakpoint(gdb.Breakpoint):
    """On the upper loader's r_brk: the link map changed."""

    def __init__(self, addr):
        super().__init__("*%#x" % addr, internal=True)
        self.silent = True

    def stop(self):
        rd = _link("upper_r_debug")
        try:
            state = struct.unpack("<i", bytes(_inf().read_memory(rd + 24, 4)))[0]
        except (gdb.MemoryError, gdb.error):
            return False
        if state == 0:  # RT_CONSISTENT
            load_upper_symbols()
        return False


def _arm_upper_loader():
    """Watch the upper loader's r_brk (after start or restore)."""
    global _brk_bp
    base = _link("upper_interp_base")
    rd = _link("upper_r_debug")
    if not base or not rd:
        return
    brk = 0
    try:
        brk = _u64(rd + 16)
    except gdb.MemoryError:
        pass
    if not brk:
        # not initialised yet (a fresh start): the loader's _dl_debug_state
        interp = ""
        for lo, _hi, off, path in _maps():
            if lo == base and off == 0:
                interp = path
        off = elf_symbol(interp, "_dl_debug_state") if interp else 0
        brk = base + off if off else 0
    if not brk:
        _msg("cannot find the program's dynamic loader: its libraries' symbols are not loaded")
        return
    if _brk_bp is not None and _brk_bp.is_valid():
        if _brk_bp.location == "*%#x" % brk:
            return
        _brk_bp.delete()
    _brk_bp = _UpperLoaderBreakpoint(brk)


class _UpperStartBreakpoint(gdb.Breakpoint):
    """control_upper_started(): the upper half is about to run (a fresh
    start: its loader is mapped; a restart: its memory is back)."""

    def __init__(self):
        super().__init__("control_upper_started", internal=True)
        self.silent = True

    def stop(self):
        global _runtime_ranges
        _runtime_ranges = []
        _arm_upper_loader()
        load_upper_symbols()
        th = gdb.selected_thread()
        prog = os.path.basename(_program_path())
        if th is not None and prog:
            th.name = prog  # the program's main thread from now on
        return stop_at_upper_start[0]


# ckptmpi_job.py stops there while it brings a relaunched rank to main
stop_at_upper_start = [False]


# ------------------------------------------------------------------ breakpoints

_filtering = False


def _filter_locations(bp):
    """A breakpoint the user set: its locations in the runtime are off.
    Before the program runs, only the runtime's symbols are known: every
    location then is the runtime's (the program's come with its symbols)."""
    global _filtering
    if _filtering or _keep_symbols or bp.number <= 0 or not hasattr(bp, "locations"):
        return
    _filtering = True
    try:
        running = bool(_inf().pid)
        off = 0
        for loc in bp.locations:
            if loc.enabled and (not running or (loc.address is not None and is_lower(loc.address))):
                loc.enabled = False
                off += 1
        if off and not running and off == len(bp.locations):
            _msg("breakpoint %d: that location is in ckptmpi's runtime, disabled; the "
                 "program's own are added when it starts" % bp.number)
    except gdb.error:
        pass
    finally:
        _filtering = False


# ------------------------------------------------------------------ threads and frames

RUNTIME_THREAD = "ckptmpi-runtime (lower half)"
_lower_lwps = set()


def _thread_is_lower(th):
    cur = gdb.selected_thread()
    try:
        th.switch()
        fs = int(gdb.parse_and_eval("$fs_base"))
    except gdb.error:
        return False
    finally:
        if cur is not None and cur.is_valid():
            cur.switch()
    return WINDOW[0] <= fs < WINDOW[1]


def mark_threads():
    """The runtime's threads (their thread pointer is in the lower window)
    are named so; the program's carry the program's name."""
    prog = os.path.basename(_program_path()) if _link("upper_r_debug") else ""
    for th in _inf().threads():
        if not th.is_valid():
            continue
        lwp = th.ptid[1]
        if lwp in _lower_lwps or _thread_is_lower(th):
            _lower_lwps.add(lwp)
            if th.name != RUNTIME_THREAD:
                th.name = RUNTIME_THREAD
        elif prog and th.name in (None, "", "ckptmpi-runtime"):
            th.name = prog


def _on_stop(event):
    if _inf().pid:
        try:
            mark_threads()
        except gdb.error:
            pass


def unload_upper_symbols():
    """The program is gone (exited, killed) or about to start again: its
    objects' symbols go, so that no breakpoint is inserted at their old
    addresses before the upper loader has mapped them again (the
    breakpoints become pending, as in plain GDB between runs). A restart
    of the reverse-execution session's own checkpoints keeps them: the
    objects come back at the same addresses, and reading symbols is most
    of what a restart under GDB costs (ckptmpi_reverse.py keeps every
    breakpoint of the program disabled until its memory is back)."""
    global _runtime_ranges, _brk_bp
    if _keep_symbols:
        _lower_lwps.clear()
        _runtime_ranges = []
        if _brk_bp is not None and _brk_bp.is_valid():
            _brk_bp.delete()
        _brk_bp = None
        # but the program's libc (quick to read again): GDB's thread_db
        # would look at it before its memory is back, fail, and not try
        # again (threads shown as bare LWPs, the program's exit misread)
        for key in [k for k in _loaded if re.search(r"/libc\.so", k[0])]:
            try:
                # only what add-symbol-file added goes: not the runtime's libc
                _quiet("remove-symbol-file '%s'" % key[0])
            except gdb.error:
                pass
            del _loaded[key]
        return
    for path, _addr in list(_loaded):
        try:
            _quiet("remove-symbol-file '%s'" % path)
        except gdb.error:
            pass
    _loaded.clear()
    _lower_lwps.clear()
    _runtime_ranges = []
    if _brk_bp is not None and _brk_bp.is_valid():
        _brk_bp.delete()
    _brk_bp = None


def _on_exit(event):
    unload_upper_symbols()


class HideRuntimeFrames:
    """Backtraces of the program's threads show the program's frames: the
    runtime's (its park handler at a checkpoint, its restorer) are left
    out. Threads of the runtime itself are shown whole."""

    def __init__(self):
        self.name = "ckptmpi-hide-runtime"
        self.priority = 100
        self.enabled = True
        gdb.current_progspace().frame_filters[self.name] = self

    def filter(self, frames):
        th = gdb.selected_thread()
        if th is None or th.ptid[1] in _lower_lwps:
            return frames
        frames = list(frames)
        kept = [f for f in frames if not is_lower(f.inferior_frame().pc())]
        return iter(kept if kept else frames)


def program_frame():
    """The first frame, from the innermost, that is the program's own code
    (its executable, not a library, not the runtime); else frame 0."""
    prog = os.path.realpath(_program_path())
    ranges = [(lo, hi) for lo, hi, _o, p in _maps() if p == prog]
    f = gdb.newest_frame()
    first = None
    while f is not None:
        pc = f.pc()
        if not is_lower(pc):
            if first is None:
                first = f
            if any(lo <= pc < hi for lo, hi in ranges):
                return f
        f = f.older()
    return first or gdb.newest_frame()


# ------------------------------------------------------------------ restore

def _sigreturn_address():
    """The rt_sigreturn in restorer_finish_thread (core/restorer.c)."""
    try:
        start = int(gdb.parse_and_eval("(long)&restorer_finish_thread"))
    except gdb.error:
        raise gdb.GdbError("restorer_finish_thread not found: the runtime's symbols are "
                           "needed (do not strip ckptmpi-runtime)")
    arch = gdb.selected_frame().architecture() if _inf().pid else None
    block = gdb.block_for_pc(start) if _inf().pid else None
    end = block.end if block is not None else start + 512
    insns = arch.disassemble(start, end - 1)
    prev = ""
    for i in insns:
        if i["asm"].startswith("syscall") and "$0xf," in prev:
            return i["addr"]
        prev = i["asm"]
    raise gdb.GdbError("rt_sigreturn not found in restorer_finish_thread")


def _pid_of_main():
    return _inf().pid


def _stopped_at(addr):
    try:
        return int(gdb.parse_and_eval("$pc")) == addr
    except gdb.error:
        return False


def is_job(plan):
    """A generation of several ranks or members (an MPI job, or a job
    started with --job-size), not of a single process."""
    return int(plan.get("nranks") or 1) > 1 or plan.get("flavour", "none") not in ("none", "")


def inspected_rank(plan):
    """The rank of an MPI job's generation the plan inspects (restored
    alone, without MPI: CKPTMPI_INSPECT_RANK), else None."""
    r = plan.get("rank")
    if r is None or not is_job(plan):
        return None
    return int(r)


def for_rank(plan, gen, rank):
    """plan and gen as seen by an inspection of rank: its working
    directory and its files (a sandbox is made of them)."""
    plan = dict(plan, rank=rank)
    ranks = gen.get("ranks")
    if ranks and rank < len(ranks):
        gen = dict(gen, cwd=ranks[rank].get("cwd", ""), files=ranks[rank].get("files", []))
    return plan, gen


def _env_for(plan, gen, sandbox):
    env = {
        "CKPTMPI_DIR": sandbox["ckdir"],
        "CKPTMPI_RESTART": str(gen["generation"]),
        "CKPTMPI_INTERVAL": "0",
    }
    rank = inspected_rank(plan)
    if rank is not None:
        env["CKPTMPI_INSPECT_RANK"] = str(rank)
        # what the MPI runtime sets before it re-executes itself
        # (pmpi/lower_mpi.c): set here, it does not re-execute under GDB
        for k, v in (("UCX_MEM_MALLOC_HOOKS", "no"), ("UCX_MEM_MMAP_HOOK_MODE", "none"),
                     ("UCX_MEM_EVENTS", "no")):
            if k not in os.environ:
                env[k] = v
    if sandbox.get("map"):
        env["CKPTMPI_RESTORE_MAP"] = sandbox["map"]
    env["CKPTMPI_FILE_ROLLBACK"] = "0" if sandbox.get("no_rollback") else "1"
    return env


def make_sandbox(plan, gen, root, copy_files=True):
    """A scratch directory for one restart of generation gen: its own
    checkpoint directory holding (a link to) the generation file, and a
    copy of the program's working directory at the checkpoint, which the
    restart uses instead of the real one (CKPTMPI_RESTORE_MAP)."""
    d = tempfile.mkdtemp(prefix="g%d-" % gen["generation"], dir=root)
    ck = os.path.join(d, "ck")
    os.mkdir(ck, 0o700)
    # the generation, and the ones an incremental generation's pages come
    # from (storage/image_chain.h)
    for path in [gen["path"]] + list(gen.get("parents") or []):
        dst = os.path.join(ck, os.path.basename(path))
        try:
            os.link(path, dst)
        except OSError:
            shutil.copy2(path, dst)
    sb = {"root": d, "ckdir": ck, "map": ""}
    cwd = gen.get("cwd") or ""
    if plan.get("in_place") or not cwd or cwd == "/":
        return sb
    files = os.path.join(d, "cwd")
    skip = os.path.realpath(plan["dir"])
    copied = False
    if copy_files and os.path.isdir(cwd):
        def ignore(src, names):
            return [n for n in names if os.path.realpath(os.path.join(src, n)) == skip]
        try:
            shutil.copytree(cwd, files, symlinks=True, ignore=ignore)
            copied = True
        except shutil.Error:
            copied = True  # unreadable entries: left out
        except OSError as e:
            _msg("cannot copy %s: %s: only the files the program has open are copied"
                 % (cwd, e))
    if not copied:
        # the files it has open under its working directory (a probe that
        # does not run on needs no more)
        os.makedirs(files, exist_ok=True)
        for fd in gen.get("files") or []:
            p = fd["path"]
            if p.startswith(cwd.rstrip("/") + "/") and os.path.isfile(p):
                dst = os.path.join(files, os.path.relpath(p, cwd))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(p, dst)
    sb["map"] = "%s=%s" % (cwd, files)
    # files written outside the working directory are the job's own: the
    # restart must not roll them back (truncate) in place
    outside = [fd["path"] for fd in gen.get("files") or []
               if fd.get("write") and not fd["path"].startswith(cwd.rstrip("/") + "/")]
    if outside:
        sb["no_rollback"] = True
        sb["outside"] = outside
    sb["files"] = files
    return sb


def restore_stop(plan, gen, sandbox, quiet=False, redirect=False):
    """Run a restart of generation gen under GDB and stop every restored
    thread on the program's own instruction. Returns True on success.
    redirect: the program's output goes to files in the sandbox."""
    with _Silence():
        ok = _restore_stop(plan, gen, sandbox, redirect)
    if not ok:
        err = os.path.join(sandbox["root"], "stderr")
        if redirect and os.path.exists(err):
            with open(err, errors="replace") as f:
                tail = f.read()[-600:].strip()
            if tail:
                _msg("the restart of generation %d said: %s" % (gen["generation"], tail))
        _msg("the restart of generation %d ended before the program ran" % gen["generation"])
        return False
    main = gdb.selected_thread()
    rank = inspected_rank(plan)
    if not quiet and rank is not None:
        _msg("generation %d (%s, %s), rank %d of the %d-rank %s job: its image restored alone, "
             "without MPI, for inspection; it cannot run on (without --inspect the whole job "
             "is restarted from the generation, rank %d under GDB)"
             % (gen["generation"], gen.get("reason", "?"), gen.get("created", "?"), rank,
                int(plan.get("nranks") or 0), plan.get("flavour", "?"), rank))
    elif not quiet:
        _msg("generation %d (%s, %s) restored: the program stopped before running on"
             % (gen["generation"], gen.get("reason", "?"), gen.get("created", "?")))
        if sandbox.get("files"):
            _msg("the program's files are a copy in %s (its working directory %s is not touched)"
                 % (sandbox["files"], gen.get("cwd")))
        for p in sandbox.get("outside") or []:
            _msg("warning: %s is open for writing outside the working directory: it is the "
                 "job's own file (not rolled back; the program writes it if it runs on)" % p)
        gdb.execute("frame", to_string=False)
    return main is not None


def _restore_stop(plan, gen, sandbox, redirect):
    env = _env_for(plan, gen, sandbox)
    for k, v in env.items():
        gdb.execute("set environment %s %s" % (k, v), to_string=True)
    if not sandbox.get("map"):
        gdb.execute("unset environment CKPTMPI_RESTORE_MAP", to_string=True)
    if "CKPTMPI_INSPECT_RANK" not in env:
        gdb.execute("unset environment CKPTMPI_INSPECT_RANK", to_string=True)
    bp = gdb.Breakpoint("restorer_finish_thread", internal=True)
    bp.silent = True
    bp.enabled = True
    if redirect:
        gdb.execute("run > '%s' 2> '%s'" % (os.path.join(sandbox["root"], "stdout"),
                                            os.path.join(sandbox["root"], "stderr")),
                    to_string=True)
    else:
        gdb.execute("run", to_string=True)
    if not _inf().pid:
        bp.delete()
        return False
    bp.delete()
    return hold_restored_threads()


class Alone:
    """scheduler-locking on: a step or continue moves the selected thread
    only. A stepi with it off resumes every thread for the step: they run
    on from states the caller has just read, and GDB discards events they
    report meanwhile (seen: a thread left on the program's code with its
    park signal dropped, and the whole program running free). The user's
    mode comes back on leaving, also when the program ended inside."""

    def __enter__(self):
        self.saved = gdb.parameter("scheduler-locking") or "replay"
        gdb.execute("set scheduler-locking on", to_string=True)
        return self

    def __exit__(self, *exc):
        try:
            gdb.execute("set scheduler-locking %s" % self.saved, to_string=True)
        except gdb.error:
            pass
        return False


def _leave_handler(limit=20000):
    """The selected thread has just stepped through its rt_sigreturn into
    the program. A signal pending for it at the cut (the runtime's park
    signal, sent again to a thread slow to park, stays queued while the
    handler blocks it) is delivered on that step, and GDB stops it on the
    handler's first instruction: step it (alone: scheduler-locking is on)
    through the handler and back, so that it too stands on the program's
    own instruction."""
    for _i in range(limit):
        if not _inf().pid or not is_lower(int(gdb.parse_and_eval("$pc"))):
            return
        gdb.execute("stepi", to_string=True)


def hold_restored_threads():
    """The restart stands at restorer_finish_thread (its first thread):
    bring every restored thread to the program's own instruction, one at
    a time, none running a single instruction of the program. True
    there, the main thread selected in its program frame."""
    addr = _sigreturn_address()
    sig = gdb.Breakpoint("*%#x" % addr, internal=True)
    sig.silent = True
    done = set()
    main_pid = _pid_of_main()
    with Alone():
        try:
            for _round in range(10000):
                th = gdb.selected_thread()
                if th is None or not _inf().pid:
                    return False
                if _stopped_at(addr):
                    gdb.execute("stepi", to_string=True)
                    _leave_handler()
                    done.add(th.ptid[1])
                # the main thread restores last: run it (alone) to its rt_sigreturn
                if main_pid not in done:
                    main = [t for t in _inf().threads() if t.ptid[1] == main_pid][0]
                    main.switch()
                    gdb.execute("continue", to_string=True)
                    continue
                # the other restored threads: each alone to its rt_sigreturn
                pending = []
                for t in _inf().threads():
                    if t.ptid[1] in done or not t.is_valid():
                        continue
                    t.switch()
                    pc = int(gdb.parse_and_eval("$pc"))
                    fs = int(gdb.parse_and_eval("$fs_base"))
                    if WINDOW[0] <= fs < WINDOW[1]:
                        continue  # the runtime's own
                    if any(lo <= pc < hi for lo, hi in _runtime_exe_ranges()):
                        pending.append(t)
                if not pending:
                    break
                pending[0].switch()
                gdb.execute("continue", to_string=True)
        finally:
            if sig.is_valid():
                sig.delete()
    main = [t for t in _inf().threads() if t.ptid[1] == main_pid][0]
    main.switch()
    global _runtime_ranges
    _runtime_ranges = []
    _arm_upper_loader()
    load_upper_symbols()
    mark_threads()
    main.switch()
    program_frame().select()
    return True


def _load_plan(arg):
    with open(arg.strip()) as f:
        return json.load(f)


_inspecting = None    # (rank, generation): a rank of an MPI job, inspected only


def refuse_if_inspecting():
    """hook- of every command that runs the program: an inspected rank has
    no MPI under it, so running it on would call into an MPI never
    initialised."""
    if _inspecting is not None and _Silence.depth == 0:
        raise gdb.GdbError("rank %d of generation %d is inspected only (restored without MPI "
                           "and the other ranks): it cannot run on" % _inspecting)


class RestoreCommand(gdb.Command):
    """ckptmpi-restore PLAN: restart the generation of PLAN, stopped before
    the program runs on."""

    def __init__(self):
        super().__init__("ckptmpi-restore", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        global _inspecting
        plan = _load_plan(arg)
        gen = plan["generations"][0]
        rank = inspected_rank(plan)
        if rank is not None:
            plan, gen = for_rank(plan, gen, rank)
        root = plan.get("scratch") or tempfile.mkdtemp(prefix="ckptmpi-debug-")
        if not plan.get("keep_scratch"):
            def cleanup(event=None):
                try:
                    if _inf().pid:
                        gdb.execute("kill", to_string=True)
                except gdb.error:
                    pass
                shutil.rmtree(root, ignore_errors=True)
            gdb.events.gdb_exiting.connect(cleanup)
        if rank is not None and not plan.get("inspect"):
            return self.whole_job(plan, root, rank)
        # an inspected rank never runs on: only the files it has open
        sb = make_sandbox(plan, gen, root, copy_files=rank is None)
        if not restore_stop(plan, gen, sb):
            raise gdb.GdbError("restart failed")
        if rank is not None:
            _inspecting = (rank, gen["generation"])
            return
        # reverse execution from here: its first checkpoint is this stop
        ckptmpi_reverse.after_user_command()

    def whole_job(self, plan, root, rank):
        """debug --restart DIR --rank R: the whole job restarted from the
        generation, rank R under GDB at its cut; reverse commands restart
        it from there again, replaying what MPI decided the first time."""
        import ckptmpi_job as cj
        gen = plan["generations"][0]
        t0 = time.time()
        with ckptmpi_reverse._Busy():
            job, _sb = job_from_generation(plan, gen, root, rank, record=True,
                                           output=plan.get("job_output") or "")
        if job is None:
            raise gdb.GdbError("the job was not restarted")
        cj.JOB[0] = job

        def at_exit(event=None):
            try:
                if _inf().pid:
                    job.kill_launcher()
                    gdb.execute("kill", to_string=True)
            except gdb.error:
                pass
            job.wait_end(30 if not _inf().pid else 0)
        gdb.events.gdb_exiting.connect(at_exit)
        _msg("generation %d (%s, %s): the whole %d-rank %s job restarted from it (mpirun, pid "
             "%d) in %.2f s, rank %d stopped at its cut; the other ranks run under ckptmpi; "
             "MPI outcomes recorded in %s%s"
             % (gen["generation"], gen.get("reason", "?"), gen.get("created", "?"),
                int(plan["nranks"]), plan.get("flavour", "?"), job.proc.pid, time.time() - t0,
                rank, job.replay_dir(),
                "; the program's files are a copy in %s" % _sb["files"] if _sb.get("files")
                else ""))
        ckptmpi_reverse.job_started()
        gdb.execute("frame", to_string=False)


# ------------------------------------------------------------------ bisect

# C's classification macros, which GDB cannot call (libm's functions have
# no declared type there): written with comparisons GDB evaluates itself
_CLASSIFY = {
    "isnan": "((%s) != (%s))",
    "isinf": "((%s) == (%s) && (%s) - (%s) != 0)",
    "isfinite": "((%s) - (%s) == 0)",
}


def c_expression(expr):
    """EXPR with isnan(E), isinf(E), isfinite(E) spelled for GDB."""
    out, i = [], 0
    pat = re.compile(r"\b(%s)\s*\(" % "|".join(_CLASSIFY))
    while True:
        m = pat.search(expr, i)
        if not m:
            out.append(expr[i:])
            return "".join(out)
        depth, j = 1, m.end()
        while j < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[j], 0)
            j += 1
        if depth:
            raise gdb.GdbError("unbalanced parentheses in %s" % expr)
        inner = c_expression(expr[m.end():j - 1])
        form = _CLASSIFY[m.group(1)]
        out.append(expr[i:m.start()])
        out.append(form % ((inner,) * form.count("%s")))
        i = j


def _truth(expr):
    """(true?, printed value) of EXPR in the selected frame."""
    e = c_expression(expr)
    v = gdb.parse_and_eval(e)
    t = int(gdb.parse_and_eval("!!(%s)" % e))
    return t != 0, str(v)


def _kill():
    if _inf().pid:
        with _Silence():
            gdb.execute("kill", to_string=True)


def _probe_expr(plan, gen, root, expr, cut=None):
    """(true?, value) of expr in generation gen, restored and stopped; for
    an inspected rank, the line and backtrace at the cut go into cut."""
    rank = inspected_rank(plan)
    if rank is not None:
        plan, gen = for_rank(plan, gen, rank)
    sb = make_sandbox(plan, gen, root, copy_files=False)
    try:
        if not restore_stop(plan, gen, sb, quiet=True, redirect=True):
            return None
        f = program_frame()
        f.select()
        try:
            t, v = _truth(expr)
        except gdb.error as e:
            _msg("generation %d: cannot evaluate %s in %s: %s"
                 % (gen["generation"], expr, f.name() or "?", e))
            return None
        fn = f.name() or "??"
        sal = f.find_sal()
        where = "%s (%s:%d)" % (fn, os.path.basename(sal.symtab.filename), sal.line) \
            if sal.symtab else fn
        gdb.write("probe generation %d: %s = %s (%s)%s in main thread, frame %s\n"
                  % (gen["generation"], expr, v, "true" if t else "false",
                     "" if rank is None else " on rank %d" % rank, where))
        if cut is not None:
            cut["where"] = where
            cut["line"] = ""
            if sal.symtab:
                cut["line"] = "  %d\t%s" % (sal.line, _source_line(sal.symtab.fullname(),
                                                                    sal.line))
            gdb.newest_frame().select()
            cut["bt"] = gdb.execute("bt", to_string=True)
            f.select()
            try:
                cut["locals"] = gdb.execute("info locals", to_string=True)
            except gdb.error as e:
                cut["locals"] = "%s\n" % e
        return t, v
    finally:
        _kill()
        shutil.rmtree(sb["root"], ignore_errors=True)




def _probe_run(plan, gen, root, command):
    """--run: restart gen in a sandbox, let it run for plan['for'] seconds
    (0: not at all), stop it, then run COMMAND; exit 0 = good (false).
    An MPI job: the whole job restarted (rank 0 under GDB), killed after."""
    secs = float(plan.get("for_seconds") or 0)
    job = None
    output = ""
    if is_job(plan) and secs > 0:
        job, sb = job_from_generation(plan, gen, root, 0)
        if job is None:
            if sb is not None:
                shutil.rmtree(sb["root"], ignore_errors=True)
            return None
        output = job.plan["output"]
    elif is_job(plan):
        sb = make_sandbox(*for_rank(plan, gen, 0), root, copy_files=True)
    else:
        sb = make_sandbox(plan, gen, root, copy_files=True)
        output = os.path.join(sb["root"], "stdout")
    try:
        if job is None and secs > 0 and sb.get("outside"):
            _msg("generation %d: running on would write %s, outside the working directory "
                 "(the job's own file): not done" % (gen["generation"], sb["outside"][0]))
            return None
        if job is None and not is_job(plan) and \
                not restore_stop(plan, gen, sb, quiet=True, redirect=True):
            return None
        if secs > 0:
            _run_for(secs)
        _end(job)
        env = dict(os.environ)
        env.update({
            "CKPTMPI_BISECT_GENERATION": str(gen["generation"]),
            "CKPTMPI_BISECT_FILE": gen["path"],
            "CKPTMPI_BISECT_DIR": plan["dir"],
            "CKPTMPI_BISECT_FILES": sb.get("files", ""),
            "CKPTMPI_BISECT_CWD": gen.get("cwd", ""),
            # what the program (every rank of a job) printed meanwhile
            "CKPTMPI_BISECT_OUTPUT": output if secs > 0 else "",
        })
        rc = subprocess.call(["/bin/sh", "-c", command], env=env,
                             cwd=sb.get("files") or None)
        if rc == 125:
            gdb.write("probe generation %d: command exited 125: skipped\n" % gen["generation"])
            return "skip"
        gdb.write("probe generation %d: command exited %d (%s)\n"
                  % (gen["generation"], rc, "good" if rc == 0 else "bad"))
        return rc != 0, str(rc)
    finally:
        _end(job)
        shutil.rmtree(sb["root"], ignore_errors=True)


def interrupt_after(secs):
    """A started timer that stops the program under GDB after secs
    seconds (SIGINT: GDB stops, does not pass it on; a restored job's
    session leaves SIGSTOP unreported). Returns (timer, expired): expired
    is a list that gets an element when it fired."""
    import threading
    pid = _inf().pid
    expired = []

    def stop_it():
        expired.append(True)
        try:
            os.kill(pid, 2)
        except OSError:
            pass
    timer = threading.Timer(max(0.0, secs), stop_it)
    timer.start()
    return timer, expired


def _end(job):
    """Kill the program under GDB and, for an MPI job, every other rank
    (mpirun first: it would report rank R's death)."""
    with _Silence():
        if job is not None:
            job.kill_launcher()
        _kill()
        if job is not None:
            job.kill()


def _run_for(secs):
    """Let the restored program run for secs seconds, then stop it."""
    t, _expired = interrupt_after(secs)
    # the timer's SIGINT and the program's end are not the user's business:
    # GDB reports a signal stop of an attached process on its standard
    # output past the logging redirect, so that goes to /dev/null meanwhile
    events = gdb.parameter("print inferior-events")
    gdb.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    try:
        with _Silence():
            gdb.execute("set print inferior-events off", to_string=True)
            try:
                gdb.execute("continue", to_string=True)
            except gdb.error:
                pass
            finally:
                t.cancel()
                gdb.execute("set print inferior-events %s" % ("on" if events else "off"),
                            to_string=True)
    finally:
        gdb.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _bisect(gens, probe):
    """The first generation where probe is true, assuming false...true.
    Returns (first_true_index or None, last_false_index or None, results)."""
    results = {}

    def at(i):
        if i not in results:
            results[i] = probe(gens[i])
        return results[i]
    lo, hi = 0, len(gens) - 1
    # hi must be true, or nothing is
    r = at(hi)
    while r == "skip" and hi > 0:
        hi -= 1
        r = at(hi)
    if r is None:
        return None, None, results, "error"
    if r == "skip" or not r[0]:
        return None, hi, results, "never"
    r = at(lo)
    if r is None:
        return None, None, results, "error"
    if r != "skip" and r[0]:
        return lo, None, results, "first"
    # invariant: gens[lo] false (or skipped), gens[hi] true
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = at(mid)
        if r is None:
            return None, None, results, "error"
        if r == "skip":
            # look for a decidable neighbour
            found = False
            for m in list(range(mid + 1, hi)) + list(range(mid - 1, lo, -1)):
                r = at(m)
                if r != "skip" and r is not None:
                    mid, found = m, True
                    break
            if not found:
                return hi, lo, results, "skipped"
        if r[0]:
            hi = mid
        else:
            lo = mid
    return hi, lo, results, "found"


def _source_line(path, line):
    try:
        with open(path) as f:
            for i, text in enumerate(f, 1):
                if i == line:
                    return text.rstrip("\n")
    except OSError:
        pass
    return ""


def _reexecute(plan, gen, root, expr):
    """From generation gen (where expr is false), run on under a watchpoint
    on expr until it becomes true; report the statement that made it so."""
    if not _can_watch(expr):
        return False
    sb = make_sandbox(plan, gen, root, copy_files=True)
    try:
        if sb.get("outside"):
            _msg("re-executing from generation %d would write %s, outside the working "
                 "directory (the job's own file): not done" % (gen["generation"],
                                                               sb["outside"][0]))
            return False
        if not restore_stop(plan, gen, sb, quiet=True, redirect=True):
            return False
        return _watch_until_true(plan, gen, expr, "")
    finally:
        _delete_watchpoints()
        _kill()
        shutil.rmtree(sb["root"], ignore_errors=True)


def job_from_generation(plan, gen, root, rank, record=False, output=None):
    """The whole MPI job of generation gen restarted in a sandbox (its own
    checkpoint directory, a copy of the working directory), every rank
    under mpirun, rank `rank` under GDB held at its cut. record: MPI
    outcomes recorded from the cut by the first launch, replayed by every
    relaunch. Returns (job, sandbox), or (None, sandbox) with a message."""
    import ckptmpi_job as cj
    ranks = gen.get("ranks") or []
    cwds = set(r.get("cwd", "") for r in ranks) or {gen.get("cwd", "")}
    rplan, rgen = for_rank(plan, gen, rank)
    if len(cwds) > 1:
        _msg("generation %d: the ranks have different working directories (%s): one copy "
             "for all cannot stand in for them: the job is not restarted"
             % (gen["generation"], ", ".join(sorted(cwds))))
        return None, None
    cwd = cwds.pop().rstrip("/") + "/"
    sb = make_sandbox(rplan, rgen, root, copy_files=True)
    outside = [fd["path"] for r in ranks for fd in r.get("files") or []
               if fd.get("write") and not fd["path"].startswith(cwd)]
    if outside or sb.get("outside"):
        _msg("running the job on from generation %d would write %s, outside the working "
             "directory (the job's own file): not done"
             % (gen["generation"], (outside or sb["outside"])[0]))
        return None, sb
    if not plan.get("holder"):
        _msg("ckptmpi-debug-hold is missing: the job is not restarted")
        return None, sb
    env = {"CKPTMPI_RESTART": str(gen["generation"]), "CKPTMPI_FILE_ROLLBACK": "1"}
    if sb.get("map"):
        env["CKPTMPI_RESTORE_MAP"] = sb["map"]
    job = cj.Job({"rank": rank, "np": int(plan["nranks"]), "flavour": plan["flavour"],
                  "mpirun": plan["mpirun"], "runtime": plan["runtime"],
                  "holder": plan["holder"], "dir": sb["ckdir"], "replay": "",
                  "output": os.path.join(sb["root"], "stdout") if output is None else output,
                  "cwd": sb.get("files") or plan.get("cwd") or "/", "argv": [],
                  "restart": {"generation": gen["generation"], "env": env,
                              "record": record}})
    try:
        pid = job.launch()
        with _Silence():
            ok = cj.attach_to_cut(pid)
    except gdb.GdbError as e:
        _msg("restarting the job from generation %d: %s" % (gen["generation"], e))
        job.kill()
        return None, sb
    if not ok:
        _msg("the restart of generation %d under GDB did not reach rank %d's cut%s"
             % (gen["generation"], rank, ": " + job.error_tail() if job.error_tail() else ""))
        _end(job)
        return None, sb
    return job, sb


def _reexecute_job(plan, gen, root, expr, rank):
    """The same for rank `rank` of an MPI job: the whole job is restarted
    from generation gen, rank R under GDB, held at its cut, then run on
    under the watchpoint."""
    if not _can_watch(expr):
        return False
    job, sb = job_from_generation(plan, gen, root, rank)
    try:
        if job is None:
            return False
        return _watch_until_true(plan, gen, expr, " on rank %d (the whole %d-rank job restarted)"
                                 % (rank, int(plan["nranks"])))
    finally:
        _delete_watchpoints()
        if job is not None:
            _end(job)
        if sb is not None:
            shutil.rmtree(sb["root"], ignore_errors=True)


_hw_watch_broken = False   # setup(): this machine's hardware watchpoints never fire


def _can_watch(expr):
    """A re-execution under a watchpoint needs hardware watchpoints: a
    software one single-steps every thread of the program from the
    generation on, minutes for what the hardware does at once."""
    if _hw_watch_broken:
        _msg("the moment %s became true is not searched: that needs hardware watchpoints, "
             "and this machine's do not fire (its virtual CPU ignores the debug registers); "
             "the generations above bound it" % expr)
    return not _hw_watch_broken


def _delete_watchpoints():
    for b in gdb.breakpoints() or []:
        if b.type == gdb.BP_WATCHPOINT or b.type == gdb.BP_HARDWARE_WATCHPOINT:
            b.delete()


def _watch_until_true(plan, gen, expr, where):
    """The program stands restored at generation gen's cut: run it on
    under a watchpoint on expr until expr is true there; report the
    statement that made it so. where: said after the generation."""
    program_frame().select()
    try:
        with _Silence():
            wp = gdb.Breakpoint(c_expression(expr), gdb.BP_WATCHPOINT, gdb.WP_WRITE,
                                internal=False)
    except gdb.error as e:
        _msg("cannot watch %s: %s" % (expr, e))
        return False
    wp.silent = True
    deadline = time.time() + float(plan.get("timeout") or 600)
    timer, expired = interrupt_after(deadline - time.time())
    try:
        while time.time() < deadline and not expired:
            try:
                with _Silence():
                    gdb.execute("continue", to_string=True)
            except gdb.error as e:
                _msg("re-execution stopped: %s" % e)
                return False
            if expired:
                break
            if not _inf().pid:
                _msg("the program ended before %s became true" % expr)
                return False
            if not wp.is_valid():
                _msg("the watchpoint on %s went out of scope before it became true" % expr)
                return False
            gdb.selected_thread()
            f = program_frame()
            try:
                f.select()
                t, v = _truth(expr)
            except gdb.error:
                continue
            if not t:
                continue
            pc = f.pc()
            sal = gdb.find_pc_line(pc - 1)
            fname = sal.symtab.fullname() if sal.symtab else "??"
            gdb.write("became true at: %s:%d in %s (thread %d, re-executing from generation %d%s)\n"
                      % (fname, sal.line, f.name() or "??", gdb.selected_thread().num,
                         gen["generation"], where))
            gdb.write("  %d\t%s\n" % (sal.line, _source_line(fname, sal.line)))
            gdb.write("value: %s = %s\n" % (expr, v))
            gdb.write("backtrace:\n")
            gdb.newest_frame().select()
            gdb.write(gdb.execute("bt", to_string=True))
            f = program_frame()
            f.select()
            gdb.write("locals of %s:\n" % (f.name() or "??"))
            try:
                loc = gdb.execute("info locals", to_string=True)
            except gdb.error as e:
                loc = "%s\n" % e
            gdb.write("".join("  " + l + "\n" for l in loc.splitlines()))
            return True
        _msg("%s did not become true within %s s of re-execution (--timeout)"
             % (expr, plan.get("timeout")))
        return False
    finally:
        timer.cancel()


def _gen_line(g):
    return "generation %d (%s, created %s)" % (g["generation"], g.get("reason", "?"),
                                               g.get("created", "?"))


def _bisect_job(plan, gens, root, expr):
    """bisect --expr over the generations of an MPI job, --rank R or
    --any-rank: each probe restores one rank's image alone (no MPI) and
    evaluates expr there. Reports the first generation where expr is true
    for the rank (or which ranks), with the line, backtrace and locals at
    that generation's cut. No re-execution: running an MPI job on from a
    generation needs the whole job. Returns the exit status."""
    nranks = int(plan.get("nranks") or 1)
    ranks = list(range(nranks)) if plan.get("any_rank") else [int(plan["rank"])]
    gdb.write("bisect over %d generation(s) of a %d-rank %s job, %s: %s\n"
              % (len(gens), nranks, plan.get("flavour", "?"),
                 "every rank" if plan.get("any_rank") else "rank %d" % ranks[0],
                 " ".join(str(g["generation"]) for g in gens)))
    found = {}   # rank: (first index, last false index, how, value, cut)
    nprobes = 0
    for r in ranks:
        cuts = {}
        rplan = dict(plan, rank=r)

        def probe(g, r=r, rplan=rplan, cuts=cuts):
            cut = {}
            res = _probe_expr(rplan, g, root, expr, cut)
            cuts[g["generation"]] = cut
            return res
        first, last_false, results, how = _bisect(gens, probe)
        nprobes += len(results)
        if how == "error":
            gdb.write("bisect: a probe of rank %d failed\n" % r)
            return 2
        if how == "never":
            gdb.write("rank %d: never true: %s is false in every generation kept (last: %d)\n"
                      % (r, expr, gens[-1]["generation"]))
            continue
        value = results[first][1] if isinstance(results.get(first), tuple) else "?"
        found[r] = (first, last_false, how, value, cuts.get(gens[first]["generation"], {}))
        gdb.write("rank %d: first true in generation %d\n" % (r, gens[first]["generation"]))
    gdb.write("probes: %d\n" % nprobes)
    if not found:
        gdb.write("never true: %s is false in every generation kept (last: %d) on %s\n"
                  % (expr, gens[-1]["generation"],
                     "every rank" if plan.get("any_rank") else "rank %d" % ranks[0]))
        return 1
    first = min(v[0] for v in found.values())
    at = sorted(r for r, v in found.items() if v[0] == first)
    g = gens[first]
    gdb.write("first true: %s: %s on rank%s %s\n"
              % (_gen_line(g), expr, "s" if len(at) > 1 else "", " ".join(str(r) for r in at)))
    later = sorted(r for r in found if r not in at)
    if later:
        gdb.write("true later on rank%s %s (%s)\n"
                  % ("s" if len(later) > 1 else "", " ".join(str(r) for r in later),
                     ", ".join("rank %d from generation %d" % (r, gens[found[r][0]]["generation"])
                               for r in later)))
    for r in at:
        _f, last_false, how, value, cut = found[r]
        if how == "first":
            gdb.write("rank %d: already true in the oldest generation kept (%d)\n"
                      % (r, g["generation"]))
        else:
            gdb.write("rank %d: last false: %s\n" % (r, _gen_line(gens[last_false])))
        gdb.write("rank %d at the cut of generation %d: %s = %s, in %s\n"
                  % (r, g["generation"], expr, value, cut.get("where", "?")))
        if cut.get("line"):
            gdb.write("%s\n" % cut["line"])
        gdb.write("backtrace:\n%s" % cut.get("bt", ""))
        gdb.write("locals:\n%s" % "".join("  " + l + "\n"
                                            for l in cut.get("locals", "").splitlines()))
    status = 0
    for r in at:
        _f, last_false, how, _value, _cut = found[r]
        if how == "first":
            continue
        if plan.get("no_reexecute"):
            continue
        if not plan.get("holder"):
            gdb.write("not re-executed: ckptmpi-debug-hold is missing\n")
            return 3
        if not _reexecute_job(plan, gens[last_false], root, expr, r):
            status = 3
    return status


class BisectCommand(gdb.Command):
    """ckptmpi-bisect PLAN: the search of `ckptmpi bisect`."""

    def __init__(self):
        super().__init__("ckptmpi-bisect", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        plan = _load_plan(arg)
        gens = plan["generations"]
        root = plan.get("scratch") or tempfile.mkdtemp(prefix="ckptmpi-bisect-")
        expr = plan.get("expr")
        if expr and is_job(plan):
            status = _bisect_job(plan, gens, root, expr)
            if not plan.get("keep_scratch"):
                shutil.rmtree(root, ignore_errors=True)
            gdb.write("bisect status: %d\n" % status)
            gdb.flush()
            gdb.execute("set confirm off", to_string=True)
            os._exit(status) if plan.get("exit") else None
            return
        if expr:
            probe = lambda g: _probe_expr(plan, g, root, expr)  # noqa: E731
            what = expr
        else:
            probe = lambda g: _probe_run(plan, g, root, plan["run"])  # noqa: E731
            what = "command fails"
        gdb.write("bisect over %d generation(s): %s\n"
                  % (len(gens), " ".join(str(g["generation"]) for g in gens)))
        first, last_false, results, how = _bisect(gens, probe)
        gdb.write("probes: %d\n" % len(results))
        status = 0
        if how == "error":
            gdb.write("bisect: a probe failed\n")
            status = 2
        elif how == "never":
            gdb.write("never true: %s is false in every generation kept (last: %d)\n"
                      % (what, gens[-1]["generation"]))
            status = 1
        else:
            g = gens[first]
            value = results[first][1] if isinstance(results.get(first), tuple) else "?"
            gdb.write("first true: generation %d (%s, created %s): %s = %s\n"
                      % (g["generation"], g.get("reason", "?"), g.get("created", "?"), what
                         if expr else "exit status", value))
            if how == "first":
                gdb.write("already true in the oldest generation kept (%d): nothing to "
                          "re-execute from\n" % g["generation"])
            else:
                lf = gens[last_false]
                gdb.write("last false: generation %d (%s, created %s)\n"
                          % (lf["generation"], lf.get("reason", "?"), lf.get("created", "?")))
                if how == "skipped":
                    gdb.write("(generations between were skipped by the command)\n")
                if expr and not plan.get("no_reexecute"):
                    if not _reexecute(plan, lf, root, expr):
                        status = 3
        if not plan.get("keep_scratch"):
            shutil.rmtree(root, ignore_errors=True)
        gdb.write("bisect status: %d\n" % status)
        gdb.flush()
        gdb.execute("set confirm off", to_string=True)
        os._exit(status) if plan.get("exit") else None


class InfoCommand(gdb.Command):
    """info ckptmpi: the program's objects whose symbols ckptmpi loaded (GDB's
    `info sharedlibrary` lists the runtime's), the upper loader, the
    runtime's threads."""

    def __init__(self):
        super().__init__("info ckptmpi", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        if not _inf().pid:
            gdb.write("The program is not being run.\n")
            return
        gdb.write("program: %s\n" % (_program_path() or "(not started yet)"))
        gdb.write("upper loader at %#x, r_debug at %#x\n"
                  % (_link("upper_interp_base"), _link("upper_r_debug")))
        gdb.write("objects of the program (symbols loaded at):\n")
        for path, addr in sorted(_loaded, key=lambda k: k[1]):
            gdb.write("  %#18x  %s\n" % (addr, path))
        if _lower_lwps:
            gdb.write("threads of the runtime (LWP): %s\n"
                      % " ".join(str(x) for x in sorted(_lower_lwps)))


# ------------------------------------------------------------------ set-up

def setup():
    gdb.execute("set pagination off", to_string=True)
    gdb.execute("set breakpoint pending on", to_string=True)
    # the runtime parks threads with SIGRTMIN+6 at a checkpoint
    gdb.execute("handle SIG40 nostop noprint pass", to_string=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ckptmpi_hwwatch
    global _hw_watch_broken
    _hw_watch_broken = ckptmpi_hwwatch.hw_watchpoints_fire() is False
    if _hw_watch_broken:
        gdb.execute("set can-use-hw-watchpoints 0", to_string=True)
        _msg("hardware watchpoints do not fire on this machine (its virtual CPU ignores the "
             "debug registers): watchpoints are GDB's software ones, which single-step the "
             "program (slow)")
    _UpperStartBreakpoint()
    HideRuntimeFrames()
    gdb.events.breakpoint_created.connect(_filter_locations)
    gdb.events.breakpoint_modified.connect(_filter_locations)
    gdb.events.stop.connect(_on_stop)
    gdb.events.exited.connect(_on_exit)
    RestoreCommand()
    BisectCommand()
    InfoCommand()
    # before run/start/starti and after kill: the last run's objects go
    # reverse execution (ckptmpi_reverse.py, next to this file): its
    # hookpost-* of the commands that run the program, and a new session
    # at every run/start/kill
    import ckptmpi_reverse  # noqa: F401  (it sets itself up)
    globals()["ckptmpi_reverse"] = ckptmpi_reverse
    # GDB on a rank of a live MPI job (ckptmpi_job.py): `ckptmpi-job PLAN`
    import ckptmpi_job  # noqa: F401
    globals()["ckptmpi_job"] = ckptmpi_job
    for hook in ("hook-run", "hook-start", "hook-starti"):
        gdb.execute("define %s\nckptmpi-refuse-run\n"
                    "python ckptmpi_reverse.before_run()\npython unload_upper_symbols()"
                    "\nend" % hook, to_string=True)
    gdb.execute("define hookpost-kill\npython ckptmpi_reverse.before_run()\n"
                "python unload_upper_symbols()\nend", to_string=True)


setup()
