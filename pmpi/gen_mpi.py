#!/usr/bin/env python3
"""Generate ckptmpi's MPI interception code from pmpi/mpi_functions.def.

    gen_mpi.py --flavour openmpi --out DIR [--skip FILE] [--table FILE]
               [--mpi-cflags '-I...' | --mpi-include 'DIR;DIR'] [--declared FILE]
    gen_mpi.py --list [--flavour F]       names in the table (or generated for F)
    gen_mpi.py --check                    parse and validate the table only
    gen_mpi.py --scan --flavour F         what F's mpi.h declares (functions, objects)

Writes into DIR (files are rewritten only when their content changes), for
every function MPI_x of the table that the flavour has:

    mpi_index.h       enum: CKPT_MPI_MPI_x (CKPT_MPI_ + the name), CKPT_MPI_NFUNCS;
                      CKPT_HAVE_MPI_x; ckpt_mpi_names[]; ckpt_mpi_table_fill()
    mpi_names.c       ckpt_mpi_names[CKPT_MPI_MPI_x] = "MPI_x"
    mpi_fntypes.h     typedef ... (*ckpt_fn_MPI_x)(...)
    upper_wrappers.c  PMPI_x forwarding through the lower table, and
                      #pragma weak MPI_x = PMPI_x; not for --skip names
    lower_table.c     ckpt_mpi_table_fill(fn): fn[CKPT_MPI_MPI_x] = PMPI_x

A function of the table is generated for a flavour only if that flavour's
mpi.h declares both MPI_x and PMPI_x as functions (found by running the C
preprocessor on "#include <mpi.h>" and scanning the output), so functions
that a flavour makes macros (MPICH's MPI_Comm_c2f, Open MPI's MPI_Aint_add)
or hides (Open MPI's removed MPI-1 functions) are left out. --declared FILE
replaces the scan with a list of declared names.

Standard library only. See pmpi/gen/README.md.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TABLE = os.path.join(HERE, "mpi_functions.def")

# C type of a handle -> Kind used in the CKPT_VH_* macros
HANDLE_KINDS = {
    "MPI_Comm": "Comm",
    "MPI_Group": "Group",
    "MPI_Datatype": "Datatype",
    "MPI_Op": "Op",
    "MPI_Request": "Request",
    "MPI_Errhandler": "Errhandler",
    "MPI_Info": "Info",
    "MPI_Win": "Win",
    "MPI_File": "File",
    "MPI_Message": "Message",
    "MPI_T_enum": "T_enum",
    "MPI_T_cvar_handle": "T_cvar_handle",
    "MPI_T_pvar_handle": "T_pvar_handle",
    "MPI_T_pvar_session": "T_pvar_session",
}
# kinds that may be given explicitly with DIR(Kind) on a non-handle type (an int)
EXTRA_KINDS = {"Keyval"}
# weights: an int array of the graph constructors that may be the special
# pointer MPI_UNWEIGHTED or MPI_WEIGHTS_EMPTY (CKPT_WEIGHTS_IN, a pointer the
# lower MPI compares with its own)
DIRECTIONS = {"in", "out", "inout", "callback", "data", "scratch", "weights"}
# @log: a creating call recorded in the creation log and replayed on restart;
# @collective: a collective over its first input communicator (counted, and
# held at its entry while a checkpoint agrees on a cut)
# @attrcopy: a dup (attributes are copied to the new object, pmpi/attrs.c);
# @attrfree: a free (the object's attributes are deleted first)
# @unrestorable: served by MPI behind the shim's back (messages it moves are
# not counted): once it succeeded, a checkpoint is refused (ckpt_st->refuse)
TAGS = {"variadic", "deprecated", "removed", "log", "collective", "attrcopy", "attrfree",
        "unrestorable"}

# Pseudo-functions usable in [LEN] and {COND}: name -> (C helper, arity,
# functions of the table the helper calls through the lower table).
PSEUDO = {
    "comm_size": ("ckpt_comm_size", 1,
                  ["MPI_Comm_test_inter", "MPI_Comm_size", "MPI_Comm_remote_size"]),
    "comm_rank": ("ckpt_comm_rank", 1, ["MPI_Comm_rank"]),
    "topo_indegree": ("ckpt_topo_indegree", 1,
                      ["MPI_Topo_test", "MPI_Cartdim_get", "MPI_Comm_rank",
                       "MPI_Graph_neighbors_count", "MPI_Dist_graph_neighbors_count"]),
    "topo_outdegree": ("ckpt_topo_outdegree", 1,
                       ["MPI_Topo_test", "MPI_Cartdim_get", "MPI_Comm_rank",
                        "MPI_Graph_neighbors_count", "MPI_Dist_graph_neighbors_count"]),
    "envelope_ndatatypes": ("ckpt_envelope_ndatatypes", 1, ["MPI_Type_get_envelope"]),
    "min": ("ckpt_min", 2, []),
}

# C source of the helpers (emitted into upper_wrappers.c when used). They
# take lower-half handles and call the lower half directly.
PSEUDO_C = {
    "comm_size": """\
/* comm_size(c): size of the group that per-rank arrays of c are indexed by
 * (the remote group of an intercommunicator). */
static inline int ckpt_comm_size(MPI_Comm comm)
{
\tint inter = 0, n = 0;

\t(void)CKPT_CALL(CKPT_MPI_MPI_Comm_test_inter, ckpt_fn_MPI_Comm_test_inter, comm, &inter);
\tif (inter)
\t\t(void)CKPT_CALL(CKPT_MPI_MPI_Comm_remote_size, ckpt_fn_MPI_Comm_remote_size, comm, &n);
\telse
\t\t(void)CKPT_CALL(CKPT_MPI_MPI_Comm_size, ckpt_fn_MPI_Comm_size, comm, &n);
\treturn n;
}
""",
    "comm_rank": """\
/* comm_rank(c): the caller's rank in c. */
static inline int ckpt_comm_rank(MPI_Comm comm)
{
\tint rank = -1;

\t(void)CKPT_CALL(CKPT_MPI_MPI_Comm_rank, ckpt_fn_MPI_Comm_rank, comm, &rank);
\treturn rank;
}
""",
    "topo": """\
/* Number of sources and destinations of a topology communicator, as the
 * neighbourhood collectives count them. */
static inline void ckpt_topo_degrees(MPI_Comm comm, int *indegree, int *outdegree)
{
\tint topo = MPI_UNDEFINED, n = 0, rank = 0, weighted = 0;

\t*indegree = *outdegree = 0;
\t(void)CKPT_CALL(CKPT_MPI_MPI_Topo_test, ckpt_fn_MPI_Topo_test, comm, &topo);
\tswitch (topo) {
\tcase MPI_CART:
\t\t(void)CKPT_CALL(CKPT_MPI_MPI_Cartdim_get, ckpt_fn_MPI_Cartdim_get, comm, &n);
\t\t*indegree = *outdegree = 2 * n;
\t\tbreak;
\tcase MPI_GRAPH:
\t\t(void)CKPT_CALL(CKPT_MPI_MPI_Comm_rank, ckpt_fn_MPI_Comm_rank, comm, &rank);
\t\t(void)CKPT_CALL(CKPT_MPI_MPI_Graph_neighbors_count, ckpt_fn_MPI_Graph_neighbors_count,
\t\t                comm, rank, &n);
\t\t*indegree = *outdegree = n;
\t\tbreak;
\tcase MPI_DIST_GRAPH:
\t\t(void)CKPT_CALL(CKPT_MPI_MPI_Dist_graph_neighbors_count,
\t\t                ckpt_fn_MPI_Dist_graph_neighbors_count, comm, indegree, outdegree,
\t\t                &weighted);
\t\tbreak;
\t}
}
""",
    "topo_indegree": """\
static inline int ckpt_topo_indegree(MPI_Comm comm)
{
\tint in, out;

\tckpt_topo_degrees(comm, &in, &out);
\treturn in;
}
""",
    "topo_outdegree": """\
static inline int ckpt_topo_outdegree(MPI_Comm comm)
{
\tint in, out;

\tckpt_topo_degrees(comm, &in, &out);
\treturn out;
}
""",
    "envelope_ndatatypes": """\
/* envelope_ndatatypes(t): how many datatypes MPI_Type_get_contents(t) returns. */
static inline int ckpt_envelope_ndatatypes(MPI_Datatype type)
{
\tint ni = 0, na = 0, nd = 0, combiner = 0;

\t(void)CKPT_CALL(CKPT_MPI_MPI_Type_get_envelope, ckpt_fn_MPI_Type_get_envelope, type,
\t                &ni, &na, &nd, &combiner);
\treturn nd;
}
""",
    "min": """\
static inline int ckpt_min(int a, int b)
{
\treturn a < b ? a : b;
}
""",
}

# where to find a flavour's mpi.h when --mpi-cflags is not given
FLAVOURS = {
    "openmpi": {"pkg": "ompi-c",
                "fallback": ["-I/usr/lib/x86_64-linux-gnu/openmpi/include",
                             "-I/usr/lib/x86_64-linux-gnu/openmpi/include/openmpi"]},
    "mpich": {"pkg": "mpich",
              "fallback": ["-I/usr/include/x86_64-linux-gnu/mpich"]},
}


class TableError(Exception):
    pass


# ---------------------------------------------------------------- parsing

def split_top(s, sep=","):
    """Split s at sep where not nested in (), [] or {}."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [x.strip() for x in out]


def take_group(s, i, open_ch, close_ch):
    """s[i] == open_ch: return (contents, index after the matching close_ch)."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == open_ch:
            depth += 1
        elif s[j] == close_ch:
            depth -= 1
            if depth == 0:
                return s[i + 1:j], j + 1
    raise TableError("unbalanced %r in %r" % (open_ch, s))


class Param:
    def __init__(self, text):
        self.text = text
        self.variadic = text == "..."
        self.void = text == "void"
        self.dir = None       # in, out, inout, callback
        self.kind = None      # Comm, Datatype, Keyval, ... (handles), or callback type
        self.length = None    # C expression (arrays)
        self.cond = None      # C expression
        if self.variadic or self.void:
            self.decl, self.name, self.ctype, self.base = text, None, None, None
            return
        decl, ann = text, None
        if ":" in text:
            decl, ann = text.split(":", 1)
        self.decl = decl.strip()
        m = re.match(r"^(.*?)(\w+)\s*((?:\[\s*\d*\s*\])*)$", self.decl)
        if not m or not m.group(1).strip():
            raise TableError("cannot parse parameter %r" % text)
        self.ctype = m.group(1).strip()
        self.name = m.group(2)
        self.dims = m.group(3)
        self.const = bool(re.search(r"\bconst\b", self.ctype))
        self.ptr = self.ctype.count("*")
        self.base = re.sub(r"\bconst\b|\*", " ", self.ctype).split()
        self.base = " ".join(self.base)
        if ann is not None:
            self.parse_annotation(ann.strip())

    def parse_annotation(self, ann):
        m = re.match(r"^(\w+)", ann)
        if not m or m.group(1) not in DIRECTIONS:
            raise TableError("unknown annotation %r on %s" % (ann, self.name))
        self.dir = m.group(1)
        i = m.end()
        while i < len(ann):
            ch = ann[i]
            if ch == "(":
                self.kind, i = take_group(ann, i, "(", ")")
                self.kind = self.kind.strip()
            elif ch == "[":
                self.length, i = take_group(ann, i, "[", "]")
                self.length = self.length.strip()
            elif ch == "{":
                self.cond, i = take_group(ann, i, "{", "}")
                self.cond = self.cond.strip()
            elif ch.isspace():
                i += 1
            else:
                raise TableError("bad annotation %r on %s" % (ann, self.name))

    @property
    def is_array(self):
        return bool(self.dims) or self.length is not None

    @property
    def is_handle(self):
        return self.base in HANDLE_KINDS

    @property
    def is_callback_type(self):
        return bool(self.base) and (self.base.endswith("_function") or self.base.endswith("_fn"))


class Func:
    def __init__(self, line, lineno, section):
        self.line = line
        self.lineno = lineno
        self.section = section
        m = re.match(r"^(?P<ret>.+?)\s*\b(?P<name>MPIX?_\w+)\s*\((?P<params>.*)\)"
                     r"\s*(?P<tags>(?:@\w+\s*)*)$", line)
        if not m:
            raise TableError("cannot parse %r" % line)
        self.ret = m.group("ret").strip()
        self.name = m.group("name")
        self.tags = set(re.findall(r"@(\w+)", m.group("tags")))
        self.params = [Param(p) for p in split_top(m.group("params"))]
        self.validate()

    def validate(self):
        bad = self.tags - TAGS
        if bad:
            raise TableError("unknown tag(s) %s" % ", ".join(sorted(bad)))
        variadic = any(p.variadic for p in self.params)
        if variadic != ("variadic" in self.tags):
            raise TableError("'...' and @variadic must go together")
        if self.params[-1:] and any(p.variadic for p in self.params[:-1]):
            raise TableError("'...' must be last")
        if any(p.void for p in self.params) and len(self.params) != 1:
            raise TableError("void must be the only parameter")
        names = [p.name for p in self.params if p.name]
        if len(names) != len(set(names)):
            raise TableError("duplicate parameter names")
        for n in names:
            if n == "ret" or n.startswith("l_") or n.startswith("len_"):
                raise TableError("parameter name %r is reserved for generated code" % n)
        for p in self.params:
            if p.variadic or p.void:
                continue
            where = "%s: parameter %s: " % (self.name, p.name)
            if p.base == "MPI_Status":
                # annotations on statuses are documentation: nothing to convert
                p.doc_dir, p.dir, p.length, p.cond = p.dir, None, None, None
                continue
            if p.is_callback_type:
                if p.dir != "callback":
                    raise TableError(where + "function pointer needs :callback")
                if p.ptr != 1 or p.dims or p.length or p.cond:
                    raise TableError(where + "a callback is a single function pointer")
                p.kind = p.base[4:] if p.base.startswith("MPI_") else p.base
                continue
            if p.dir == "callback":
                raise TableError(where + ":callback on a type that is not a function type")
            if p.dir == "data":
                if p.is_handle or not p.is_array or p.length is None:
                    raise TableError(where + ":data[LEN] is for arrays of plain values")
                continue
            if p.dir == "scratch":
                if p.is_handle or not (p.ptr or (p.is_array and p.length)):
                    raise TableError(where + ":scratch is for pointers to plain outputs "
                                     "(arrays: :scratch[LEN])")
                continue
            if p.dir == "weights":
                if p.base != "int" or not (p.dims or p.ptr == 1) or p.length or p.cond:
                    raise TableError(where + ":weights is for int arrays (int x[])")
                continue
            if p.is_handle:
                if p.dir is None:
                    raise TableError(where + "handle parameter needs :in, :out or :inout")
                if p.kind is not None and p.kind != HANDLE_KINDS[p.base]:
                    raise TableError(where + "kind (%s) contradicts the type" % p.kind)
                p.kind = HANDLE_KINDS[p.base]
            elif p.dir is not None:
                if p.kind not in EXTRA_KINDS:
                    raise TableError(where + "annotated non-handle type needs a kind, one of "
                                     + ", ".join(sorted(EXTRA_KINDS)))
            else:
                continue
            # shape
            if p.is_array:
                if p.length is None:
                    raise TableError(where + "array of handles needs [length]")
                if p.ptr + len(re.findall(r"\[", p.dims)) != 1:
                    raise TableError(where + "array of handles must be T x[] or T *x")
            elif p.ptr == 0:
                if p.dir != "in":
                    raise TableError(where + "a handle passed by value can only be :in")
            elif p.ptr == 1:
                if p.dir == "in":
                    raise TableError(where + "pointer to one handle: :out or :inout")
            else:
                raise TableError(where + "unsupported pointer depth")
            if p.dir == "inout" and p.cond:
                raise TableError(where + "{cond} is not supported on :inout")
        if self.ret in HANDLE_KINDS:
            self.ret_kind = HANDLE_KINDS[self.ret]
        else:
            self.ret_kind = None


def load_table(path):
    funcs, section = [], None
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("## "):
                section = line[3:].strip()
                continue
            if line.startswith("#"):
                continue
            try:
                funcs.append(Func(line, lineno, section))
            except TableError as e:
                raise TableError("%s:%d: %s" % (path, lineno, e)) from None
    seen = {}
    for fn in funcs:
        if fn.name in seen:
            raise TableError("%s:%d: %s already on line %d"
                             % (path, fn.lineno, fn.name, seen[fn.name]))
        seen[fn.name] = fn.lineno
    # expressions may only use parameters, pseudo-functions and MPI constants
    for fn in funcs:
        pnames = {p.name for p in fn.params if p.name}
        for p in fn.params:
            for expr in (p.length, p.cond):
                if not expr:
                    continue
                for m in re.finditer(r"\b([A-Za-z_]\w*)\b(\s*\()?", expr):
                    ident, call = m.group(1), m.group(2)
                    if call:
                        if ident not in PSEUDO:
                            raise TableError("%s:%d: %s: unknown pseudo-function %s()"
                                             % (path, fn.lineno, fn.name, ident))
                    elif ident not in pnames and ident != "NULL" and not ident.startswith("MPI_"):
                        raise TableError("%s:%d: %s: %r in %r is not a parameter"
                                         % (path, fn.lineno, fn.name, ident, expr))
    return funcs


# ---------------------------------------------------------- flavour scan

def mpi_cflags(flavour, given):
    if given is not None:
        return shlex.split(given)
    info = FLAVOURS[flavour]
    try:
        out = subprocess.run(["pkg-config", "--cflags", info["pkg"]], check=True,
                             capture_output=True, text=True).stdout
        return shlex.split(out)
    except (OSError, subprocess.CalledProcessError):
        return list(info["fallback"])


def preprocess_mpi_h(cc, cflags):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "scan.c")
        with open(src, "w") as f:
            f.write("#include <mpi.h>\n")
        cmd = shlex.split(cc) + ["-E", "-P"] + cflags + [src]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit("gen_mpi.py: preprocessing mpi.h failed: %s\n%s"
                             % (" ".join(cmd), res.stderr))
    return res.stdout


def declared_names(cc, cflags):
    """Names of functions declared by mpi.h after preprocessing."""
    return set(re.findall(r"\b(P?MPIX?_\w+)\s*\(", preprocess_mpi_h(cc, cflags)))


def scan_declarations(cc, cflags):
    """(functions, objects): every function and extern object mpi.h declares."""
    text = preprocess_mpi_h(cc, cflags)
    text = re.sub(r"__attribute__\s*\(\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\)", " ", text)
    text = re.sub(r"\s+", " ", text)
    # drop bodies of inline functions and of struct/union/enum definitions
    while True:
        new = re.sub(r"\{[^{}]*\}", " ", text)
        if new == text:
            break
        text = new
    funcs, objs = set(), set()
    for st in re.split(r"[;]", text):
        st = st.strip()
        if not st or st.startswith("typedef"):
            continue
        m = re.match(r"^(?:extern\s+)?[\w\s\*]*?\b(\w+)\s*\((.*)\)$", st)
        if m and "(" not in st[:st.find(m.group(1))]:
            funcs.add(m.group(1))
            continue
        m = re.match(r"^extern\b[\w\s\*]*?\b(\w+)\s*(?:\[[^\]]*\])*$", st)
        if m:
            objs.add(m.group(1))
    return funcs, objs


def available(funcs, declared):
    have = [f for f in funcs if f.name in declared and "P" + f.name in declared]
    missing = [f for f in funcs if f not in have]
    return have, missing


# ------------------------------------------------------------- emitting

GEN_NOTE = ("Generated by pmpi/gen_mpi.py from pmpi/mpi_functions.def for %s.\n"
            " * Do not edit: change the table or the generator.")


def wrap(head, items, tail, indent, width=96):
    """head + items joined by ', ' + tail, broken before width; continuation
    lines are aligned after head (which may itself start with tabs)."""
    col = len(head.expandtabs(8).rsplit("\n", 1)[-1])
    lines, cur = [], head
    for i, it in enumerate(items):
        piece = it + (", " if i < len(items) - 1 else "")
        if len(cur.expandtabs(8)) + len(piece.rstrip()) > width and cur.strip() != head.strip():
            lines.append(cur.rstrip())
            cur = indent + " " * (col - len(indent.expandtabs(8))) + piece
        else:
            cur += piece
    return "\n".join(lines + [cur.rstrip() + tail])


def proto_params(fn):
    return [p.decl if not (p.variadic or p.void) else p.text for p in fn.params]


def local_type(p):
    """Type of the local holding the lower value of p."""
    base = p.base
    if p.is_array:
        return ("const " if p.const else "") + base + " *"
    return base + " "


def subst(expr, fn, lowered):
    """Rewrite a [LEN]/{COND} expression: handle parameters -> their lower
    locals, pseudo-functions -> helpers."""
    def rep(m):
        ident, call = m.group(1), m.group(2)
        if call:
            return PSEUDO[ident][0] + call
        return lowered.get(ident, ident)
    return re.sub(r"\b([A-Za-z_]\w*)\b(\s*\()?", rep, expr)


def pseudo_used(fn):
    used = set()
    for p in fn.params:
        for expr in (p.length, p.cond):
            if expr:
                used |= {m for m in re.findall(r"\b(\w+)\s*\(", expr) if m in PSEUDO}
    return used


def stmt(s, indent):
    """A statement at indent: a string, or (macro, args) wrapped to the width."""
    if isinstance(s, str):
        return indent + s
    if len(s) == 2:
        return wrap(indent + s[0] + "(", s[1], ");", indent)
    return wrap(indent + s[0] + s[1] + "(", s[2], ");", indent)      # lhs = macro(args);


def gen_wrapper(fn):
    params = [p for p in fn.params if not (p.variadic or p.void)]
    lowered = {}      # param name -> C expression of its lower value
    decls, pre, post_always, post_ok = [], [], [], []
    args = []

    # 1. scalar in-handles and callbacks first: lengths and conditions use them
    for p in params:
        if p.dir == "in" and not p.is_array:
            lowered[p.name] = "l_" + p.name
    for p in params:
        if p.dir == "in" and not p.is_array:
            if p.cond:
                decls.append("%sl_%s = (%s) ? CKPT_VH_IN(%s, %s) : %s;"
                             % (local_type(p), p.name, subst(p.cond, fn, lowered), p.kind,
                                p.name, p.name))
            else:
                decls.append(("%sl_%s = " % (local_type(p), p.name), "CKPT_VH_IN",
                              [p.kind, p.name]))
        elif p.dir == "callback":
            decls.append(("%s *l_%s = " % (p.base, p.name), "CKPT_CB", [p.kind, p.name]))
            lowered[p.name] = "l_" + p.name
        elif p.dir == "inout" and not p.is_array:
            decls.append(("%s l_%s = " % (p.base, p.name), "CKPT_VH_IN", [p.kind, "*" + p.name]))
        elif p.dir == "weights":
            decls.append("%sint *l_%s = (%sint *)ckpt_weights_in(%s);"
                         % ("const " if p.const else "", p.name, "const " if p.const else "",
                            p.name))

    # 2. array lengths: a computed length used more than once (an in-out
    # array, or two arrays) is computed once, unless every use is conditional
    arrays = [p for p in params if p.is_array and p.dir in ("in", "out", "inout")]
    lens = {}
    for p in arrays:
        e = p.length
        if e in lens:
            continue
        uses = [q for q in arrays if q.length == e]
        nuses = sum(2 if q.dir == "inout" else 1 for q in uses)
        if re.fullmatch(r"\w+", e) or nuses == 1 or all(q.cond for q in uses):
            lens[e] = subst(e, fn, lowered)
        else:
            # (unused when call.h's array macros ignore their length)
            decls.append("int len_%s __attribute__((unused)) = %s;"
                         % (p.name, subst(e, fn, lowered)))
            lens[e] = "len_" + p.name

    # 3. arrays
    for p in params:
        if not p.is_array or p.dir in (None, "callback", "data", "weights", "scratch"):
            continue
        n = lens[p.length]
        if p.dir == "in" or p.dir == "inout":
            conv = ("CKPT_VH_IN_ARRAY", [p.kind, p.name, n])
            if p.cond:
                decls.append("%sl_%s = %s;" % (local_type(p), p.name, p.name))
                pre.append("if (%s)\n%s" % (subst(p.cond, fn, lowered),
                                             stmt(("l_%s = " % p.name,) + conv, "\t\t")))
            else:
                decls.append(("%sl_%s = " % (local_type(p), p.name),) + conv)
            if p.dir == "inout":
                post_always.append(("CKPT_VH_INOUT_ARRAY", [p.kind, p.name, "l_" + p.name, n,
                                                             "CKPT_MPI_" + fn.name]))
        else:  # out: MPI writes lower handles into the caller's array, converted in place
            post_ok.append((p.cond and subst(p.cond, fn, lowered),
                            ("CKPT_VH_OUT_ARRAY", [p.kind, p.name, p.name, n,
                                                   "CKPT_MPI_" + fn.name])))

    # 4. arguments and conversions after the call
    for p in fn.params:
        if p.variadic or p.void:
            continue
        if p.dir in ("in", "callback", "weights") or (p.is_array and p.dir == "inout"):
            args.append("l_" + p.name)
        elif p.dir == "inout":
            args.append("&l_" + p.name)
            post_always.append(("CKPT_VH_INOUT", [p.kind, p.name, "l_" + p.name,
                                                  "CKPT_MPI_" + fn.name]))
        elif p.dir == "out" and not p.is_array:
            args.append(p.name)
            post_ok.append((p.cond and subst(p.cond, fn, lowered),
                            ("CKPT_VH_OUT", [p.kind, p.name, "CKPT_MPI_" + fn.name])))
        else:
            args.append(p.name)

    int_ret = fn.ret == "int"
    call_args = ["CKPT_MPI_" + fn.name, "ckpt_fn_" + fn.name] + args
    body = []
    coll = coll_comm(fn)
    if coll:
        # first: a thread held at the entry during a checkpoint may resume
        # after a restart, so no lower handle may be computed before it
        decls.insert(0, "struct ckpt_vh *ckpt__c = ckpt_coll_enter(CKPT_HVAL(%s));" % coll.name)
        post_always.insert(0, "ckpt_coll_leave(ckpt__c);")
    if "log" in fn.tags:
        # the thread may be parked anywhere: a checkpoint waits for the
        # call to be recorded (pmpi/lower_cut.c, settled())
        decls.append("ckpt_create_begin();")
        post_ok.append(("", log_block(fn, lowered)))
    if "attrcopy" in fn.tags:
        # a copy callback's error is the call's: the new object is freed
        src = next(p for p in params if p.is_handle and p.dir == "in" and not p.is_array)
        dst = next(p for p in params if p.is_handle and p.dir == "out" and not p.is_array)
        post_ok.append(("", "if ((ret = ckpt_attr_copy_rc(CKPT_HVAL(%s), CKPT_HVAL(*%s))) != "
                        "MPI_SUCCESS)\n\t\tckpt_attr_dup_failed(CKPT_VK_%s, %s);"
                        % (src.name, dst.name, dst.kind.upper(), dst.name)))
    if "unrestorable" in fn.tags:
        post_ok.append(("", "ckpt_refuse_call(CKPT_MPI_%s);" % fn.name))
    attrfree = None
    if "attrfree" in fn.tags:
        # a delete callback's error is the call's, and the object stays
        obj = next(p for p in params if p.is_handle and p.dir == "inout" and not p.is_array)
        attrfree = ("int ckpt__arc = ckpt_attr_freeing_rc(CKPT_HVAL(*%s));" % obj.name,
                    "if (ckpt__arc != MPI_SUCCESS)\n\t\treturn ckpt__arc;")
    simple = not (pre or post_always or post_ok or fn.ret_kind)
    # a section (pmpi/call.h) from the first handle translated to the last
    # output recorded: the thread is never parked halfway (a restart would
    # leave it holding old lower handles); after the collective gate, where
    # a thread may wait for a checkpoint
    if decls or not simple:
        decls.insert(1 if coll else 0, "ckpt_section_begin();")
        simple = False
    decls = [stmt(d, "\t")[1:] for d in decls]
    if attrfree:
        decls = list(attrfree) + decls
        simple = False
    if simple:
        body += decls
        if decls:
            body.append("")
        body.append(wrap("\treturn CKPT_CALL(", call_args, ");", "\t")[1:])
    else:
        body += decls
        body.append("%s ret;" % fn.ret)
        body.append("")
        body += pre
        # (inside the wrapper's section: the call needs none of its own)
        body.append(wrap("\tret = CKPT_CALL_IN(", call_args, ");", "\t")[1:])
        body += [stmt(s, "\t")[1:] for s in post_always]
        if post_ok:
            # outputs are defined only when the call succeeded
            groups = {}
            for cond, st in post_ok:
                groups.setdefault(cond, []).append(st)
            for cond, stmts in groups.items():
                test = "ret == MPI_SUCCESS" if int_ret else None
                if cond:
                    test = "%s && (%s)" % (test, cond) if test else cond
                if test is None:
                    body += [stmt(s, "\t")[1:] for s in stmts]
                elif len(stmts) == 1:
                    body.append("if (%s)\n%s" % (test, stmt(stmts[0], "\t\t")))
                else:
                    body.append("if (%s) {\n%s\n\t}"
                                % (test, "\n".join(stmt(s, "\t\t") for s in stmts)))
        if fn.ret_kind:
            body.append("CKPT_VH_OUT(%s, &ret, CKPT_MPI_%s);" % (fn.ret_kind, fn.name))
        if "log" in fn.tags:
            body.append("ckpt_create_end();")
        body.append("ckpt_section_end();")
        body.append("return ret;")

    out = []
    if "variadic" in fn.tags:
        out.append("/* variadic: only the named arguments are passed on */")
    if "removed" in fn.tags:
        out.append("/* removed in MPI-3.0; only for binaries built against older headers */")
    out.append(wrap("%s P%s(" % (fn.ret, fn.name), proto_params(fn), ")", ""))
    out.append("{")
    for b in body:
        out.append(("\t" + b) if b else "")
    out.append("}")
    out.append("#pragma weak %s = P%s" % (fn.name, fn.name))
    return "\n".join(out) + "\n"


# ------------------------------------------------- creation log and replay

def coll_comm(fn):
    """The communicator a @collective function is collective over."""
    if "collective" not in fn.tags:
        return None
    for p in fn.params:
        if p.kind == "Comm" and p.dir == "in" and not p.is_array:
            return p
    raise TableError("%s: @collective without an input communicator" % fn.name)


def log_params(fn):
    return [p for p in fn.params if not (p.variadic or p.void) and p.base != "MPI_Status"]


def log_words(fn, lowered):
    """C expression: number of 64-bit words of fn's log record body."""
    terms = []
    for p in log_params(fn):
        if p.is_array and p.dir == "data":
            n = subst(p.length, fn, lowered)
            terms.append("1 + ((size_t)(%s) * sizeof((%s)[0]) + 7) / 8" % (n, p.name))
        elif p.is_array and p.is_handle:
            terms.append("1 + (size_t)(%s)" % subst(p.length, fn, lowered))
        elif p.is_array and p.dir == "scratch":
            terms.append("1")
        elif p.is_array:
            raise TableError("%s: @log needs :data[LEN] on array %s" % (fn.name, p.name))
        elif is_string(p):
            terms.append("1 + (strlen(%s) + 8) / 8" % p.name)
        else:
            terms.append("1")
    return " + ".join(terms) if terms else "0"


def is_string(p):
    return p.base == "char" and p.const and p.ptr == 1 and not p.dims


def log_block(fn, lowered):
    """The call of the record writer, in the wrapper after success."""
    args = []
    for p in log_params(fn):
        if p.dir == "callback":
            args.append("l_" + p.name)
        else:
            args.append(p.name)
    # lengths that use pseudo-functions are evaluated by the wrapper (an
    # output array's length too: how many handles MPI wrote)
    for p in out_arrays_logged(fn):
        args.append("(int)(%s)" % subst(p.length, fn, lowered))
    return "ckpt_log_%s(%s);" % (fn.name, ", ".join(args + ["(size_t)(%s)" % log_words(fn, lowered)]))


def out_arrays_logged(fn):
    return [p for p in log_params(fn) if p.is_array and p.is_handle and p.dir == "out"]


def gen_log_fn(fn):
    """static void ckpt_log_MPI_x(params..., size_t words): append a record."""
    params = []
    for p in log_params(fn):
        if p.dir == "callback":
            params.append("%s *%s" % (p.base, p.name))
        else:
            params.append(p.decl)
    params += ["int ckpt__n_%s" % p.name for p in out_arrays_logged(fn)]
    o = [wrap("static void ckpt_log_%s(" % fn.name, params + ["size_t ckpt__words"], ")", ""), "{"]
    o.append("\tuint64_t *w = ckpt_log_begin(CKPT_MPI_%s, ckpt__words);" % fn.name)
    o.append("\tif (!w)\n\t\treturn;")
    for p in log_params(fn):
        if p.is_array and p.dir == "data":
            n = lengths_in_log(fn, p)
            o.append("\t*w++ = (uint64_t)(%s);" % n)
            o.append("\tif (%s)\n\t\tmemcpy(w, %s, (size_t)(%s) * sizeof((%s)[0]));"
                     % (n, p.name, n, p.name))
            o.append("\tw += ((size_t)(%s) * sizeof((%s)[0]) + 7) / 8;" % (n, p.name))
        elif p.is_array and p.dir == "scratch":
            o.append("\t*w++ = 0; /* %s: an output the replay discards */" % p.name)
        elif p.is_array and p.dir == "out":
            # the handles MPI made, virtual by now
            n = "ckpt__n_" + p.name
            o.append("\t*w++ = (uint64_t)(%s);" % n)
            o.append("\tfor (int i = 0; i < %s; i++)\n\t\t*w++ = ckpt_logv(CKPT_HVAL(%s[i]));"
                     % (n, p.name))
        elif p.is_array:
            n = lengths_in_log(fn, p)
            o.append("\t*w++ = (uint64_t)(%s);" % n)
            o.append("\tfor (int i = 0; i < (int)(%s); i++)\n\t\t*w++ = ckpt_logv(CKPT_HVAL(%s[i]));"
                     % (n, p.name))
        elif is_string(p):
            o.append("\t*w++ = (uint64_t)strlen(%s);" % p.name)
            o.append("\tmemcpy(w, %s, strlen(%s) + 1);" % (p.name, p.name))
            o.append("\tw += (strlen(%s) + 8) / 8;" % p.name)
        elif p.is_handle and p.dir in ("out", "inout"):
            o.append("\t*w++ = %s ? CKPT_HVAL(*%s) : 0;" % (p.name, p.name))
        elif p.is_handle:
            o.append("\t*w++ = ckpt_logv(CKPT_HVAL(%s));" % p.name)
        elif p.dir == "callback" or p.ptr:
            o.append("\t*w++ = (uint64_t)(uintptr_t)%s;" % p.name)
        else:
            o.append("\t*w++ = (uint64_t)(int64_t)%s;" % p.name)
    o.append("\tckpt_log_end(w);")
    o.append("}")
    return "\n".join(o) + "\n"


def lengths_in_log(fn, p):
    """An array length inside the record writer: only plain parameters
    (pseudo-functions would call MPI on virtual handles)."""
    if re.search(r"\w+\s*\(", p.length):
        raise TableError("%s: @log array %s: length %r must use parameters only"
                         % (fn.name, p.name, p.length))
    return p.length


def gen_replay_case(fn):
    o = ["\tcase CKPT_MPI_%s: {" % fn.name]
    args, after = [], []
    for p in log_params(fn):
        n = p.name
        if p.is_array and p.dir == "data":
            dims = p.dims or "[]"
            rest = dims[2:] if dims.startswith("[]") else ""
            ctype = p.ctype if not dims.startswith("[]") else p.ctype
            if not p.dims:  # written as T *x
                decl = "%s%s" % (p.ctype, n)
            else:
                decl = "%s (*%s)%s" % (ctype, n, rest)
            o.append("\t\tuint64_t n_%s = *p++;" % n)
            o.append("\t\t%s = (void *)p;" % decl)
            o.append("\t\tp += (n_%s * sizeof((%s)[0]) + 7) / 8;" % (n, n))
            args.append(n)
        elif p.is_array and p.dir == "scratch":
            # sized by its length expression over the parameters before it
            o.append("\t\tp++;")
            o.append("\t\t%s *%s = alloca(sizeof *%s * ((size_t)(%s) + 1));"
                     % (p.base, n, n, p.length))
            args.append(n)
        elif p.is_array and p.dir == "out":
            # the re-created object has the shape it had: MPI writes the
            # same number of handles as then
            o.append("\t\tuint64_t n_%s = *p++;" % n)
            o.append("\t\tconst uint64_t *v_%s = p;" % n)
            o.append("\t\tp += n_%s;" % n)
            o.append("\t\t%s *%s = alloca(sizeof *%s * (n_%s + 1));" % (p.base, n, n, n))
            args.append(n)
            after.append("for (uint64_t i = 0; i < n_%s; i++)\n\t\t\t\tckpt_rp_out(v_%s[i], CKPT_HVAL(%s[i]));"
                         % (n, n, n))
        elif p.is_array:
            o.append("\t\tuint64_t n_%s = *p++;" % n)
            o.append("\t\t%s *%s = alloca(sizeof *%s * (n_%s + 1));" % (p.base, n, n, n))
            o.append("\t\tfor (uint64_t i = 0; i < n_%s; i++)\n\t\t\t%s[i] = CKPT_HCAST(%s, ckpt_rp_in(*p++));"
                     % (n, n, p.base))
            args.append(n)
        elif p.is_handle and p.dir == "out":
            o.append("\t\tuint64_t v_%s = *p++;" % n)
            o.append("\t\t%s %s = CKPT_HCAST(%s, 0);" % (p.base, n, p.base))
            args.append("&" + n)
            after.append("ckpt_rp_out(v_%s, CKPT_HVAL(%s));" % (n, n))
        elif p.is_handle and p.dir == "inout":
            o.append("\t\tuint64_t v_%s = *p++;" % n)
            o.append("\t\t%s %s = CKPT_HCAST(%s, ckpt_rp_in(v_%s));" % (p.base, n, p.base, n))
            args.append("&" + n)
            after.append("ckpt_rp_out(v_%s, CKPT_HVAL(%s));" % (n, n))
        elif p.is_handle:
            o.append("\t\t%s %s = CKPT_HCAST(%s, ckpt_rp_in(*p++));" % (p.base, n, p.base))
            args.append(n)
        elif p.dir == "callback":
            o.append("\t\t%s *%s = (%s *)(uintptr_t)*p++;" % (p.base, n, p.base))
            args.append(n)
        elif is_string(p):
            o.append("\t\tuint64_t n_%s = *p++;" % n)
            o.append("\t\tconst char *%s = (const char *)p;" % n)
            o.append("\t\tp += (n_%s + 8) / 8;" % n)
            args.append(n)
        elif p.dir == "scratch":
            # an output the replay does not need: never the old address
            o.append("\t\tuint64_t scratch_%s[8] = {0};" % n)
            o.append("\t\tp++;")
            args.append("(void *)scratch_%s" % n)
        elif p.ptr:
            o.append("\t\t%s%s = (%s)(uintptr_t)*p++;" % (p.ctype if p.ctype.endswith("*") else p.ctype + " ", n, p.ctype))
            args.append(n)
        else:
            o.append("\t\t%s %s = (%s)(int64_t)*p++;" % (p.ctype, n, p.ctype))
            args.append(n)
    o.append(wrap("\t\trc = P%s(" % fn.name, args, ");", "\t\t"))
    o.append("\t\tif (rc == MPI_SUCCESS) {")
    for a in after:
        o.append("\t\t\t" + a)
    o.append("\t\t}")
    o.append("\t\tbreak;")
    o.append("\t}")
    return "\n".join(o)


def gen_replay_c(flavour, funcs):
    o = ["/* %s" % (GEN_NOTE % flavour),
         " *",
         " * Lower half: replay of one record of the creation log (pmpi/vstate.h)",
         " * against the real MPI, after a restart. ckpt_rp_in() maps a logged",
         " * input handle to the new real one; ckpt_rp_out() binds a logged output",
         " * to the new real one (pmpi/lower_replay.h). */",
         "",
         "#include <alloca.h>",
         "#include <stdint.h>",
         "#include <mpi.h>",
         "",
         '#include "pmpi/lower_replay.h"',
         '#include "mpi_index.h"',
         "",
         '#pragma GCC diagnostic ignored "-Wdeprecated-declarations"',
         "",
         "int ckpt_replay_record(uint32_t fn, const uint64_t *p)",
         "{",
         "\tint rc = MPI_ERR_INTERN;",
         "",
         "\tswitch (fn) {"]
    for f in funcs:
        if "log" in f.tags:
            o.append(gen_replay_case(f))
    o += ["\tdefault:", "\t\treturn -1;", "\t}", "\treturn rc;", "}"]
    return "\n".join(o) + "\n"


def gen_index_h(flavour, funcs, missing):
    o = ["/* %s */" % (GEN_NOTE % flavour).replace("\n", "\n"),
         "#ifndef CKPT_MPI_INDEX_H", "#define CKPT_MPI_INDEX_H", "",
         '#define CKPT_MPI_FLAVOUR "%s"' % flavour, ""]
    if missing:
        o.append("/* In the table but not declared by this flavour's mpi.h, so not generated:")
        o.append(wrap(" * ", [f.name for f in missing], " */", " * ", width=80))
        o.append("")
    o.append("/* Index of each MPI function in the lower half's function table:")
    o.append(" * CKPT_MPI_ followed by the function's name. */")
    o.append("enum ckpt_mpi_index {")
    for f in funcs:
        o.append("\tCKPT_MPI_%s," % f.name)
    o.append("\tCKPT_MPI_NFUNCS")
    o.append("};")
    o.append("")
    o.append("/* CKPT_HAVE_MPI_<name>: the function exists in this flavour. */")
    for f in funcs:
        o.append("#define CKPT_HAVE_%s 1" % f.name)
    o.append("")
    o.append("/* index -> \"MPI_<name>\" (mpi_names.c) */")
    o.append("extern const char *const ckpt_mpi_names[CKPT_MPI_NFUNCS];")
    o.append("")
    o.append("/* Lower half (lower_table.c): fn[CKPT_MPI_MPI_x] = PMPI_x for every")
    o.append(" * function; fn has CKPT_MPI_NFUNCS entries. */")
    o.append("void ckpt_mpi_table_fill(void **fn);")
    o.append("")
    o.append("#endif")
    return "\n".join(o) + "\n"


def gen_names_c(flavour, funcs):
    o = ["/* %s */" % (GEN_NOTE % flavour), '#include "mpi_index.h"', "",
         "const char *const ckpt_mpi_names[CKPT_MPI_NFUNCS] = {"]
    for f in funcs:
        o.append('\t[CKPT_MPI_%s] = "%s",' % (f.name, f.name))
    o.append("};")
    return "\n".join(o) + "\n"


def gen_fntypes_h(flavour, funcs):
    o = ["/* %s */" % (GEN_NOTE % flavour),
         "/* ckpt_fn_MPI_<name>: pointer to a function with MPI_<name>'s prototype,",
         " * the FNTYPE argument of CKPT_CALL. Needs <mpi.h>. */",
         "#ifndef CKPT_MPI_FNTYPES_H", "#define CKPT_MPI_FNTYPES_H", "",
         "#include <mpi.h>"]
    section = None
    for f in funcs:
        if f.section != section:
            section = f.section
            o.append("\n/* %s */" % "\n * ".join(textwrap.wrap(section, 76)))
        o.append(wrap("typedef %s (*ckpt_fn_%s)(" % (f.ret, f.name), proto_params(f), ");", ""))
    o += ["", "#endif"]
    return "\n".join(o) + "\n"


def gen_upper_c(flavour, funcs, skip):
    used = set()
    for f in funcs:
        if f.name not in skip:
            used |= pseudo_used(f)
    o = ["/* %s" % (GEN_NOTE % flavour),
         " *",
         " * Upper half: PMPI_<name> forwards to the lower half through the function",
         " * table; MPI_<name> is a weak alias. Handle conversions (CKPT_VH_*),",
         " * callbacks (CKPT_CB) and the call itself (CKPT_CALL) are macros of",
         " * pmpi/call.h. Conversions run before CKPT_CALL switches to the lower half.",
         " * Output handles are converted only when the call returns MPI_SUCCESS;",
         " * in-out handles always. */"]
    skipped = [f.name for f in funcs if f.name in skip]
    if skipped:
        o.append("/* Handwritten (--skip), not generated here:")
        o.append(wrap(" * ", skipped, " */", " * ", width=80))
    o += ["", "#include <stddef.h>", "#include <stdint.h>", "#include <string.h>", "", "#include <mpi.h>", "", '#include "pmpi/call.h"', '#include "mpi_index.h"',
          '#include "mpi_fntypes.h"', "",
          "/* pmpi/vtable.c: a checkpoint is refused once this call succeeded */",
          "void ckpt_refuse_call(uint32_t fn);",
          "/* pmpi/attrs.c: callbacks of a dup, of a free (the first error) */",
          "int ckpt_attr_copy_rc(uint64_t from, uint64_t to);",
          "int ckpt_attr_freeing_rc(uint64_t obj);",
          "/* pmpi/upper_special.c: a dup whose copy callback failed: free it */",
          "void ckpt_attr_dup_failed(int kind, void *newobj);",
          "/* pmpi/upper_special.c: MPI_UNWEIGHTED, MPI_WEIGHTS_EMPTY -> the lower MPI's */",
          "const void *ckpt_weights_in(const void *w);", ""]
    if used:
        o.append("/* Pseudo-functions of the table's [length] and {condition} expressions;")
        o.append(" * they take lower-half handles. */")
        if used & {"topo_indegree", "topo_outdegree"}:
            o.append(PSEUDO_C["topo"])
        for name in ["comm_size", "comm_rank", "topo_indegree", "topo_outdegree",
                     "envelope_ndatatypes", "min"]:
            if name in used:
                o.append(PSEUDO_C[name])
    section = None
    for f in funcs:
        if f.name in skip:
            continue
        if f.section != section:
            section = f.section
            o.append("/* " + "=" * 72)
            o += [" * " + l for l in textwrap.wrap(section, 76)]
            o.append(" */")
            o.append("")
        if "log" in f.tags:
            o.append(gen_log_fn(f))
        o.append(gen_wrapper(f))
    return "\n".join(o)


def gen_lower_c(flavour, funcs):
    o = ["/* %s" % (GEN_NOTE % flavour),
         " *",
         " * Lower half: the function table the upper half calls through. Built",
         " * against the real MPI. Each entry goes through a compound literal of the",
         " * table's function type, so the compiler checks the library's prototype",
         " * against mpi_functions.def. */",
         "",
         "#include <mpi.h>",
         "",
         '#include "mpi_index.h"',
         '#include "mpi_fntypes.h"',
         "",
         "/* deprecated and removed MPI-1 functions are in the table on purpose */",
         '#pragma GCC diagnostic ignored "-Wdeprecated-declarations"',
         "",
         "void ckpt_mpi_table_fill(void **fn)",
         "{"]
    for f in funcs:
        lhs = "\tfn[CKPT_MPI_%s] =" % f.name
        rhs = "(void *)(ckpt_fn_%s){P%s};" % (f.name, f.name)
        if len(lhs.expandtabs(8)) + 1 + len(rhs) <= 96:
            o.append(lhs + " " + rhs)
        else:
            o.append(lhs + "\n\t\t" + rhs)
    o.append("}")
    return "\n".join(o) + "\n"


def library_exports(lib):
    """Base names (MPI_x) of the C functions a flavour's libmpi exports:
    mixed-case MPI_x / PMPI_x text symbols of `nm -D --defined-only`
    (upper-case names are Fortran's); MPICH's MPIX_ extensions count too."""
    res = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit("gen_mpi.py: nm -D %s failed: %s" % (lib, res.stderr.strip()))
    names = set()
    for line in res.stdout.splitlines():
        w = line.split()
        if len(w) < 3 or w[1] not in "TtWi":
            continue
        m = re.fullmatch(r"P?(MPIX?_[A-Z][a-z0-9_]*[a-z0-9][a-z0-9_]*)(@.*)?", w[2])
        if m and m.group(1).split("_", 1)[1] != m.group(1).split("_", 1)[1].upper():
            names.add(m.group(1))
    return names


def gen_unsupported_c(flavour, names):
    """A stub for every function the library exports that the table lacks:
    an application calling one gets "ckptmpi: MPI_x is not supported" and
    its job ends, instead of reaching its own copy of the library (never
    initialised, in the upper half). No mpi.h: the stubs take no arguments."""
    o = ["/* %s" % (GEN_NOTE % flavour),
         " *",
         " * Functions %s's library exports that pmpi/mpi_functions.def lacks"
         % flavour,
         " * (%d): each stub says so and ends the job (ckpt_unsupported in" % len(names),
         " * pmpi/upper_special.c). */",
         "",
         "__attribute__((noreturn)) void ckpt_unsupported(const char *name);",
         "",
         "#define CKPT_UNSUPPORTED(n) \\",
         "\tint P##n(void); \\",
         "\tint P##n(void) { ckpt_unsupported(#n); } \\",
         "\tint n(void) __attribute__((weak, alias(\"P\" #n)));",
         ""]
    for n in sorted(names):
        o.append("CKPT_UNSUPPORTED(%s)" % n)
    return "\n".join(o) + "\n"


def write_if_changed(path, text):
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except OSError:
        pass
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return True


def read_list(path):
    names = []
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if line:
                names.append(line[1:] if line.startswith("PMPI_") else line)
    return names


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flavour", "--flavor", choices=sorted(FLAVOURS))
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--table", default=DEFAULT_TABLE)
    ap.add_argument("--skip", help="file of handwritten functions, one name a line")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"),
                    help="C compiler used to preprocess mpi.h (default $CC or cc)")
    ap.add_argument("--mpi-cflags", help="flags to find the flavour's mpi.h "
                    "(default: pkg-config, then Debian's paths)")
    ap.add_argument("--mpi-include", help="include directories of the flavour's mpi.h "
                    "(a CMake list: separated by ';'), an alternative to --mpi-cflags")
    ap.add_argument("--declared", help="file of names mpi.h declares (replaces the scan)")
    ap.add_argument("--lib", help="the flavour's MPI library (libmpich.so.12, libmpi.so.40): "
                    "upper_unsupported.c gets a stub for every MPI function it exports "
                    "that the table lacks")
    ap.add_argument("--list", action="store_true", help="print function names and exit")
    ap.add_argument("--check", action="store_true", help="validate the table and exit")
    ap.add_argument("--scan", action="store_true", help="print 'function NAME' and "
                    "'object NAME' for everything the flavour's mpi.h declares, and exit")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)

    if a.mpi_include is not None:
        dirs = [d for d in re.split(r"[;:]", a.mpi_include) if d and not d.endswith("-NOTFOUND")]
        a.mpi_cflags = " ".join(shlex.quote("-I" + d) for d in dirs) + \
            (" " + a.mpi_cflags if a.mpi_cflags else "")
    try:
        funcs = load_table(a.table)
    except TableError as e:
        sys.exit("gen_mpi.py: %s" % e)
    if a.check:
        print("%s: %d functions, ok" % (a.table, len(funcs)))
        return 0
    if a.list and not a.flavour:
        for f in funcs:
            print(f.name)
        return 0
    if not a.flavour:
        ap.error("--flavour is required")
    if a.scan:
        fs, objs = scan_declarations(a.cc, mpi_cflags(a.flavour, a.mpi_cflags))
        for n in sorted(fs):
            print("function", n)
        for n in sorted(objs):
            print("object", n)
        return 0

    if a.declared:
        declared = set()
        for n in read_list(a.declared):       # MPI_x or PMPI_x: both count
            declared |= {n, "P" + n}
    else:
        declared = declared_names(a.cc, mpi_cflags(a.flavour, a.mpi_cflags))
    have, missing = available(funcs, declared)
    names = {f.name for f in have}
    for name, (_, _, needs) in PSEUDO.items():
        lacking = [n for n in needs if n not in names]
        if lacking:
            sys.exit("gen_mpi.py: pseudo-function %s needs %s" % (name, ", ".join(lacking)))

    if a.list:
        for f in have:
            print(f.name)
        return 0
    if not a.out:
        ap.error("--out is required")

    skip = set()
    if a.skip:
        table_names = {f.name for f in funcs}
        for n in read_list(a.skip):
            if n not in table_names:
                sys.exit("gen_mpi.py: %s: %s is not in the table" % (a.skip, n))
            skip.add(n)

    os.makedirs(a.out, exist_ok=True)
    outputs = {
        "mpi_index.h": gen_index_h(a.flavour, have, missing),
        "mpi_names.c": gen_names_c(a.flavour, have),
        "mpi_fntypes.h": gen_fntypes_h(a.flavour, have),
        "upper_wrappers.c": gen_upper_c(a.flavour, have, skip),
        "lower_table.c": gen_lower_c(a.flavour, have),
        "lower_replay.c": gen_replay_c(a.flavour, have),
    }
    unsupported = set()
    if a.lib:
        unsupported = library_exports(a.lib) - {f.name for f in funcs}
    outputs["upper_unsupported.c"] = gen_unsupported_c(a.flavour, unsupported)
    changed = [n for n, text in outputs.items()
               if write_if_changed(os.path.join(a.out, n), text)]
    if not a.quiet:
        print("gen_mpi.py: %s: %d functions (%d generated wrappers, %d handwritten), "
              "%d not in this mpi.h%s; %d exported by the library but refused; %s"
              % (a.flavour, len(have), len(have) - len(skip & names), len(skip & names),
                 len(missing), (": " + " ".join(f.name for f in missing)) if missing else "",
                 len(unsupported),
                 ("updated " + " ".join(changed)) if changed else "up to date"),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
