#!/usr/bin/env bash
# Footprint (issue 13): idle RSS, threads, stripped sizes and shared libraries
# of the services, each figure beside its target and, for RSS, beside
# Mosquitto's idle RSS measured in the same run (when mosquitto is installed).
# Two builds, one after the other, made here when missing:
#   build-bench    release, shared libraries (what a Debian package would be)
#   build-static   -Dstatic=true: minsize, LTO, every program fully static
#
#   bash bench/footprint.sh            (about two minutes; 100 agents at once)
#
# Environment: CKPT_BUILDS (default "build-bench build-static"; a folder that
# exists is used as it is), NODES (default 100: agents attached while the
# manager's RSS is read), SETTLE (seconds to idle before reading, default 3).
# A benchmark, not a test: it prints figures and asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
builds=${CKPT_BUILDS:-build-bench build-static}
nodes=${NODES:-100}
settle=${SETTLE:-3}
for build in $builds; do
	if [ ! -f "$build/build.ninja" ]; then
		case $build in
		build-static) meson setup "$build" --buildtype=minsize -Db_lto=true \
			-Dprefer_static=true -Dstatic=true >/dev/null ;;
		*) meson setup "$build" --buildtype=release >/dev/null ;;
		esac
	fi
	# glibc's warnings about NSS in static programs are expected (meson.build).
	ninja -C "$build" services/nas/ckpt-nas services/manager/ckpt-manager \
		services/agent/ckpt-agent clients/ckptctl/ckptctl >/dev/null
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-footprint.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# run VAR LOG COMMAND...: starts it in the background (in this shell, so the
# trap stops it), its pid in VAR.
run() {
	local var=$1 log=$2; shift 2
	"$@" >"$dir/$log.log" 2>&1 &
	pids+=($!)
	printf -v "$var" '%s' $!
}
wait_log() {
	for _ in $(seq 100); do grep -q "$2" "$dir/$1.log" 2>/dev/null && return 0; sleep 0.1; done
	echo "footprint: $1 did not log '$2'" >&2; tail -5 "$dir/$1.log" >&2; exit 1
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# What the RSS is: anonymous (heap, stacks) and file-backed (code, libraries).
split() { awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { printf "anon %.1f, file %.1f", a / 1024, f / 1024 }' "/proc/$1/status"; }
threads() { ls "/proc/$1/task" | wc -l; }
names() { cat /proc/"$1"/task/*/comm | sort | uniq -c | awk '{ printf "%s%s x%s", s, $2, $1; s = ", " }'; }
# The shared libraries a program needs ("static" for none).
libs() {
	if ldd "$1" >/dev/null 2>&1; then
		ldd "$1" | awk '$1 !~ /^(linux-vdso|\/)/ { printf "%s%s", s, $1; s = " " }'
	else
		echo "static: no shared library"
	fi
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
# line WHAT KiB TARGET_MIB PID
line() {
	local ok="meets"
	[ "$(awk -v k="$2" -v t="$3" 'BEGIN { print (k < t * 1024) }')" = 1 ] || ok="OVER"
	printf '%-42s %9s   target < %s MiB (%s)   %s   threads %s\n' "$1" "$(mib "$2")" "$3" "$ok" \
		"$(split "$4")" "$(threads "$4")"
}

# Stops what measure() started (Mosquitto runs on to the end).
stop_all() {
	local p keep=()
	for p in "${pids[@]}"; do
		if [ "$p" = "${mq:-}" ]; then keep+=("$p"); continue; fi
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=("${keep[@]}")
	rm -rf "$dir/nas"
}

mosq=""
if command -v mosquitto >/dev/null; then
	mq_port=$(port)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mq_port" >"$dir/mosquitto.conf"
	run mq mosquitto mosquitto -c "$dir/mosquitto.conf"
	sleep "$settle"
	mosq=$(rss_kib "$mq")
fi

measure() {
	local build=$1
	NAS="$build/services/nas/ckpt-nas" MGR="$build/services/manager/ckpt-manager"
	AGENT="$build/services/agent/ckpt-agent" CTL="$build/clients/ckptctl/ckptctl"
	nas_port=$(port) mgr_port=$(port) ev_port=$(port)
	mgr_url="tcp://127.0.0.1:$mgr_port"
	run nas nas "$NAS" --listen "tcp://127.0.0.1:$nas_port" --data "$dir/nas"
	wait_log nas listening
	run mgr mgr "$MGR" --listen "$mgr_url" --events "tcp://127.0.0.1:$ev_port" \
		--nas "tcp://127.0.0.1:$nas_port"
	wait_log mgr listening
	run a0 a0 "$AGENT" --node idle --manager "$mgr_url" --listen tcp://127.0.0.1:0 \
		--interval-ms 3600000
	demos=()
	for i in $(seq 10); do demos+=(--demo "d$i:64K"); done
	run a10 a10 "$AGENT" --node ten --manager "$mgr_url" --listen tcp://127.0.0.1:0 \
		--interval-ms 1000 --fresh "${demos[@]}"
	sleep "$settle"
	nas_idle=$(rss_kib "$nas") mgr_idle=$(rss_kib "$mgr")
	a0_rss=$(rss_kib "$a0") a10_rss=$(rss_kib "$a10")
	a0_names=$(names "$a0") nas_names=$(names "$nas") mgr_names=$(names "$mgr")
	a0_threads=$(threads "$a0") a10_threads=$(threads "$a10")

	# The manager with NODES attached agents (two are already up).
	for i in $(seq 3 "$nodes"); do
		run pid "n$i" "$AGENT" --node "n$i" --manager "$mgr_url" --listen tcp://127.0.0.1:0 \
			--interval-ms 3600000
	done
	attached=0
	for _ in $(seq 300); do
		attached=$("$CTL" --manager "$mgr_url" --json nodes 2>/dev/null | jq length) || attached=0
		[ "$attached" -ge "$nodes" ] && break
		sleep 0.2
	done
	sleep "$settle"
	mgr_rss=$(rss_kib "$mgr")
	echo "== idle RSS (VmRSS after ${settle}s idle; anon/file MiB and threads read at the end; build $build)"
	line "ckpt-agent, no component" "$a0_rss" 4 "$a0"
	line "ckpt-agent, 10 demo components of 64 KiB" "$a10_rss" 8 "$a10"
	line "ckpt-nas, map untouched" "$nas_idle" 8 "$nas"
	line "ckpt-manager, 2 nodes" "$mgr_idle" 8 "$mgr"
	line "ckpt-manager, $attached nodes attached" "$mgr_rss" 8 "$mgr"
	if [ -n "$mosq" ]; then
		printf '%-44s %10s   baseline (mosquitto %s)\n' "mosquitto, idle" "$(mib "$mosq")" \
			"$(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version //p' | head -1)"
	else
		echo "mosquitto: not installed (apt-get install mosquitto), no baseline"
	fi
	echo
	echo "== threads at idle (name x count)"
	echo "ckpt-agent ($a0_threads; with 10 components $a10_threads): $a0_names"
	echo "ckpt-nas ($(threads "$nas")): $nas_names"
	echo "ckpt-manager ($(threads "$mgr") with $attached nodes): $mgr_names"
	echo
	echo "== stripped binary sizes and the shared libraries each needs ($build)"
	for b in "$AGENT" "$NAS" "$MGR" "$CTL"; do
		strip -o "$dir/stripped" "$b"
		printf '%-14s %6s KiB stripped (%s KiB as built)   %s\n' "${b##*/}" \
			$(($(stat -c %s "$dir/stripped") / 1024)) $(($(stat -c %s "$b") / 1024)) \
			"$(libs "$b")"
	done
	stop_all
	echo
}

for build in $builds; do measure "$build"; done
