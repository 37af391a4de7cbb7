#!/usr/bin/env bash
# verbs_devinfo: Debian's ibv_devices and ibv_devinfo -v, unmodified, see
# ckptmpi's software device (MODE, verbs_lib.sh): listed with a node GUID;
# port 1 ACTIVE with a LID (or, on an Ethernet link layer, a GID), a GID
# at index 0, an active MTU, and limits that are not zero.
source "$(dirname "${BASH_SOURCE[0]}")/verbs_lib.sh"
verbs_init
DEV=${VERBS_DEV:-ckptmpi_sw0}

verbs_run devices -- ibv_devices
[ "$RUN_RC" -eq 0 ] || fail "ibv_devices exited $RUN_RC: $(snip "$RUN_OUT.err")"
grep -Eq "^[[:space:]]+$DEV[[:space:]]+[0-9a-f]{16}[[:space:]]*$" "$RUN_OUT" ||
    fail "ibv_devices does not list $DEV with a node GUID: $(snip "$RUN_OUT")"
log "ibv_devices: $(grep "$DEV" "$RUN_OUT" | tr -s ' \t' ' ')"

verbs_run devinfo -- ibv_devinfo -v -d "$DEV"
out=$RUN_OUT
[ "$RUN_RC" -eq 0 ] || fail "ibv_devinfo -v exited $RUN_RC: $(snip "$out.err")"
field() { # NAME: the value of the first "NAME: value" line
    awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ +/, ""); print; exit }' "$out"
}
[ "$(field hca_id)" = "$DEV" ] || fail "hca_id is '$(field hca_id)', not $DEV"
grep -Eq '^[[:space:]]+port:[[:space:]]+1$' "$out" || fail "ibv_devinfo shows no port 1"
state=$(field state)
[[ $state == PORT_ACTIVE* ]] || fail "port 1 state is '$state', not PORT_ACTIVE"
ll=$(field link_layer)
lid=$(field port_lid)
if [ "$ll" = Ethernet ]; then
    log "link layer Ethernet: the GID addresses the port"
else
    [[ $lid =~ ^[0-9]+$ ]] && [ "$lid" -gt 0 ] || fail "port_lid is '$lid' on link layer '$ll' (a LID is needed)"
fi
mtu=$(field active_mtu)
[[ $mtu =~ ^(256|512|1024|2048|4096)\  ]] || fail "active_mtu is '$mtu'"
gid=$(grep -E 'GID\[ *0\]:' "$out" | head -n1 | awk '{ print $NF }')
[[ $gid =~ ^[0-9a-f:]+$ ]] && [ "$(echo "$gid" | tr -d ':0')" != "" ] ||
    fail "no GID at index 0 (line: '$(grep -m1 'GID\[' "$out" || true)')"
for lim in max_qp max_cq max_mr max_pd max_qp_wr max_cqe max_sge; do
    v=$(field "$lim")
    [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || fail "$lim is '$v'"
done
log "ibv_devinfo: $state, link layer ${ll:-?}, LID $lid, MTU $mtu, GID[0] $gid, max_qp $(field max_qp)"
