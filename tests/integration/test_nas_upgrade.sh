#!/usr/bin/env bash
# Store format 3 to 6 (issue 10, the digest; 6: counts with sizes): a store written as versions
# before the chunk-list digest wrote it (ckpt-nas --test-format3, ckptctl
# --test-format3: records named by a plain SHA-256 only) is upgraded when the
# NAS opens it: each record gets the digest of its chunk list, keeps its
# sha256, reads back byte for byte and verifies; new stores go on beside.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
nctl() { "$CTL_BIN" --nas "$NAS_URL" "$@"; }

start_nas nas "$NAS_PORT" --test-format3 || { echo "nas did not start"; exit 1; }
head -c 3000000 /dev/urandom >"$T_DIR/old.in"
{ head -c 200000 /dev/urandom; head -c 300000 /dev/zero; head -c 5000 /dev/urandom; } >"$T_DIR/holes.in"
check "an older writer's put into a format-3 store" \
	sh -c "$CTL_BIN --nas $NAS_URL --test-format3 --json put n/old -i $T_DIR/old.in >$T_DIR/old.json"
check "and one with holes" \
	sh -c "$CTL_BIN --nas $NAS_URL --test-format3 --json put n/holes -i $T_DIR/holes.in >/dev/null"
nctl put n/new -i "$T_DIR/old.in" >"$T_DIR/refused.out" 2>&1
check "a format-3 store refuses a digest-only store (it records plain SHA-256s only)" [ $? -ne 0 ]
nctl --json ls n/old >"$T_DIR/ls3.json"
want=$(sha256sum "$T_DIR/old.in" | cut -d' ' -f1)
check "format 3: the record has the plain SHA-256 and no digest" \
	jq -e --arg h "$want" '.[0].sha256 == $h and .[0].digest == null' "$T_DIR/ls3.json"
stop nas
mv "$T_DIR/nas.log" "$T_DIR/nas-format3.log"

start_nas nas "$NAS_PORT"
check "the NAS starts on the old store" [ $? -eq 0 ]
check "and says it upgraded it (2 records)" \
	grep -q "store format 3 upgraded to 6: 2 records given their digest" "$T_DIR/nas.log"
nctl --json ls >"$T_DIR/ls4.json"
for name in old holes; do
	h=$(sha256sum "$T_DIR/$name.in" | cut -d' ' -f1)
	d=$(nctl digest "$T_DIR/$name.in" | cut -d' ' -f1)
	check "upgraded $name: its digest is the file's (ckptctl digest), its sha256 kept" \
		jq -e --arg n "$name" --arg h "$h" --arg d "$d" \
		'map(select(.component == $n))[0] | .sha256 == $h and .digest == $d' "$T_DIR/ls4.json"
	nctl get "n/$name" -o "$T_DIR/$name.out"
	check "upgraded $name reads back byte for byte" cmp -s "$T_DIR/$name.in" "$T_DIR/$name.out"
	check "verify: the file is upgraded n/$name (by its plain SHA-256)" \
		nctl verify "$T_DIR/$name.in" "n/$name"
	check "get --json of upgraded $name: the plain sha256 is the record's" \
		[ "$(nctl --json get "n/$name" -o "$T_DIR/$name.out" | jq -r .sha256)" = "$h" ]
done
nctl verify "$T_DIR/holes.in" n/old 2>/dev/null
check "verify: another file is not upgraded n/old (exit 1)" [ $? -eq 1 ]
check "a new store beside the upgraded ones" sh -c "$CTL_BIN --nas $NAS_URL put n/old -i $T_DIR/holes.in >/dev/null"
check "reads back" sh -c "$CTL_BIN --nas $NAS_URL get n/old@2 -o $T_DIR/new.out && cmp -s $T_DIR/holes.in $T_DIR/new.out"
check "the new record has a digest and no sha256" \
	sh -c "$CTL_BIN --nas $NAS_URL --json ls n/old | jq -e 'map(select(.seq == 2))[0] | .sha256 == null and (.digest | startswith(\"ckpt-chunks-sha256:\"))' >/dev/null"
# The old store's counts have the older form (a count only): a put of the
# same bytes takes its sizes from the chunks and rewrites them with them.
check "a put of the old bytes again, from the old store's chunks" \
	sh -c "$CTL_BIN --nas $NAS_URL --json put n/old -i $T_DIR/old.in | jq -e '.sent_chunks == 0' >/dev/null"
check "reads back" sh -c "$CTL_BIN --nas $NAS_URL get n/old@3 -o $T_DIR/new3.out && cmp -s $T_DIR/old.in $T_DIR/new3.out"
check "the checks find the upgraded store clean" \
	sh -c "$CTL_BIN --nas $NAS_URL scrub >$T_DIR/scrub.out"
stop nas
mv "$T_DIR/nas.log" "$T_DIR/nas-format6.log"
check "ckpt-nas --check finds it clean offline" \
	sh -c "$NAS_BIN --check --data $T_DIR/nas-data >$T_DIR/check.out 2>&1"
# The test flag keeps format 3 only: it refuses the upgraded store.
"$NAS_BIN" --listen "tcp://127.0.0.1:$NAS_PORT" --data "$T_DIR/nas-data" --test-format3 \
	>"$T_DIR/nas-refuse.log" 2>&1
check "ckpt-nas --test-format3 refuses a format-6 store" [ $? -ne 0 ]
finish
