/* Logging of the verbs library: core/log.c (CKPTMPI_VERBOSE=0..3, one line
 * per event on stderr, the prefix of the rest of ckptmpi). */
#ifndef CKPTMPI_IBSHADOW_IBLOG_H
#define CKPTMPI_IBSHADOW_IBLOG_H

#include "core/log.h"

#define iblog(level, ...) log_msg(level, __VA_ARGS__)

#endif
