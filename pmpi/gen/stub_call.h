/* stub_call.h -- a stand-in for pmpi/call.h, for compile checks of the
 * generated code only (pmpi/gen/check_coverage.sh): identity handle
 * conversions, callbacks passed as they are, and CKPT_CALL calling through
 * ckpt_lower_fn[] with no switch of thread context. Not for production:
 * the real pmpi/call.h switches to the lower half and translates handles.
 * The contract every call.h must meet is in pmpi/gen/README.md. */
#ifndef CKPT_STUB_CALL_H
#define CKPT_STUB_CALL_H

/* filled by ckpt_mpi_table_fill() of the lower half */
extern void *ckpt_lower_fn[];

/* the lower function's return value; no arguments after FNTYPE is allowed */
#define CKPT_CALL(IDX, FNTYPE, ...) (((FNTYPE)ckpt_lower_fn[(IDX)])(__VA_ARGS__))
#define CKPT_CALL_IN CKPT_CALL

/* The conversions are identities. By default they drop their other
 * arguments (as the project's first pmpi/call.h does); with
 * CKPT_STUB_USE_ARGS they evaluate them. check_coverage.sh compiles the
 * wrappers both ways, so they stay warning-free with either kind of macro. */
#ifndef CKPT_STUB_USE_ARGS
/* upper (virtual) handle -> lower handle */
#define CKPT_VH_IN(Kind, x) (x)
/* after the call: *ptr holds a lower handle; make it an upper one in place */
#define CKPT_VH_OUT(Kind, ptr) ((void)0)
/* pointer to n lower handles converted from arr (here: arr itself) */
#define CKPT_VH_IN_ARRAY(Kind, arr, n) (arr)
/* after the call: arr[i] = upper handle of tmp[i], i < n (tmp may be arr) */
#define CKPT_VH_OUT_ARRAY(Kind, arr, tmp, n) ((void)0)
/* a function the lower half may call in place of the application's fn */
#define CKPT_CB(Kind, fn) (fn)
#else
#define CKPT_VH_IN(Kind, x) (x)
#define CKPT_VH_OUT(Kind, ptr) ((void)(ptr))
#define CKPT_VH_IN_ARRAY(Kind, arr, n) ((void)(n), (arr))
#define CKPT_VH_OUT_ARRAY(Kind, arr, tmp, n) ((void)(arr), (void)(tmp), (void)(n))
#define CKPT_CB(Kind, fn) (fn)
#endif

#endif
