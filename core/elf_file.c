#include "core/elf_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	ssize_t r = pread(fd, buf, len, off);
	return r == (ssize_t)len ? 0 : -1;
}

int elf_interpreter(const char *path, char *interp, size_t len, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (read_at(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		snprintf(err, errlen, "%s: not an ELF executable", path);
		goto fail;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		snprintf(err, errlen, "%s: not an x86-64 executable", path);
		goto fail;
	}
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (read_at(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)))
			break;
		if (ph.p_type == PT_INTERP) {
			if (ph.p_filesz >= len || read_at(fd, interp, ph.p_filesz, (off_t)ph.p_offset)) {
				snprintf(err, errlen, "%s: unreadable PT_INTERP", path);
				goto fail;
			}
			interp[ph.p_filesz] = 0;
			close(fd);
			return 0;
		}
	}
	snprintf(err, errlen, "%s: statically linked executables are not supported yet", path);
fail:
	close(fd);
	return -1;
}

/* Call fn for each dynamic symbol of path (name, symbol) until it returns
 * nonzero; returns that, or 0. */
static int each_dynamic_symbol(const char *path, int (*fn)(const char *name, const Elf64_Sym *s,
                                                           void *arg),
                               void *arg)
{
	Elf64_Ehdr eh;
	Elf64_Shdr *sh = NULL;
	int found = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (read_at(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_shentsize != sizeof(Elf64_Shdr))
		goto out;
	sh = calloc(eh.e_shnum, sizeof *sh);
	if (!sh || read_at(fd, sh, eh.e_shnum * sizeof *sh, (off_t)eh.e_shoff))
		goto out;
	for (int i = 0; i < eh.e_shnum && !found; i++) {
		Elf64_Sym *syms;
		char *str;
		Elf64_Shdr *ss;
		size_t n;

		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh.e_shnum)
			continue;
		ss = &sh[sh[i].sh_link];
		syms = malloc(sh[i].sh_size);
		str = malloc(ss->sh_size + 1);
		if (syms && str && !read_at(fd, syms, sh[i].sh_size, (off_t)sh[i].sh_offset) &&
		    !read_at(fd, str, ss->sh_size, (off_t)ss->sh_offset)) {
			str[ss->sh_size] = 0;
			n = sh[i].sh_size / sizeof *syms;
			for (size_t k = 0; k < n && !found; k++)
				if (syms[k].st_name < ss->sh_size)
					found = fn(str + syms[k].st_name, &syms[k], arg);
		}
		free(syms);
		free(str);
	}
out:
	free(sh);
	close(fd);
	return found;
}

struct wanted {
	const char *name;
	uint64_t value;
};

static int value_of(const char *name, const Elf64_Sym *s, void *arg)
{
	struct wanted *w = arg;
	if (strcmp(name, w->name))
		return 0;
	w->value = s->st_value;
	return 1;
}

uint64_t elf_dynamic_symbol(const char *path, const char *name)
{
	struct wanted w = {name, 0};
	each_dynamic_symbol(path, value_of, &w);
	return w.value;
}

struct name_cb {
	int (*fn)(const char *name, void *arg);
	void *arg;
};

static int call_with_name(const char *name, const Elf64_Sym *s, void *arg)
{
	struct name_cb *c = arg;
	(void)s;
	return c->fn(name, c->arg);
}

int elf_each_dynamic_name(const char *path, int (*fn)(const char *name, void *arg), void *arg)
{
	struct name_cb c = {fn, arg};
	return each_dynamic_symbol(path, call_with_name, &c);
}
