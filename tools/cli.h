/* What every subcommand of the ckptmpi tool shares (tools/cli.c). */
#ifndef CKPTMPI_TOOLS_CLI_H
#define CKPTMPI_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of the ckptmpi tool (README "Exit statuses", --help).
 * `run` and `restart` end with the program's own status once it runs. */
enum cli_status {
	CLI_OK = 0,
	CLI_FAILED = 1,          /* the operation failed: checkpoint refused, damage found */
	CLI_USAGE = 2,           /* bad command line or setting; nothing was done */
	CLI_NO_GENERATION = 3,   /* no (such) generation to restart or verify */
	CLI_NOT_RUNNING = 4,     /* no job of yours runs with the directory */
	CLI_CANNOT_EXECUTE = 126,/* as shells: found but cannot be run */
	CLI_NOT_FOUND = 127,     /* as shells; also a restart the runtime refused */
};

/* "ckptmpi: MESSAGE" on stderr; returns CLI_USAGE. */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, returning `status`. */
int fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The directory the tool runs from (bin/ of the build or the install). */
int self_dir(char *out, size_t len);
/* The runtime next to the tool; CKPTMPI_RUNTIME overrides. 0 if it is
 * executable. */
int find_runtime(char *out, size_t len);

/* DIR must be a directory: 0, or CLI_USAGE after saying why. */
int check_dir(const char *dir);
/* A whole number (digits only) for option WHAT: 0, or -1 after saying why. */
int parse_uint(const char *s, const char *what, unsigned long long *out);
/* getopt_long's '?' and ':' for subcommand CMD, said in one line with a
 * hint; returns CLI_USAGE. `opt` is the failing option character (optopt). */
int bad_option(const char *cmd, char *const argv[], int opt, int missing_value);

/* "2026-11-30 13:05:01" (local time) and ISO 8601 with the offset
 * ("2026-11-30T13:05:01+00:00"). */
void format_time(char *out, size_t len, int64_t unix_time);
void format_time_iso(char *out, size_t len, int64_t unix_time);
/* s as a JSON string, quotes included. */
void json_string(FILE *f, const char *s);

#endif
