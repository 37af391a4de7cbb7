#include "core/maps.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"

static int parse_line(const char *line, const char *eol, struct map_entry *e)
{
	char perms[8];
	unsigned long long start, end, off, inode;
	unsigned dmaj, dmin;
	int pos = 0;
	size_t plen;
	const char *p;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu%n", &start, &end, perms, &off,
	           &dmaj, &dmin, &inode, &pos) != 7)
		return -1;
	memset(e, 0, sizeof *e);
	e->start = start;
	e->end = end;
	e->offset = off;
	e->inode = inode;
	e->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
	          (perms[2] == 'x' ? PROT_EXEC : 0);
	e->shared = perms[3] == 's';
	p = line + pos;
	while (p < eol && *p == ' ')
		p++;
	plen = (size_t)(eol - p);
	if (plen >= sizeof e->path)
		plen = sizeof e->path - 1;
	memcpy(e->path, p, plen);
	e->path[plen] = 0;
	return 0;
}

int maps_parse(const char *text, struct map_list *out)
{
	size_t cap = 256;
	const char *line = text;

	out->n = 0;
	out->v = malloc(cap * sizeof *out->v);
	if (!out->v)
		return -1;
	while (*line) {
		const char *eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		if (eol > line) {
			if (out->n == cap) {
				struct map_entry *nv = realloc(out->v, 2 * cap * sizeof *nv);
				if (!nv)
					goto fail;
				out->v = nv;
				cap *= 2;
			}
			if (parse_line(line, eol, &out->v[out->n]) == 0)
				out->n++;
		}
		line = *eol ? eol + 1 : eol;
	}
	return 0;
fail:
	maps_free(out);
	return -1;
}

int maps_read_self(struct map_list *out)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	int fd, rc;

	if (!buf)
		return -1;
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("/proc/self/maps: %s", strerror(errno));
		free(buf);
		return -1;
	}
	for (;;) {
		ssize_t r;
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = -1;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_error("/proc/self/maps: read: %s", strerror(errno));
			rc = -1;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	rc = maps_parse(buf, out);
out:
	close(fd);
	free(buf);
	return rc;
}

int maps_to_intervals(const struct map_list *m, struct interval_set *out)
{
	for (size_t i = 0; i < m->n; i++)
		if (intervals_add(out, m->v[i].start, m->v[i].end))
			return -1;
	return 0;
}

void maps_free(struct map_list *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
}
