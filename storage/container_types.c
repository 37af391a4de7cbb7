/* HDF5 compound types of the container's tables, in memory layout. The
 * reader converts by member name, so new members can be appended later
 * without breaking old files. */
#include <stddef.h>

#include "storage/container_internal.h"

#define INS(t, s, f, ty) (H5Tinsert((t), #f, HOFFSET(s, f), (ty)) < 0)

static hid_t make_rank(void)
{
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_rank_row));
	hid_t host = H5Tcopy(H5T_C_S1);
	int bad = t < 0 || host < 0;

	/* NULLPAD so a 64-character host name still fits */
	bad = bad || H5Tset_size(host, CK_HOST_LEN) < 0 || H5Tset_strpad(host, H5T_STR_NULLPAD) < 0;
	bad = bad || INS(t, struct ck_rank_row, rank, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, pid, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, host, host) ||
	      INS(t, struct ck_rank_row, umask, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, tid_offset, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, rseq_offset, H5T_NATIVE_INT64) ||
	      INS(t, struct ck_rank_row, rseq_size, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, vdso_start, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, vdso_end, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, link_epoch, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, upper_size, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, region_first, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, region_count, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, run_first, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, run_count, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, thread_first, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, thread_count, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, fd_first, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, fd_count, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, timer_first, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, timer_count, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, memory_offset, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, memory_len, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, filedata_offset, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, filedata_len, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, strings_offset, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, strings_len, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_rank_row, cwd, H5T_NATIVE_INT64);
	if (host >= 0)
		H5Tclose(host);
	if (bad && t >= 0) {
		H5Tclose(t);
		t = -1;
	}
	return t;
}

static hid_t make_region(void)
{
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_region_row));

	if (t < 0)
		return -1;
	if (INS(t, struct ck_region_row, start, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_region_row, end, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_region_row, prot, H5T_NATIVE_UINT32) ||
	    INS(t, struct ck_region_row, kind, H5T_NATIVE_UINT32) ||
	    INS(t, struct ck_region_row, file_offset, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_region_row, file_size, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_region_row, file_mtime_ns, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_region_row, run_first, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_region_row, run_count, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_region_row, path, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_region_row, inherit, H5T_NATIVE_UINT64)) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

static hid_t make_run(void)
{
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_page_run));

	if (t < 0)
		return -1;
	if (INS(t, struct ck_page_run, addr, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_page_run, npages, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_page_run, data_offset, H5T_NATIVE_UINT64)) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

static hid_t make_thread(void)
{
	hsize_t n = CK_NGREGS;
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_thread));
	hid_t gregs = H5Tarray_create2(H5T_NATIVE_UINT64, 1, &n);
	int bad = t < 0 || gregs < 0;

	bad = bad || INS(t, struct ck_thread, tid, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_thread, is_main, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_thread, fs_base, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_thread, gs_base, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_thread, uc_addr, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_thread, robust_head, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_thread, robust_len, H5T_NATIVE_UINT64) ||
	      INS(t, struct ck_thread, gregs, gregs);
	if (gregs >= 0)
		H5Tclose(gregs);
	if (bad && t >= 0) {
		H5Tclose(t);
		t = -1;
	}
	return t;
}

static hid_t make_fd(void)
{
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_fd_row));

	if (t < 0)
		return -1;
	if (INS(t, struct ck_fd_row, fd, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_fd_row, flags, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_fd_row, offset, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_fd_row, kind, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_fd_row, data_offset, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_fd_row, data_len, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_fd_row, path, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_fd_row, dev, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_fd_row, ino, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_fd_row, uid, H5T_NATIVE_UINT64)) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

static hid_t make_timer(void)
{
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_posix_timer));

	if (t < 0)
		return -1;
	if (INS(t, struct ck_posix_timer, id, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_posix_timer, clock, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_posix_timer, notify, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_posix_timer, signo, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_posix_timer, target_tid, H5T_NATIVE_INT64) ||
	    INS(t, struct ck_posix_timer, sigval, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_posix_timer, interval_ns, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_posix_timer, value_ns, H5T_NATIVE_UINT64)) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

static hid_t make_sigaction(void)
{
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_sigaction));

	if (t < 0)
		return -1;
	if (INS(t, struct ck_sigaction, handler, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_sigaction, flags, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_sigaction, restorer, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_sigaction, mask, H5T_NATIVE_UINT64)) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

static hid_t make_rlimit(void)
{
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_rlimit));

	if (t < 0)
		return -1;
	if (INS(t, struct ck_rlimit, cur, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_rlimit, max, H5T_NATIVE_UINT64)) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

static hid_t make_itimer(void)
{
	hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct ck_itimer));

	if (t < 0)
		return -1;
	if (INS(t, struct ck_itimer, interval_us, H5T_NATIVE_UINT64) ||
	    INS(t, struct ck_itimer, value_us, H5T_NATIVE_UINT64)) {
		H5Tclose(t);
		return -1;
	}
	return t;
}

int ck_types_create(struct ck_types *t)
{
	t->rank = make_rank();
	t->region = make_region();
	t->run = make_run();
	t->thread = make_thread();
	t->fd = make_fd();
	t->timer = make_timer();
	t->sigaction = make_sigaction();
	t->rlimit = make_rlimit();
	t->itimer = make_itimer();
	if (t->rank < 0 || t->region < 0 || t->run < 0 || t->thread < 0 || t->fd < 0 ||
	    t->timer < 0 || t->sigaction < 0 || t->rlimit < 0 || t->itimer < 0) {
		ck_types_close(t);
		return -1;
	}
	return 0;
}

void ck_types_close(struct ck_types *t)
{
	hid_t *all[] = { &t->rank, &t->region, &t->run, &t->thread, &t->fd,
	                 &t->timer, &t->sigaction, &t->rlimit, &t->itimer };

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		if (*all[i] >= 0)
			H5Tclose(*all[i]);
		*all[i] = -1;
	}
}
