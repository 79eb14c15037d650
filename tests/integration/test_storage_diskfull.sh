#!/usr/bin/env bash
# A full disk under the NAS (issue 14, item 12), not --map-max: the data
# folder on an 8 MiB tmpfs. Puts until one is refused: the refusal is
# RESOURCE_EXHAUSTED saying the disk holding the data is full (not INTERNAL:
# Input/output error); the NAS keeps serving reads, scrub is clean, and
# --check is clean after it stops.
. "$(dirname "$0")/lib.sh"

MNT=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-diskfull.XXXXXX")
if ! mount -t tmpfs -o size=8m tmpfs "$MNT" 2>"$T_DIR/mount.err"; then
	echo "# SKIP: cannot mount a tmpfs here ($(cat "$T_DIR/mount.err")): the test needs root"
	rmdir "$MNT"
	exit 77
fi
# Processes first (t_cleanup), then the file system, whatever happened.
trap 'rc=$?; t_cleanup; umount "$MNT" || umount -l "$MNT"; rmdir "$MNT"; exit $rc' EXIT

NAS_PORT=$(free_port)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
start nas "$NAS_BIN" --listen "$NAS_URL" --data "$MNT/data" --keep 1000000 --map-size 1M \
	--map-max 1G
wait_for 10 log_has nas "listening" || { echo "nas did not start"; exit 1; }
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }

head -c 300000 /dev/urandom >"$T_DIR/first"
check "a first checkpoint fits" sh -c "$CTL_BIN --nas $NAS_URL put n/first -i $T_DIR/first >/dev/null"
refused=0
for i in $(seq 1 40); do
	head -c 1000000 /dev/urandom >"$T_DIR/fill"
	if ! nctl put "n/fill" -i "$T_DIR/fill" >/dev/null 2>"$T_DIR/err.txt"; then
		refused=$i
		break
	fi
done
echo "# refused at put $refused: $(cat "$T_DIR/err.txt")"
check "a put is refused before 40 MB went into 8 MiB" [ "$refused" -gt 0 ]
check "the error is RESOURCE_EXHAUSTED, one line" sh -c \
	"[ \$(wc -l <$T_DIR/err.txt) -eq 1 ] && grep -q RESOURCE_EXHAUSTED $T_DIR/err.txt"
check "it says the disk holding the data is full" grep -q "disk .*full" "$T_DIR/err.txt"
check "not an Input/output error" sh -c "! grep -q 'Input/output' $T_DIR/err.txt"
check "the NAS logged it" log_has nas "disk .*full"
nctl get n/first -o "$T_DIR/first.out"
check "the NAS still serves the first checkpoint" cmp -s "$T_DIR/first" "$T_DIR/first.out"
check "and lists what it holds" sh -c "$CTL_BIN --nas $NAS_URL --json ls n/fill | jq -e 'length == $((refused - 1))' >/dev/null"
check "scrub is clean" sh -c "$CTL_BIN --nas $NAS_URL scrub >$T_DIR/scrub.txt"
# LMDB reuses the pages a commit freed only once no reader and no later
# commit needs them: a put right after the delete may still meet a full disk.
check "deleting frees room" sh -c "$CTL_BIN --nas $NAS_URL rm n/fill >/dev/null"
small_put() { head -c 1000 /dev/urandom | "$CTL_BIN" --nas "$NAS_URL" put n/small >/dev/null 2>&1; }
check "a small put goes through afterwards" wait_for 20 small_put
stop nas
check "--check is clean after it stopped" sh -c "$NAS_BIN --check --data $MNT/data >$T_DIR/check.txt 2>&1"
finish
