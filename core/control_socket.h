/* The control socket of a job: DIR/control.sock, where `ckptmpi
 * checkpoint DIR` asks the running job (rank 0) for a checkpoint.
 *
 * DIR may be shared (a sticky scratch directory) with users who plant
 * names in it. So: a name there is trusted only if it is this user's own
 * socket (lstat, never followed) and the process behind it runs as this
 * user (SO_PEERCRED, checked by both ends). A control.sock that is not
 * ours does not stop the job: it listens under a random name
 * DIR/.control-<16 hex digits>.sock instead, which the client finds. A
 * stale socket of ours is replaced; a live one means another job of ours
 * uses DIR, and the start is refused. The socket goes away when the job
 * ends however it ends (but SIGKILL of the whole process group): a small
 * watcher process, detached, removes it once the runtime's end of a pipe
 * closes. */
#ifndef CKPTMPI_CORE_CONTROL_SOCKET_H
#define CKPTMPI_CORE_CONTROL_SOCKET_H

#define CONTROL_SOCKET_NAME "control.sock"
/* fallback names: prefix, CONTROL_SOCKET_TOKEN hex digits, suffix */
#define CONTROL_SOCKET_ALT_PREFIX ".control-"
#define CONTROL_SOCKET_ALT_SUFFIX ".sock"
#define CONTROL_SOCKET_TOKEN 16

/* Check DIR and listen on its control socket. Returns the listening
 * descriptor (a lower-half fd), -2 when the job runs on without one (the
 * path is too long: a message says so), -3 when another job of this
 * user's runs with DIR (said), -1 on another refusal or error (a message
 * names the file). */
int control_socket_open(const char *dir);

/* Remove the socket now, if it is still the one we bound (the watcher
 * does it too when the process ends). */
void control_socket_remove(void);

#endif
