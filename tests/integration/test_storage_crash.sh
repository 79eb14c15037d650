#!/usr/bin/env bash
# Crash consistency: three clients store checkpoints in a loop (sharing most
# of their chunks, so the same chunk is often uploaded by two at once), and
# two store small ones back to back (grouped commits), while
# the NAS is killed with SIGKILL at random moments, 20 times. After each
# restart every checkpoint whose store was acknowledged reads back byte-exact,
# every listed checkpoint reads back whole (none half-written), and
# `ckpt-nas --check` (run while the NAS is down) finds no corruption.
. "$(dirname "$0")/lib.sh"

KILLS=${CKPT_CRASH_KILLS:-20}
NAS_PORT=$(free_port)
NAS_URL="tcp://127.0.0.1:$NAS_PORT"
NAS_DATA="$T_DIR/nas-data"
start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }

head -c 400000 /dev/urandom >"$T_DIR/base"
head -c 400000 /dev/zero >>"$T_DIR/base"
client() { # ID: stores until $T_DIR/stop exists; appends "REF SHA256" of every acknowledged store
	local id=$1 n=0 out
	while [ ! -e "$T_DIR/stop" ]; do
		# paused while the acknowledged ones are read back: run time stays bounded
		while [ -e "$T_DIR/pause" ] && [ ! -e "$T_DIR/stop" ]; do sleep 0.05; done
		n=$((n + 1))
		f="$T_DIR/in.$id"
		{ cat "$T_DIR/base"; head -c $(( (RANDOM % 64 + 1) * 1024 )) /dev/urandom; } >"$f"
		# dirty a page of the shared part, so each checkpoint has a few new chunks
		printf 'client %s put %s' "$id" "$n" | dd of="$f" bs=1 seek=$(( RANDOM * 16 )) conv=notrunc 2>/dev/null
		if out=$("$CTL_BIN" --nas "$NAS_URL" --timeout 3s --json put "n/c$id" -i "$f" 2>/dev/null); then
			echo "$(jq -r '"\(.node)/\(.component)@\(.seq) \(.digest)"' <<<"$out")" >>"$T_DIR/acked.$id"
		fi
		sleep 0.1 # a few stores a second each: the test's run time stays bounded
	done
}
# Small checkpoints (4 KiB: one Store, chunks inline), two at once, back to back: their
# commits share groups, whose replies the group's leader sends once the group is durable.
small_client() { # ID: as client, with a shorter pause between stores
	local id=$1 out f="$T_DIR/in.$1"
	while [ ! -e "$T_DIR/stop" ]; do
		while [ -e "$T_DIR/pause" ] && [ ! -e "$T_DIR/stop" ]; do sleep 0.05; done
		head -c 4096 /dev/urandom >"$f"
		if out=$("$CTL_BIN" --nas "$NAS_URL" --timeout 3s --json put "n/s$id" -i "$f" 2>/dev/null); then
			echo "$(jq -r '"\(.node)/\(.component)@\(.seq) \(.digest)"' <<<"$out")" >>"$T_DIR/acked.$id"
		fi
		sleep 0.03 # each acknowledged store is read back: bounds the test's run time
	done
}
for id in 1 2 3; do client "$id" & T_PIDS+=("$!"); done
for id in 4 5; do small_client "$id" & T_PIDS+=("$!"); done

checked=0 bad=0 nlisted=0 badlist=0
verify_new() { # reads back acknowledged checkpoints not yet checked
	local all
	all=$(cat "$T_DIR"/acked.* 2>/dev/null | sort -u)
	while read -r ref sha; do
		[ -n "$ref" ] || continue
		grep -qx "$ref" "$T_DIR/verified" 2>/dev/null && continue
		# get checks every chunk and the record's digest; ckptctl digest, what came back
		got=$("$CTL_BIN" --nas "$NAS_URL" get "$ref" -o "$T_DIR/readback" 2>/dev/null &&
			"$CTL_BIN" digest "$T_DIR/readback" | cut -d' ' -f1)
		if [ "$got" = "$sha" ]; then
			echo "$ref" >>"$T_DIR/verified"; checked=$((checked + 1))
		else
			echo "# acknowledged $ref does not read back"; bad=$((bad + 1))
		fi
	done <<<"$all"
}
verify_listed() { # every listed checkpoint reads back whole (get verifies every digest)
	local ref
	for ref in $("$CTL_BIN" --nas "$NAS_URL" --json ls | jq -r '.[] | "\(.node)/\(.component)@\(.seq)"'); do
		nlisted=$((nlisted + 1))
		"$CTL_BIN" --nas "$NAS_URL" get "$ref" >/dev/null 2>&1 ||
			{ echo "# listed $ref does not read back"; badlist=$((badlist + 1)); }
	done
}

check_ok=0
for i in $(seq "$KILLS"); do
	sleep "0.$(( RANDOM % 5 + 1 ))"
	kill -KILL "$PID_nas"; wait "$PID_nas" 2>/dev/null
	"$NAS_BIN" --check --data "$NAS_DATA" >"$T_DIR/check.$i.txt" 2>&1 && check_ok=$((check_ok + 1))
	mv "$T_DIR/nas.log" "$T_DIR/nas-$i.log"
	start_nas nas "$NAS_PORT" || { echo "# nas did not restart"; break; }
	touch "$T_DIR/pause"
	verify_new
	rm -f "$T_DIR/pause"
done
touch "$T_DIR/stop"
for pid in "${T_PIDS[@]}"; do [ "$pid" = "$PID_nas" ] || wait "$pid" 2>/dev/null; done
verify_new
verify_listed
echo "# $KILLS kills; $checked acknowledged checkpoints verified; $nlisted listed at the end"
check "the clients stored checkpoints between the kills" [ "$checked" -ge "$KILLS" ]
check "every acknowledged checkpoint reads back byte-exact" [ "$bad" -eq 0 ]
check "every listed checkpoint reads back whole" [ "$badlist" -eq 0 ]
check "--check was clean after each of the $KILLS kills" [ "$check_ok" -eq "$KILLS" ]

# The byte counts of a restart come from the sweep after open, in the
# background (after these kills: orphans to delete): once Stat stops saying
# counting they are exact, with stores made as soon as the NAS serves (during
# the sweep if it still runs; the unit tests interleave them deterministically),
# and a quiet restart counts the same.
final_counts() { # "chunk_bytes chunk_raw_bytes" once the sweep after open has counted
	local i out
	for i in $(seq 400); do
		if out=$("$CTL_BIN" --nas "$NAS_URL" --json stat 2>/dev/null) &&
			[ "$(jq -r .counting <<<"$out")" = false ]; then
			jq -r '"\(.chunk_bytes) \(.chunk_raw_bytes)"' <<<"$out"
			return 0
		fi
		sleep 0.05
	done
	return 1
}
mv "$T_DIR/nas.log" "$T_DIR/nas-quiet.log"
stop nas
start_nas nas "$NAS_PORT" || echo "# nas did not restart"
qp=()
for id in 1 2 3; do
	"$CTL_BIN" --nas "$NAS_URL" --timeout 10s put "n/q$id" -i "$T_DIR/in.$id" >/dev/null & qp+=("$!")
done
qok=0
for pid in "${qp[@]}"; do wait "$pid" && qok=$((qok + 1)); done
c1=$(final_counts)
stop nas
mv "$T_DIR/nas.log" "$T_DIR/nas-busy.log"
start_nas nas "$NAS_PORT" || echo "# nas did not restart"
c2=$(final_counts)
echo "# counts with stores during the sweep: $c1; after a quiet restart: $c2"
check "three stores right after a restart succeeded" [ "$qok" -eq 3 ]
check "the counts made with stores during the sweep are a quiet restart's" \
	sh -c "[ -n '$c1' ] && [ '${c1%% *}' -gt 0 ] && [ '$c1' = '$c2' ]"
check "the sweep logged its end" grep -q "sweep after open done" "$T_DIR/nas-busy.log"
stop nas
check "--check is clean at the end" sh -c "$NAS_BIN --check --data $NAS_DATA >$T_DIR/check.end.txt"
finish
