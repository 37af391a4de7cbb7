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

uint64_t elf_dynamic_symbol(const char *path, const char *name)
{
	Elf64_Ehdr eh;
	Elf64_Shdr *sh = NULL;
	uint64_t value = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (read_at(fd, &eh, sizeof eh, 0) || eh.e_shentsize != sizeof(Elf64_Shdr))
		goto out;
	sh = calloc(eh.e_shnum, sizeof *sh);
	if (!sh || read_at(fd, sh, eh.e_shnum * sizeof *sh, (off_t)eh.e_shoff))
		goto out;
	for (int i = 0; i < eh.e_shnum && !value; i++) {
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
			for (size_t k = 0; k < n; k++)
				if (syms[k].st_name < ss->sh_size && !strcmp(str + syms[k].st_name, name)) {
					value = syms[k].st_value;
					break;
				}
		}
		free(syms);
		free(str);
	}
out:
	free(sh);
	close(fd);
	return value;
}
