#!/usr/bin/env bash
# The seed scenario on a local cluster, the embedded default: loopback, LMDB
# under a local folder. Installs what is missing, builds, then starts a NAS, a
# manager and two agents dummy_1 and dummy_2, each running one demo component.
# They attach and checkpoint; after 3 s each calls for its own migration and
# the two swap. The script then proves it: the digest of each restored state
# equals the digest of the stored checkpoint it came from.
#
#   bash deploy/local/run-demo.sh [--tls] [--keep-running]   run it (and leave it up)
#   bash deploy/local/run-demo.sh --stop                     stop a cluster left running
#
# --tls: every connection on tls+tcp:// with mutual authentication; the CA and
# one certificate per process (nas, manager, operator for ckptctl, node-dummy_1,
# node-dummy_2) are made by deploy/certs.sh in RUN/certs (the CA is kept and
# reused). Without it the demo speaks plain tcp:// on loopback, which every
# binary allows (README "Security").
#
# Settings (environment): CKPT_RUN_DIR (default ./run), CKPT_BASE_PORT (7400:
# NAS +10, manager +20, events +21, agents +31 and +32), CKPT_DEMO_BYTES (1M),
# CKPT_BUILD (a build folder whose binaries to use: no install, no build).
# Ctrl-C stops everything cleanly.
#
# One cluster per run folder: the script and every service it starts hold a
# lock on RUN/lock (flock), and RUN/cluster names their pids and addresses. A
# second run on the same folder is refused with what is running and how to
# stop it; a run whose ports are in use is refused before it deletes anything.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
me="deploy/local/run-demo.sh"
mode=run keep=0 tls=0
for arg in "$@"; do
	case "$arg" in
	--keep-running) keep=1 ;;
	--tls) tls=1 ;;
	--stop) mode=stop ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "$me: unknown argument '$arg'" >&2
	   echo "usage: bash $me [--tls] [--keep-running] | --stop" >&2; exit 2 ;;
	esac
done

RUN=${CKPT_RUN_DIR:-$top/run}
base=${CKPT_BASE_PORT:-7400}
bytes=${CKPT_DEMO_BYTES:-1M}
scheme=tcp
[ $tls -eq 1 ] && scheme=tls+tcp
NAS_URL="$scheme://127.0.0.1:$((base + 10))"
MGR_URL="$scheme://127.0.0.1:$((base + 20))"
EV_URL="$scheme://127.0.0.1:$((base + 21))"
B=${CKPT_BUILD:-$top/build}
CTL="$B/clients/ckptctl/ckptctl"

# The lock: fd 9 stays open in every service started below, so the lock is
# held as long as any of them runs, even if this script is killed.
mkdir -p "$RUN"
exec 9>>"$RUN/lock"

# running_pids: the recorded pids still alive and still running our binaries
# (a pid the system reused for another program is left alone).
running_pids() {
	local role pid url
	[ -f "$RUN/cluster" ] || return 0
	while read -r role pid url; do
		kill -0 "$pid" 2>/dev/null || continue
		case "$role" in
		run-demo.sh) grep -qa "run-demo.sh" "/proc/$pid/cmdline" 2>/dev/null || continue ;;
		*) grep -qa "$role" "/proc/$pid/cmdline" 2>/dev/null || continue ;;
		esac
		echo "$role $pid $url"
	done <"$RUN/cluster"
}

if ! flock -n 9; then
	what=$(running_pids | awk '{printf "%s%s (pid %s%s)", (NR > 1 ? ", " : ""), $1, $2, ($3 != "" ? ", " $3 : "")}')
	if [ "$mode" = stop ]; then
		echo "== stopping the demo cluster in $RUN: ${what:-its processes hold $RUN/lock}"
		pid=$(running_pids | awk '$1 == "run-demo.sh" {print $2}')
		# The script that started it stops its services in order and waits for them.
		[ -n "$pid" ] && kill -TERM "$pid"
		if ! flock -w 30 9; then
			# That script is gone (killed) or stuck: signal the services themselves.
			running_pids | awk '$1 != "run-demo.sh" {print $2}' | xargs -r kill -TERM
			flock -w 30 9 || {
				echo "$me: the cluster in $RUN did not stop within 60 s:" \
					"$(running_pids | awk '{printf "%s pid %s; ", $1, $2}')" >&2
				exit 1
			}
		fi
		rm -f "$RUN/cluster"
		echo "== stopped"
		exit 0
	fi
	echo "$me: a demo cluster is already running in $RUN: ${what:-processes that hold $RUN/lock};" \
		"stop it with 'bash $me --stop' (same CKPT_RUN_DIR), or run another one with" \
		"another CKPT_RUN_DIR and CKPT_BASE_PORT" >&2
	exit 1
fi
if [ "$mode" = stop ]; then
	rm -f "$RUN/cluster"
	echo "== no demo cluster is running in $RUN"
	exit 0
fi

# A port in use (a cluster from another run folder, another program) would
# make a service fail to bind while this script talks to the other one.
for p in "NAS $((base + 10))" "manager $((base + 20))" "events $((base + 21))" \
	"dummy_1 $((base + 31))" "dummy_2 $((base + 32))"; do
	set -- $p
	if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
		holder=""
		command -v ss >/dev/null &&
			holder=$(ss -Hltnp "sport = :$2" 2>/dev/null | grep -o 'users:.*' | head -n1)
		echo "$me: port $2 ($1, CKPT_BASE_PORT=$base + $(($2 - base))) on 127.0.0.1 is in use${holder:+ by $holder};" \
			"stop what listens there (a demo started from another folder: 'CKPT_RUN_DIR=THAT_DIR bash $me --stop')" \
			"or set CKPT_BASE_PORT to a free range" >&2
		exit 1
	fi
done

if [ -n "${CKPT_BUILD:-}" ]; then
	echo "== using the binaries in $B (CKPT_BUILD is set: nothing installed, nothing built)"
	[ -x "$CTL" ] || { echo "$me: $CTL not found: build $B first" >&2; exit 1; }
else
	echo "== checking the Debian packages ckpt needs (deploy/local/deps.sh; installs what is missing)"
	bash "$top/deploy/local/deps.sh"
	if [ ! -f "$B/build.ninja" ]; then
		echo "== configuring the build in $B (meson setup)"
		meson setup "$B" "$top" >/dev/null
	fi
	echo "== compiling (meson compile -C $B; a minute or two the first time)"
	meson compile -C "$B" >/dev/null
fi

# tls_flags NAME: a process's TLS settings (none without --tls).
tls_flags() {
	[ $tls -eq 1 ] || return 0
	echo "--tls-ca $RUN/certs/ca.crt --tls-cert $RUN/certs/$1.crt --tls-key $RUN/certs/$1.key"
}
if [ $tls -eq 1 ]; then
	echo "== TLS: a CA and a certificate per process in $RUN/certs (deploy/certs.sh)"
	bash "$top/deploy/certs.sh" -o "$RUN/certs" dummy_1 dummy_2 >/dev/null
	# ckptctl below (and any started from a shell with these) is the operator.
	export CKPT_TLS_CA="$RUN/certs/ca.crt" CKPT_TLS_CERT="$RUN/certs/operator.crt" \
		CKPT_TLS_KEY="$RUN/certs/operator.key"
fi

rm -rf "$RUN/nas"
pids=()
cleanup() {
	trap - EXIT INT TERM
	echo "== stopping the cluster"
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -f "$RUN/cluster" "$RUN/verify.ckpt"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "run-demo.sh $$" >"$RUN/cluster"

ctl() { "$CTL" --manager "$MGR_URL" "$@"; }
wait_until() { # SECONDS COMMAND...
	local n=$(($1 * 10)); shift
	until "$@" >/dev/null 2>&1; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.1; done
}
# ours_up: our manager answers (and is still alive: the answer is not another cluster's).
ours_up() { kill -0 "${pids[1]}" && ctl info; }

echo "== NAS on $NAS_URL, data in $RUN/nas"
# shellcheck disable=SC2046 # tls_flags: words on purpose
"$B/services/nas/ckpt-nas" --listen "$NAS_URL" --data "$RUN/nas" $(tls_flags nas) &
pids+=($!)
echo "ckpt-nas $! $NAS_URL" >>"$RUN/cluster"
echo "== manager on $MGR_URL, events on $EV_URL"
# shellcheck disable=SC2046
"$B/services/manager/ckpt-manager" --listen "$MGR_URL" --events "$EV_URL" --nas "$NAS_URL" \
	$(tls_flags manager) &
pids+=($!)
echo "ckpt-manager $! $MGR_URL" >>"$RUN/cluster"
wait_until 10 ours_up || { echo "$me: the manager did not come up" >&2; exit 1; }
for i in 1 2; do
	echo "== agent dummy_$i on $scheme://127.0.0.1:$((base + 30 + i)), running demo_$i ($bytes)"
	# shellcheck disable=SC2046
	"$B/services/agent/ckpt-agent" --node "dummy_$i" --manager "$MGR_URL" \
		--listen "$scheme://127.0.0.1:$((base + 30 + i))" --demo "demo_$i:$bytes" \
		--interval-ms 1000 --migrate-after 3s $(tls_flags "node-dummy_$i") &
	pids+=($!)
	echo "ckpt-agent $! $scheme://127.0.0.1:$((base + 30 + i))" >>"$RUN/cluster"
done

echo "== waiting for the agents to checkpoint and swap their components (about 5 s)"
swapped() {
	ctl --json nodes | jq -e '
		(map(select(.id == "dummy_1"))[0].components | map(.name) == ["demo_2"]) and
		(map(select(.id == "dummy_2"))[0].components | map(.name) == ["demo_1"])'
}
if ! wait_until 30 swapped; then
	echo "== FAILED: the components did not swap within 30 s" >&2
	ctl nodes >&2 || true
	exit 1
fi
echo "== the swap is done; checking digests"
# What is compared is what was just restored: the digest of the restored state
# (computed by the agent) against the checkpoint it came from, pinned on the
# NAS before it is read back so that retention cannot delete it meanwhile.
nodes=$(ctl --json nodes)
ok=1
for pair in "dummy_1 demo_2" "dummy_2 demo_1"; do
	set -- $pair
	c=$(jq -c --arg n "$1" --arg c "$2" 'map(select(.id == $n))[0].components[] | select(.name == $c)' <<<"$nodes")
	src=$(jq -r .restored_from.node <<<"$c")
	seq=$(jq -r .restored_from.seq <<<"$c")
	from=$(jq -r .restored_from.digest <<<"$c")
	restored=$(jq -r .state_digest <<<"$c")
	ref="$src/$2@$seq"
	if ctl pin "$ref" >/dev/null 2>&1; then
		ctl get "$ref" -o "$RUN/verify.ckpt"
		# The digest of the bytes read back, cut as the record was (ckpt-chunks-sha256).
		stored=$(ctl digest "$RUN/verify.ckpt" --like "$ref" | cut -d' ' -f1)
		ctl unpin "$ref" >/dev/null
		how="read back from the NAS"
	else
		stored=$from # retention was faster than the pin: the digest the NAS sent at restore
		how="as the NAS sent it at restore (since deleted by retention)"
	fi
	if [ "$restored" = "$stored" ] && [ "$from" = "$stored" ]; then verdict=match; else verdict=MISMATCH; ok=0; fi
	printf '== %s now runs %s, restored from %s\n   stored checkpoint %s (%s)\n   restored state    %s  -> %s\n' \
		"$1" "$2" "$ref" "$stored" "$how" "$restored" "$verdict"
done
ctl nodes
[ $ok -eq 1 ] || { echo "== FAILED: digest mismatch" >&2; exit 1; }
echo "== seed scenario: migration successful on both nodes, digests match$([ $tls -eq 1 ] && echo ', every connection on mutual TLS')"
if [ $keep -eq 1 ]; then
	[ $tls -eq 0 ] || cat <<EOF
== TLS: ckptctl shows the operator's certificate; in that terminal first:
   export CKPT_TLS_CA=$CKPT_TLS_CA CKPT_TLS_CERT=$CKPT_TLS_CERT CKPT_TLS_KEY=$CKPT_TLS_KEY
EOF
	cat <<EOF
== the cluster keeps running (pids ${pids[*]}, listed in $RUN/cluster). Watch it from another terminal:
   $CTL --manager $MGR_URL nodes      nodes, their components, restores
   $CTL --manager $MGR_URL ls         stored checkpoints
   $CTL --manager $MGR_URL watch      events as they happen (Ctrl-C ends it)
   $CTL --manager $MGR_URL migrate demo_1 --to dummy_1
== stop it with Ctrl-C here, or: ${CKPT_RUN_DIR:+CKPT_RUN_DIR=$RUN }bash $top/$me --stop
EOF
	wait "${pids[0]}"
fi
