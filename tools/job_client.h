/* Talking to a running job through its control socket (core/control.c
 * answers): `ckptmpi checkpoint` and `ckptmpi status`. */
#ifndef CKPTMPI_TOOLS_JOB_CLIENT_H
#define CKPTMPI_TOOLS_JOB_CLIENT_H

int cmd_checkpoint(int argc, char **argv);
int cmd_status(int argc, char **argv);

#endif
