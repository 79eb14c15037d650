#!/usr/bin/env bash
# Deletes one after another on a full disk, until the store is empty: the
# NAS on an 8 MiB tmpfs taken to 0 bytes free (1 MB puts until one is
# refused, a file for the rest, 16 KB and 1000-byte puts until refused).
# Then, with nothing ever given back by the disk: two small deletes, two
# large ones back to back (n/a, n/b: stored in turn, their chunks sit in
# every leaf of the chunk and reference trees, so each delete copies most
# of the index; the first leaves the reserve short), the other 18 small
# checkpoints of s1-s4 one by one, then the components left, a 1000-byte put tried
# after each (a put that commits lets LMDB reuse what the delete before it
# freed, so the deletes before run without). Every delete must succeed,
# the disk stays at 0 bytes free, the store ends empty, a 1 MB put goes
# through and --check is clean. A delete writes copies of the tree pages it
# touches past the end of the data file, and LMDB reuses the pages a commit
# freed only two commits later: with a reserve of one delete's bound the
# second large delete failed, "the disk ... is full" (5 of 5 runs; in 2 the
# first too and every large delete after, none able to commit).
. "$(dirname "$0")/lib.sh"

t_tmpfs 8m

NAS_PORT=$(free_port)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
start nas "$NAS_BIN" --listen "$NAS_URL" --data "$MNT/data" --keep 1000000 --map-size 1M \
	--map-max 1G --disk-reserve 64K
wait_for 10 log_has nas "listening" || { echo "nas did not start"; exit 1; }
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }
avail() { stat -f -c '%a' "$MNT"; }
reserve() { nctl --json stat | jq -c '{disk_reserve, disk_reserve_short}'; }

# Eight components of small checkpoints, then the disk filled with 1 MB
# checkpoints, one of n/a for two of n/b (about 64 chunks of 16 KB each).
for c in s1 s2 s3 s4 s5 s6 s7 s8; do
	for i in 1 2 3 4 5; do head -c 1000 /dev/urandom | nctl put "n/$c" >/dev/null; done
done
fills=0
for i in $(seq 1 40); do
	head -c 1000000 /dev/urandom >"$T_DIR/fill"
	nctl put "n/$([ $((i % 3)) -eq 1 ] && echo a || echo b)" -i "$T_DIR/fill" >/dev/null 2>&1 || break
	fills=$i
done
check "1 MB checkpoints of n/a and n/b are stored" [ "$fills" -ge 4 ]
cat /dev/zero >"$MNT/filler" 2>/dev/null
put_until_refused "$NAS_URL" "n/mid{i}" 16000 >/dev/null
small=$(put_until_refused "$NAS_URL" "n/small{i}" 1000)
echo "# $fills 1 MB puts, small put $small refused; the reserve: $(reserve)"
check "the disk is full: a small store is refused" sh -c \
	"[ $small -gt 0 ] && grep -q 'RESOURCE_EXHAUSTED.*disk .*full' $T_DIR/err.txt"
check "at 0 bytes free" [ "$(avail)" -eq 0 ]

failed=0 deletes=0 puts=0
# del REF [put]: one delete; with put, then a 1000-byte put tried.
del() {
	deletes=$((deletes + 1))
	if ! nctl rm "$1" >"$T_DIR/rm.out" 2>&1; then
		failed=$((failed + 1))
		echo "# rm $1 (delete $deletes) failed, the reserve $(reserve): $(cat "$T_DIR/rm.out")"
	fi
	[ -n "${2-}" ] || return 0
	head -c 1000 /dev/urandom | nctl put n/between >/dev/null 2>&1 && puts=$((puts + 1))
}
del n/s1@1
del n/s2@2
del n/a
echo "# after rm n/a: the reserve $(reserve)"
check "a large delete leaves the reserve short (the disk gives nothing back)" sh -c \
	"$CTL_BIN --nas $NAS_URL --json stat | jq -e '.disk_reserve_short' >/dev/null"
del n/b
for c in s1 s2 s3 s4; do
	for i in 1 2 3 4 5; do nctl --json ls "n/$c" | jq -e ".[] | select(.seq == $i)" >/dev/null &&
		del "n/$c@$i"; done
done
for c in $(nctl --json ls n | jq -r '.[].component' | sort -u); do
	[ "$c" = between ] || del "n/$c" put
done
! nctl --json ls n/between | jq -e 'length > 0' >/dev/null || del n/between
echo "# $deletes deletes, $failed failed; $puts puts between them went through; the reserve: $(reserve)"
check "every delete on the full disk succeeded" [ "$failed" -eq 0 ]
check "the store is empty" sh -c "[ \$($CTL_BIN --nas $NAS_URL --json ls | jq length) -eq 0 ]"
check "still 0 bytes free" [ "$(avail)" -eq 0 ]
head -c 1000000 /dev/urandom >"$T_DIR/big"
check "a 1 MB put goes through on the emptied store" \
	sh -c "$CTL_BIN --nas $NAS_URL put n/big -i $T_DIR/big >/dev/null"
stop nas
check "--check is clean at the end" sh -c "$NAS_BIN --check --data $MNT/data >$T_DIR/check.txt 2>&1"
finish
