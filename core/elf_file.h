/* Small reads of ELF files: the interpreter named by a program, segments
 * to load, and dynamic symbols. */
#ifndef CKPTMPI_CORE_ELF_FILE_H
#define CKPTMPI_CORE_ELF_FILE_H

#include <elf.h>
#include <stddef.h>
#include <stdint.h>

/* PT_INTERP of an executable into interp (size len). Returns 0, or -1 with
 * a message in err naming the file and the problem. */
int elf_interpreter(const char *path, char *interp, size_t len, char *err, size_t errlen);
/* st_value of a dynamic symbol of a shared object, or 0 if absent. */
uint64_t elf_dynamic_symbol(const char *path, const char *name);
/* fn for the name of each dynamic symbol (defined or imported) of path
 * until it returns nonzero; returns that, or 0 (also when path is not an
 * ELF file). */
int elf_each_dynamic_name(const char *path, int (*fn)(const char *name, void *arg), void *arg);

#endif
