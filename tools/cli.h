/* What every subcommand of the ckptmpi tool shares (tools/cli.c). */
#ifndef CKPTMPI_TOOLS_CLI_H
#define CKPTMPI_TOOLS_CLI_H

#include <stddef.h>

/* "ckptmpi: MESSAGE" on stderr; returns 2, the exit status of a usage or
 * setup error. */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The directory the tool runs from (bin/ of the build or the install). */
int self_dir(char *out, size_t len);
/* The runtime next to the tool; CKPTMPI_RUNTIME overrides. 0 if it is
 * executable. */
int find_runtime(char *out, size_t len);

#endif
