/* Logging: CKPTMPI_VERBOSE=0..3 to stderr, one line per event, prefixed
 * with the rank. Errors are always printed. Not for signal handlers. */
#ifndef CKPTMPI_CORE_LOG_H
#define CKPTMPI_CORE_LOG_H

void log_init(int rank);
/* Where the lines go from now on (2 until then; core/held_output.c moves
 * them to the stderr the program's output is held from). Async-signal-safe. */
void log_set_fd(int fd);
int log_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(0, __VA_ARGS__)
/* The last error logged by this thread ("" after log_clear_error()). */
const char *log_last_error(void);
void log_clear_error(void);
/* Said at every verbosity, and not an error: which generation a restart
 * resumed, that a run found none and started fresh. */
#define log_notice(...) log_msg(-1, __VA_ARGS__)
#define log_info(...) log_msg(1, __VA_ARGS__)
#define log_debug(...) log_msg(2, __VA_ARGS__)
#define log_trace(...) log_msg(3, __VA_ARGS__)

#endif
