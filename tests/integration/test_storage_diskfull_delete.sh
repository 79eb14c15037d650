#!/usr/bin/env bash
# ckptctl delete (the manager's DeleteComponent: the NAS's DeleteSpec, then
# the component stopped) on a full disk, where ckptctl rm works: the NAS on
# an 8 MiB tmpfs, a demo spec applied and running on n1, then the disk taken
# to 0 bytes free (1 MB puts until one is refused, a file for the rest,
# small puts until one is refused). The spec's delete must go through like
# a checkpoint's (it frees room; the disk reserve is kept for deletes):
# before, it was refused up front like a store, "the NAS could not delete
# its spec: the disk holding the NAS data ... is full", and the component
# went on running. Likewise ckptctl unpin, whose retention deletes the
# checkpoint (it was refused as a store). --check is clean after them.
. "$(dirname "$0")/lib.sh"

t_tmpfs 8m

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port); N1_PORT=$(free_port)
NAS_URL="$T_TCP://127.0.0.1:$NAS_PORT"
MGR_URL="$T_TCP://127.0.0.1:$MGR_PORT"
# shellcheck disable=SC2046 # tls_args: words on purpose
start nas "$NAS_BIN" --listen "$NAS_URL" --data "$MNT/data" --keep 1000000 --map-size 1M \
	--map-max 1G --disk-reserve 64K $(tls_args nas)
wait_for 10 log_has nas "listening" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "$NAS_URL" --heartbeat-ms 100 --down-after 1s ||
	{ echo "manager did not start"; exit 1; }
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }
avail() { stat -f -c '%a' "$MNT"; }
printf '[agent]\nnode = n1\nmanager = %s\nlisten = %s://127.0.0.1:%s\n' "$MGR_URL" "$T_TCP" \
	"$N1_PORT" >"$T_DIR/n1.ini"
# shellcheck disable=SC2046
start n1 "$AGENT_BIN" --config "$T_DIR/n1.ini" --interval-ms 200 $(tls_node n1)
check "n1 attaches" wait_for 10 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\" and .state == \"up\")' >/dev/null"

printf '[component d1]\ndriver = demo\nbytes = 4096\n' >"$T_DIR/d1.ini"
check "a demo spec is applied" sh -c "$CTL_BIN --manager $MGR_URL apply -f $T_DIR/d1.ini >/dev/null"
check "and runs on n1" wait_for 10 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\") | .components[] | select(.name == \"d1\")' >/dev/null"

# n/p@1 pinned, and kept alone: its unpin later deletes it (retention).
for i in 1 2; do head -c 8000 /dev/urandom | nctl put n/p >/dev/null; done
check "n/p@1 is pinned" sh -c "$CTL_BIN --nas $NAS_URL pin n/p@1 >/dev/null"
check "with keep p 1 the pinned n/p@1 stays" sh -c \
	"$CTL_BIN --nas $NAS_URL keep p 1 >/dev/null && [ \$($CTL_BIN --nas $NAS_URL --json ls n/p | jq length) -eq 2 ]"

refused=0
for i in $(seq 1 40); do
	head -c 1000000 /dev/urandom >"$T_DIR/fill"
	if ! nctl put n/fill -i "$T_DIR/fill" >/dev/null 2>"$T_DIR/err.txt"; then
		refused=$i
		break
	fi
done
cat /dev/zero >"$MNT/filler" 2>/dev/null
# small_until_refused: 1000-byte stores until one is refused (LMDB's free
# pages used up: a write needing 64 KiB is refused up front, whatever the
# last delete freed); $small: its number.
small_until_refused() {
	# 16 KB first: the blocks taken ahead past the reserve (at least 1 MiB)
	# hold some 250 puts of 1000 bytes.
	put_until_refused "$NAS_URL" "n/mid{i}${1-}" 16000 >/dev/null
	small=$(put_until_refused "$NAS_URL" "n/small{i}${1-}" 1000)
}
small_until_refused
echo "# 1 MB put $refused refused; small put $small refused: $(cat "$T_DIR/err.txt")"
check "ckptctl specs lists d1 before" sh -c \
	"[ \$($CTL_BIN --nas $NAS_URL --json specs | jq length) -eq 1 ]"
check "the disk is full: a small store is refused" sh -c \
	"[ $small -gt 0 ] && grep -q 'RESOURCE_EXHAUSTED.*disk .*full' $T_DIR/err.txt"
check "at 0 bytes free" [ "$(avail)" -eq 0 ]
echo "# the reserve now: $(nctl --json stat | jq -c '{disk_reserve, disk_reserve_short}')"

nctl unpin n/p@1 >"$T_DIR/unpin.out" 2>&1
rc=$?
echo "# unpin n/p@1: exit $rc: $(cat "$T_DIR/unpin.out")"
check "ckptctl unpin n/p@1 succeeds on the full disk (a delete: retention)" [ "$rc" -eq 0 ]
check "... and retention deleted n/p@1" sh -c \
	"[ \$($CTL_BIN --nas $NAS_URL --json ls n/p | jq '[.[] | select(.seq == 1)] | length') -eq 0 ]"
small_until_refused b
echo "# small put $small refused: $(cat "$T_DIR/err.txt")"
check "the free pages used up again: a small store is refused" sh -c \
	"[ $small -gt 0 ] && grep -q 'RESOURCE_EXHAUSTED.*disk .*full' $T_DIR/err.txt"
"$CTL_BIN" --manager "$MGR_URL" delete d1 >"$T_DIR/delete.out" 2>"$T_DIR/delete.err"
rc=$?
echo "# delete d1: exit $rc: $(cat "$T_DIR/delete.out" "$T_DIR/delete.err")"
check "ckptctl delete d1 succeeds on the full disk" [ "$rc" -eq 0 ]
check "... its spec deleted" grep -q "spec deleted" "$T_DIR/delete.out"
check "ckptctl specs lists none after" sh -c \
	"[ \$($CTL_BIN --nas $NAS_URL --json specs | jq length) -eq 0 ]"
check "n1 no longer runs d1" wait_for 10 sh -c \
	"$CTL_BIN --manager $MGR_URL --json nodes | jq -e '.[] | select(.id == \"n1\") | [.components[] | select(.name == \"d1\")] | length == 0' >/dev/null"
check "still 0 bytes free" [ "$(avail)" -eq 0 ]
# A third delete in a row at 0 bytes free, six checkpoints: it failed in 2
# of 8 runs before the reserve covered two deletes and a delete short of
# room settled (LMDB reuses a commit's freed pages two commits later).
nctl rm n/fill >"$T_DIR/rm.out" 2>&1
rc=$?
echo "# then rm n/fill: exit $rc: $(cat "$T_DIR/rm.out")"
check "then ckptctl rm n/fill succeeds on the full disk too" [ "$rc" -eq 0 ]
stop n1
stop manager
stop nas
check "--check is clean at the end" sh -c "$NAS_BIN --check --data $MNT/data >$T_DIR/check.txt 2>&1"
finish
