# Shared helpers of the integration tests: start the real binaries on
# 127.0.0.1 with free ports and a temporary folder, always stop them, count
# checks and print the closing "N passed, N failed" line.
# Sourced by test_*.sh; CKPT_BUILD points at the meson build directory.
set -u

: "${CKPT_BUILD:?CKPT_BUILD must point at the build directory}"
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-it.XXXXXX")

# A cross build (deploy/cross) runs under an emulator: CKPT_EXEC_WRAPPER
# ("qemu-aarch64"), which meson test sets from the cross file's property
# ckpt_exec_wrapper. Where binfmt_misc runs foreign binaries by itself no
# wrapper is needed, and one does no harm.
T_WRAP=${CKPT_EXEC_WRAPPER-}

# t_bin PATH: what to run PATH as; under a wrapper a script in $T_DIR/bin that
# execs it, so the pid a test signals is the emulator's, which passes signals
# on to the program.
t_bin() {
	local w
	if [ -z "$T_WRAP" ]; then echo "$1"; return; fi
	mkdir -p "$T_DIR/bin"
	w="$T_DIR/bin/${1##*/}"
	printf '#!/bin/sh\nexec %s %s "$@"\n' "$T_WRAP" "$1" >"$w"
	chmod +x "$w"
	echo "$w"
}
NAS_BIN=$(t_bin "$CKPT_BUILD/services/nas/ckpt-nas")
MGR_BIN=$(t_bin "$CKPT_BUILD/services/manager/ckpt-manager")
AGENT_BIN=$(t_bin "$CKPT_BUILD/services/agent/ckpt-agent")
CTL_BIN=$(t_bin "$CKPT_BUILD/clients/ckptctl/ckptctl")
T_PIDS=()

# TLS mode (CKPT_TEST_TLS=1, as meson's integration_seed_tls sets it): the
# services of start_nas and start_manager listen on tls+tcp:// with their
# certificates (deploy/certs.sh, in $T_DIR/certs), and everything else started
# from here (ckptctl above all) shows the operator's through CKPT_TLS_*; an
# agent gets its node's from tls_node ID. T_TCP is the scheme tests dial.
T_TCP=tcp
T_CERTS="$T_DIR/certs"
# tls_make ARGS...: deploy/certs.sh into $T_CERTS (quietly; the CA is made once).
tls_make() {
	bash "$(dirname "${BASH_SOURCE[0]}")/../../deploy/certs.sh" -o "$T_CERTS" "$@" >/dev/null
}
# tls_args NAME: the flags that make a service show NAME.crt (nas, node-ID...).
tls_args() {
	[ "$T_TCP" = tls+tcp ] || return 0
	[ -s "$T_CERTS/$1.crt" ] || case "$1" in
		node-*) tls_make --only "node:${1#node-}" ;;
		*) tls_make --only "$1" ;;
	esac
	echo "--tls-ca $T_CERTS/ca.crt --tls-cert $T_CERTS/$1.crt --tls-key $T_CERTS/$1.key"
}
tls_node() { tls_args "node-$1"; }
if [ "${CKPT_TEST_TLS:-0}" = 1 ]; then
	T_TCP=tls+tcp
	tls_make nas manager operator
	export CKPT_TLS_CA="$T_CERTS/ca.crt" CKPT_TLS_CERT="$T_CERTS/operator.crt" \
		CKPT_TLS_KEY="$T_CERTS/operator.key"
fi
T_PASS=0
T_FAIL=0

# kill_under DIR [SIGNAL]: signals every process whose working folder is in
# DIR (the programs of exec components run in their folder, in process
# groups of their own: a SIGKILLed agent leaves them behind, as a dead node's
# would be gone with it).
kill_under() {
	local dir=$1 sig=${2:-KILL} p cwd
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		case "$cwd" in "$dir"|"$dir"/*) kill -"$sig" "${p#/proc/}" 2>/dev/null ;; esac
	done
	return 0
}

t_cleanup() {
	local pid
	for pid in "${T_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${T_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	kill_under "$T_DIR"
	grep -lx "$$" "$T_PORTS"/* 2>/dev/null | xargs -r rm -f
	if [ "$T_FAIL" -gt 0 ] || [ -n "${CKPT_KEEP:-}" ]; then
		echo "# logs kept in $T_DIR"
		for f in "$T_DIR"/*.log; do [ -f "$f" ] && { echo "# --- $f (tail)"; tail -n 40 "$f"; }; done
	else
		rm -rf "$T_DIR"
	fi
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a TCP port of 127.0.0.1 that nothing holds, below the kernel's
# ephemeral range (net.ipv4.ip_local_port_range): a port from that range is
# what every outgoing connection on the machine takes as its own, and one did
# take a NAS's port while the test had the NAS down for a restart.
# A port handed out is claimed for this test (a file named after it in
# $T_PORTS holding this shell's pid, removed at exit; a dead test's claims
# are taken over): a port is free when asked for and bound only later, so
# without claims two tests running side by side, or two services of one
# test, drew the same port in about one CI run of four.
T_PORTS="${TMPDIR:-/tmp}/ckpt-it-ports"
# t_ports MODE ARG...: the port picker behind the three below (one python
# start-up whatever it picks).
t_ports() {
	mkdir -p "$T_PORTS"
	python3 -c '
import os, random, socket, sys
claims, me, mode = sys.argv[1], sys.argv[2], sys.argv[3]
offs = [0] if mode == "n" else [int(o) for o in sys.argv[4:]]
count = int(sys.argv[4]) if mode == "n" else 1
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
top = max(offs)
def claim(port):
    path = os.path.join(claims, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(open(path).read() or "0")
                os.kill(owner, 0)
                return False  # held by a live test (or being written)
            except (ProcessLookupError, ValueError):
                try:
                    os.unlink(path)  # its test is gone
                except FileNotFoundError:
                    pass
                continue
            except (PermissionError, FileNotFoundError):
                return False
        os.write(fd, me.encode())
        os.close(fd)
        return True
    return False
def bindable(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
bases = []
for _ in range(500 * count):
    if len(bases) == count:
        break
    base = random.randrange(10000, lo - top) if lo - top > 11000 else random.randrange(20000, 30000)
    if not all(bindable(base + o) for o in offs):
        continue
    got = []
    for o in offs:
        if not claim(base + o):
            break
        got.append(base + o)
    if len(got) == len(offs):
        bases.append(base)
        continue
    for p in got:
        os.unlink(os.path.join(claims, str(p)))
print(" ".join(map(str, bases)))
' "$T_PORTS" "$$" "$@"
}
# free_ports_at OFFSET...: a base port B whose ports B+OFFSET are all free.
free_ports_at() { t_ports at "$@"; }
# free_ports N: N free ports, on one line.
free_ports() { t_ports n "$1"; }
free_port() { t_ports n 1; }

# t_tmpfs SIZE: a tmpfs of SIZE (mount's form: 8m) mounted at $MNT for a
# test that fills its disk; the test is skipped (exit 77) where it cannot be
# mounted (not root). At exit: T_ON_EXIT (a command, if set), the processes
# (t_cleanup), then the file system, whatever happened.
t_tmpfs() {
	MNT=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-diskfull.XXXXXX")
	if ! mount -t tmpfs -o "size=$1" tmpfs "$MNT" 2>"$T_DIR/mount.err"; then
		echo "# SKIP: cannot mount a tmpfs here ($(cat "$T_DIR/mount.err")): the test needs root"
		rmdir "$MNT"
		exit 77
	fi
	trap 'rc=$?; eval "${T_ON_EXIT:-}"; t_cleanup; umount "$MNT" || umount -l "$MNT"; rmdir "$MNT"; exit $rc' EXIT
}

# put_until_refused NAS_URL COMPONENT SIZE: puts SIZE random bytes as
# NODE/COMPONENT ("{i}" in it: the put's number) until one is refused, at most
# 400; prints the number of the refused put (0: none was), whose error is in
# $T_DIR/err.txt. To fill a disk or a map.
put_until_refused() {
	local url=$1 comp=$2 size=$3 i
	for i in $(seq 1 400); do
		if ! head -c "$size" /dev/urandom |
			"$CTL_BIN" --nas "$url" put "${comp//\{i\}/$i}" >/dev/null 2>"$T_DIR/err.txt"; then
			echo "$i"
			return
		fi
	done
	echo 0
}

# check DESCRIPTION COMMAND...: runs the command, counts pass or fail.
check() {
	local what=$1; shift
	if "$@"; then
		T_PASS=$((T_PASS + 1)); echo "ok - $what"
	else
		T_FAIL=$((T_FAIL + 1)); echo "not ok - $what"
	fi
}

# wait_for SECONDS COMMAND...: polls every 0.1 s until the command succeeds.
wait_for() {
	local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
	until "$@" >/dev/null 2>&1; do
		[ $(( $(date +%s%N) / 1000000 )) -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# start NAME COMMAND...: runs a service in the background, log in $T_DIR/NAME.log
start() {
	local name=$1; shift
	# Emptied here, not by the background job's redirection: that runs when
	# the job gets to it, and a wait for "listening" right after could read
	# the line a previous run of NAME wrote (a restart on the same log).
	: >"$T_DIR/$name.log"
	"$@" >>"$T_DIR/$name.log" 2>&1 &
	local pid=$!
	T_PIDS+=("$pid")
	eval "PID_$name=$pid"
}

# stop NAME [SIGNAL]: signals it and waits; returns its exit status.
stop() {
	local name=$1 sig=${2:-TERM} pid rc
	eval "pid=\${PID_$name}"
	kill -"$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	return $rc
}

log_has() { grep -q -- "$2" "$T_DIR/$1.log"; }

# start_nas NAME PORT [ARGS...]
start_nas() {
	local name=$1 port=$2; shift 2
	# Tests check every acknowledged checkpoint: no retention unless the test passes --keep.
	# shellcheck disable=SC2046 # tls_args: words on purpose (paths without spaces)
	start "$name" "$NAS_BIN" --listen "$T_TCP://127.0.0.1:$port" --data "$T_DIR/$name-data" \
		--keep 1000000 $(tls_args nas) "$@"
	wait_for 10 log_has "$name" "listening"
}

# start_manager NAME PORT EVENTS_PORT NAS_URLS [ARGS...]
start_manager() {
	local name=$1 port=$2 ev=$3 nas=$4; shift 4
	# shellcheck disable=SC2046
	start "$name" "$MGR_BIN" --listen "$T_TCP://127.0.0.1:$port" \
		--events "$T_TCP://127.0.0.1:$ev" --nas "$nas" $(tls_args manager) "$@"
	wait_for 10 log_has "$name" "listening"
}

ctl() { "$CTL_BIN" --manager "$MGR_URL" "$@"; }

finish() {
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
}
