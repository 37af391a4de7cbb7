/* ckptmpi debug and ckptmpi bisect (tools/debug.c). */
#ifndef CKPTMPI_TOOLS_DEBUG_H
#define CKPTMPI_TOOLS_DEBUG_H

int cmd_debug(int argc, char **argv);
int cmd_bisect(int argc, char **argv);

#endif
