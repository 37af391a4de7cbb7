#!/usr/bin/env bash
# job_netns: two members in two network namespaces standing in for hosts
# (10.91.0.1 and 10.91.0.2, a veth pair), talking over TCP, checkpointed,
# killed, and restarted one member at a time (`ckptmpi restart DIR
# --member K`) in two other namespaces with other addresses (10.92.0.x):
# the connection is made again between the new addresses, the bytes in
# flight come first, and the outputs are those of an uninterrupted run.
# Needs root (the namespaces; the members still run as uid 65534).
source "$(dirname "${BASH_SOURCE[0]}")/job_lib.sh"
e2e_init
need_prog sock_pair
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "ip (iproute2) is needed"

tag=$$
NS=(cka1$tag ckb1$tag cka2$tag ckb2$tag)
netns_cleanup() {
    local n
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap '_rc=$?; netns_cleanup; (exit $_rc); _cleanup' EXIT
# pair NS_A NS_B NET: a veth pair, NET.1 in A, NET.2 in B
pair() {
    ip netns add "$1" && ip netns add "$2" || skip "cannot create network namespaces here"
    ip link add "v$1" type veth peer name "v$2" || skip "cannot create veth pairs here"
    ip link set "v$1" netns "$1"
    ip link set "v$2" netns "$2"
    ip -n "$1" addr add "$3.1/24" dev "v$1"
    ip -n "$2" addr add "$3.2/24" dev "v$2"
    ip -n "$1" link set "v$1" up
    ip -n "$2" link set "v$2" up
    ip -n "$1" link set lo up
    ip -n "$2" link set lo up
}
pair "${NS[0]}" "${NS[1]}" 10.91.0
pair "${NS[2]}" "${NS[3]}" 10.92.0

NSTEPS=60
dir=$WORK/ckpt
mkdirs "$WORK/refs" "$WORK/refc" "$WORK/s" "$WORK/c" "$dir"
plain_bg "$WORK/refs" "$WORK/ref0.out" -- "$PROGS/sock_pair" server tcp "$WORK/ref.port" $NSTEPS 40
ref0=$REF_PID
plain_bg "$WORK/refc" "$WORK/ref1.out" -- "$PROGS/sock_pair" client tcp "$WORK/ref.port" $NSTEPS 40
ref1=$REF_PID

# in_ns NS CWD OUT CMD...: a ckptmpi command as the test user inside NS
in_ns() {
    local ns=$1 cwd=$2 out=$3
    shift 3
    log "[netns $ns] $*"
    (cd "$cwd" && exec ip netns exec "$ns" "${AS_USER[@]}" "$@") >"$out" 2>"$out.err" </dev/null &
    JOB_PID=$!
    _PIDS+=("$JOB_PID")
    show_on_failure "$out.err"
}
in_ns "${NS[0]}" "$WORK/s" "$WORK/run0.out" env SOCK_PAIR_BIND=10.91.0.1 \
    "$CKPTMPI" run --dir "$dir" --job-size 2 --member 0 -- "$PROGS/sock_pair" server tcp "$WORK/run.port" $NSTEPS 40
m0=$JOB_PID
in_ns "${NS[1]}" "$WORK/c" "$WORK/run1.out" env SOCK_PAIR_HOST=10.91.0.1 \
    "$CKPTMPI" run --dir "$dir" --job-size 2 --member 1 -- "$PROGS/sock_pair" client tcp "$WORK/run.port" $NSTEPS 40
m1=$JOB_PID
wait_step "$WORK/run0.out" 15 "$m0"
wait_step "$WORK/run1.out" 15 "$m1"
b0=$(last_step_of "$WORK/run0.out"); b1=$(last_step_of "$WORK/run1.out")
ckpt_joined "$dir"
a0=$(last_step_of "$WORK/run0.out"); a1=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" $((a1 + 3)) "$m1"
kill_members "$m0" "$m1"

# the same members in the other namespaces: the old addresses are gone
in_ns "${NS[2]}" "$WORK" "$WORK/r0.log" "$CKPTMPI" restart "$dir" --member 0
r0=$JOB_PID
in_ns "${NS[3]}" "$WORK" "$WORK/r1.log" "$CKPTMPI" restart "$dir" --member 1
r1=$JOB_PID
wait_exit "$r0" "member 0 restarted in ${NS[2]}"
wait_exit "$r1" "member 1 restarted in ${NS[3]}"
check_resume "$WORK/r0.log" $((b0 + 1)) $((a0 + 1))
check_resume "$WORK/r1.log" $((b1 + 1)) $((a1 + 1))
merge_outputs "$WORK/run0.out" "$WORK/r0.log" "$WORK/merged0.out"
merge_outputs "$WORK/run1.out" "$WORK/r1.log" "$WORK/merged1.out"
wait_exit "$ref0" "reference server"
wait_exit "$ref1" "reference client"
same_file "$WORK/ref0.out" "$WORK/merged0.out" "server's stdout (run in 10.91.0.1, restart in 10.92.0.1)"
same_file "$WORK/ref1.out" "$WORK/merged1.out" "client's stdout (run in 10.91.0.2, restart in 10.92.0.2)"
