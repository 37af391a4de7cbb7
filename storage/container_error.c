/* The last failure's message, per thread, and the classification of HDF5
 * failures into messages a user can act on. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "storage/container.h"
#include "storage/container_internal.h"

static _Thread_local char ck_errbuf[1024];

const char *container_error(void)
{
	return ck_errbuf[0] ? ck_errbuf : "no error";
}

void ck_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ck_errbuf, sizeof ck_errbuf, fmt, ap);
	va_end(ap);
	/* callers log it as one line */
	for (char *p = ck_errbuf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void container_set_error(const char *msg) { ck_set_error("%s", msg); }

struct h5_walk {
	int checksum;               /* fletcher32 or metadata checksum failed */
	int pipeline;               /* another filter failed (or is missing) */
	int truncated;              /* address beyond the end of the file */
	char sys[160];              /* strerror text of a failed system call */
	char inner[200];            /* innermost description */
};

static herr_t h5_walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
	struct h5_walk *w = data;
	const char *d = e->desc ? e->desc : "";
	const char *m;

	if (n == 0)
		snprintf(w->inner, sizeof w->inner, "%s", d);
	if (strstr(d, "checksum") || strstr(d, "Fletcher32"))
		w->checksum = 1;
	else if (e->maj_num == H5E_PLINE)
		w->pipeline = 1;
	if (strstr(d, "truncated") || strstr(d, "addr overflow") || strstr(d, "address overflow"))
		w->truncated = 1;
	/* sec2 driver failures carry the errno text as error message = '...' */
	if (!w->sys[0] && (m = strstr(d, "error message = '"))) {
		m += strlen("error message = '");
		size_t len = strcspn(m, "'");
		if (len >= sizeof w->sys)
			len = sizeof w->sys - 1;
		memcpy(w->sys, m, len);
		w->sys[len] = 0;
	}
	return 0;
}

void ck_set_h5_error(const char *path, const char *verb, const char *what)
{
	struct h5_walk w = { 0 };

	if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_cb, &w) < 0)
		w.inner[0] = 0;
	if (!strcmp(verb, "open")) {
		/* H5Fopen: the signature was there, the rest is not usable */
		if (w.truncated || strstr(w.inner, "truncated"))
			ck_set_error("%s: not an HDF5 file (truncated)", path);
		else if (w.checksum)
			ck_set_error("%s: not an HDF5 file (checksum mismatch in metadata, corrupt)", path);
		else if (w.sys[0])
			ck_set_error("%s: cannot open: %s", path, w.sys);
		else
			ck_set_error("%s: not an HDF5 file (truncated or corrupt%s%s)", path,
			             w.inner[0] ? ": " : "", w.inner);
	} else if (w.checksum)
		ck_set_error("%s: checksum mismatch in %s (corrupt file)", path, what);
	else if (w.pipeline)
		ck_set_error("%s: %s does not decode (corrupt file, or its filter is missing here%s%s)",
		             path, what, w.inner[0] ? ": " : "", w.inner);
	else if (w.truncated)
		ck_set_error("%s: %s lies beyond the end of the file (truncated file)", path, what);
	else if (w.sys[0])
		ck_set_error("%s: cannot %s %s: %s", path, verb, what, w.sys);
	else if (!strcmp(verb, "read"))
		ck_set_error("%s: cannot read %s (corrupt file%s%s)", path, what,
		             w.inner[0] ? ": " : "", w.inner);
	else
		ck_set_error("%s: cannot %s %s%s%s", path, verb, what,
		             w.inner[0] ? ": " : "", w.inner);
}
