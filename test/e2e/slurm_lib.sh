# shellcheck shell=bash
# A one-node Slurm cluster for the e2e tests, started and stopped by the
# test itself (sourced after lib.sh, after e2e_init):
#
#   slurm_up          munged with its own key and socket, slurmctld and
#                     slurmd from a slurm.conf generated in $WORK/slurm;
#                     skips (77) only where the daemons cannot start
#   slurm_submit OUT SCRIPT ARGS...   sbatch as the test user; sets JOBID
#   slurm_wait_state JOBID STATE... T wait until the job is in one of STATES
#   slurm_wait_done JOBID T           wait until the job has left the queue
#   slurm_down        (the EXIT trap) stops the daemons, by pid
#
# As root (CI) the daemons run as root (slurmd must be root to run jobs as
# another user) and the jobs as the test user (uid 65534, as every e2e
# test); as any other user, daemons and jobs run as that user (Slurm runs
# unprivileged for jobs of its own user). ProctrackType=proctrack/linuxproc
# and TaskPlugin=task/none need no cgroups. Ports are free ones picked at start. Commands reach this cluster
# through SLURM_CONF (the key, the munge socket and all state are in a
# directory of root's made for it, removed at the end; the logs are kept
# in the work directory of a failed case: nothing of the host's is read or
# changed).

SLURM_DIR=
SLURM_PIDS=()
SLURM_ENV=()
SLURM_NODE=

# _slurm_running PID: alive and not a zombie (the daemons are init's
# children once they detach; an init that does not reap leaves zombies)
_slurm_running() {
    kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}

slurm_down() {
    local p
    for p in "${SLURM_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${SLURM_PIDS[@]}"; do
        for _ in $(seq 50); do
            _slurm_running "$p" || break
            sleep 0.1
        done
        _slurm_running "$p" && kill -KILL "$p" 2>/dev/null
    done
    SLURM_PIDS=()
}

_slurm_on_exit() {
    local rc=$? ids
    trap - ERR
    if [ ${#SLURM_PIDS[@]} -ge 3 ]; then
        # every job of this cluster, ended by Slurm before its daemons go
        ids=$(squeue -h -o %i 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || scancel $ids 2>/dev/null || true
        for _ in $(seq 100); do
            [ -n "$(squeue -h -o %i 2>/dev/null || true)" ] || break
            sleep 0.1
        done
    fi
    [ -z "${MPI_TAG_BASE:-}" ] || _mpi_kill_tagged "$MPI_TAG_BASE-" || true
    slurm_down
    if [ -n "$SLURM_DIR" ]; then
        # the daemons' logs stay with a failed case's work directory
        [ "$rc" -eq 0 ] || [ ! -d "$WORK" ] || cp "$SLURM_DIR"/*.log "$SLURM_DIR"/slurm.conf "$WORK/" 2>/dev/null || true
        rm -rf "$SLURM_DIR"
    fi
    if [ "$rc" -eq 0 ]; then _cleanup; else _mpi_rc "$rc" || _cleanup; fi
}

# _slurm_pidfile FILE T: the pid a daemon wrote to FILE within T s.
_slurm_pidfile() {
    local f=$1 t=$2 deadline p
    deadline=$((SECONDS + t))
    while [ "$SECONDS" -lt "$deadline" ]; do
        p=$(cat "$f" 2>/dev/null || true)
        if [[ $p =~ ^[0-9]+$ ]] && _slurm_running "$p"; then
            echo "$p"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

slurm_up() {
    local d m p cport dport
    local user
    user=$(id -un 2>/dev/null) || skip "uid $(id -u) has no name: Slurm needs one for SlurmUser"
    for p in munged slurmctld slurmd sbatch srun scontrol squeue; do
        command -v "$p" >/dev/null || skip "$p not installed (Debian: slurm-wlm munge; scripts/install-deps.sh)"
    done
    # the daemons' user's, as every directory above it but a sticky one
    # (munged checks that: not in the work directory, which is the test
    # user's when the daemons run as root)
    d=$(mktemp -d "${CKPTMPI_TEST_TMPDIR:-/tmp}/ckptmpi-slurm.XXXXXX")
    chmod 755 "$d"
    m=$d/munge
    mkdir -m 755 "$m" "$d/state" "$d/spool"
    SLURM_DIR=$d
    trap _slurm_on_exit EXIT
    dd if=/dev/urandom of="$m/munge.key" bs=1024 count=1 status=none
    chmod 400 "$m/munge.key"
    munged --key-file="$m/munge.key" --socket="$m/socket" --pid-file="$m/munged.pid" \
        --log-file="$m/munged.log" --seed-file="$m/munged.seed" >"$m/start.log" 2>&1 ||
        skip "munged does not start: $(snip "$m/start.log" 300) $(snip "$m/munged.log" 300)"
    p=$(_slurm_pidfile "$m/munged.pid" 10) || skip "munged did not start: $(snip "$m/munged.log" 300)"
    SLURM_PIDS+=("$p")
    show_on_failure "$d/slurmctld.log" "$d/slurmd.log"

    SLURM_NODE=$(hostname -s)
    cport=$(free_port) && dport=$(free_port) || skip "no free TCP port for Slurm"
    [ "$cport" != "$dport" ] || dport=$(free_port)
    : >"$d/plugstack.conf"
    # MinJobAge: a finished job stays 300 s, its state readable; KillWait: the
    # seconds between SIGTERM and SIGKILL at a time limit, scancel or
    # requeue: the time a checkpoint gets (up to 8 s seen on a loaded
    # machine); a requeued run may wait that long for the last one to end,
    # and must start 2 s before the next check (Slurm's default of 30 s
    # made it miss that check, 30 s more);
    # OverTimeLimit=0: no grace after the limit; the node runs up to 8
    # jobs' tasks on each CPU
    cat >"$d/slurm.conf" <<EOF
ClusterName=ckpttest
SlurmctldHost=$SLURM_NODE(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$cport
SlurmdPort=$dport
AuthType=auth/munge
AuthInfo=socket=$m/socket
CredType=cred/munge
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
PlugStackConfig=$d/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
KillWait=${SLURM_KILLWAIT:-15}
OverTimeLimit=0
InactiveLimit=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$SLURM_NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=$SLURM_NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
    chmod 644 "$d/slurm.conf"
    export SLURM_CONF=$d/slurm.conf
    slurmctld >"$d/slurmctld.start" 2>&1 || skip "slurmctld does not start: $(snip "$d/slurmctld.start" 300) $(snip "$d/slurmctld.log" 300)"
    p=$(_slurm_pidfile "$d/slurmctld.pid" 20) || skip "slurmctld did not start: $(tail -n 5 "$d/slurmctld.log" | tr '\n' ' ')"
    SLURM_PIDS+=("$p")
    slurmd >"$d/slurmd.start" 2>&1 || skip "slurmd does not start: $(snip "$d/slurmd.start" 300) $(snip "$d/slurmd.log" 300)"
    p=$(_slurm_pidfile "$d/slurmd.pid" 20) || skip "slurmd did not start: $(tail -n 5 "$d/slurmd.log" | tr '\n' ' ')"
    SLURM_PIDS+=("$p")
    local deadline=$((SECONDS + 30))
    until sinfo -h -n "$SLURM_NODE" -o %t 2>/dev/null | grep -qx idle; do
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "the Slurm node is not idle 30 s after slurmd started: $(sinfo -h -o '%t %E' 2>&1 | head -c 200)"
        sleep 0.2
    done
    log "Slurm up: slurmctld on port $cport, slurmd on $dport, node $SLURM_NODE ($(nproc) CPUs), KillWait $(sed -n 's/^KillWait=//p' "$d/slurm.conf") s"
}

# slurm_submit CWD OUT [VAR=VALUE...] [--SBATCH-OPTION=VALUE...] SCRIPT [ARGS...]:
# sbatch SCRIPT as the test user from CWD, with the variables (and
# SLURM_ENV's) in the job's environment (sbatch's default --export=ALL),
# the job's stdout in OUT (appended to), stderr in OUT.err. Sets JOBID.
slurm_submit() {
    local cwd=$1 out=$2 envs=() opts=() r
    shift 2
    while [[ ${1:-} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do envs+=("$1"); shift; done
    while [[ ${1:-} == -* ]]; do opts+=("$1"); shift; done
    show_on_failure "$out.err"
    r=$(cd "$cwd" && "${AS_USER[@]}" PATH="$BUILD/bin:$PATH" "${SLURM_ENV[@]}" "${envs[@]}" \
        sbatch --parsable -o "$out" -e "$out.err" "${opts[@]}" "$@" 2>"$WORK/sbatch.err") ||
        fail "sbatch ${opts[*]} $* failed: $(snip "$WORK/sbatch.err")"
    JOBID=${r%%;*}
    log "${envs[*]:+${envs[*]} }sbatch ${opts[*]} ${1:+${1##*/}} ${*:2}: job $JOBID"
}

# slurm_state JOBID: the job's state (empty once it left the queue).
slurm_state() {
    squeue -h -j "$1" -o %T 2>/dev/null || true
}

# slurm_wait_state JOBID T STATE...: until the job is in one of STATES.
slurm_wait_state() {
    local id=$1 t=$2 deadline s
    shift 2
    deadline=$((SECONDS + t))
    while :; do
        s=$(slurm_state "$id")
        for w in "$@"; do [ "$s" != "$w" ] || return 0; done
        [ "$SECONDS" -lt "$deadline" ] || fail "job $id is '${s:-gone}' after ${t}s, expected $*"
        sleep 0.1
    done
}

# slurm_wait_done JOBID T: until the job has ended (left the queue, or
# COMPLETED/FAILED/TIMEOUT/CANCELLED); sets JOB_STATE to what scontrol
# says of it last.
slurm_wait_done() {
    local id=$1 t=$2 deadline s
    deadline=$((SECONDS + t))
    while :; do
        s=$(scontrol -o show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true)
        case $s in
            "" | COMPLETED | FAILED | TIMEOUT | CANCELLED | NODE_FAIL | OUT_OF_MEMORY) break ;;
        esac
        [ "$SECONDS" -lt "$deadline" ] || fail "job $id still '$s' after ${t}s"
        sleep 0.1
    done
    JOB_STATE=$s
}
