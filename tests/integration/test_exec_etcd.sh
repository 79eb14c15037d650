#!/usr/bin/env bash
# etcd as an exec component (deploy/examples/etcd.ini): its keys survive a
# migration and a failover (SIGKILL of the node's agent and of etcd), read
# back with etcdctl on the new node's port. Skipped without etcd.
. "$(dirname "$0")/exec_lib.sh"
need /usr/bin/etcd /usr/bin/etcdctl

declare -A PORT=([n1]=$(free_port) [n2]=$(free_port))
recipe_conf n1 etcd.ini 2479 "${PORT[n1]}" 2480 "$(free_port)"
recipe_conf n2 etcd.ini 2479 "${PORT[n2]}" 2480 "$(free_port)"
head -c 60000 /dev/urandom | base64 -w0 >"$T_DIR/big.txt"

ec() { ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${PORT[$1]}" "${@:2}"; }
serving() { ec "$1" endpoint health 2>&1 | grep -q 'is healthy'; }
write_data() {
	local i
	case $2 in
	1)
		ec "$1" put greeting hello >/dev/null &&
			ec "$1" put big <"$T_DIR/big.txt" >/dev/null || return 1
		for i in $(seq 50); do ec "$1" put "k/$i" "v$i" >/dev/null || return 1; done ;;
	2)
		ec "$1" put after-migration yes >/dev/null &&
			ec "$1" del k/50 >/dev/null ;;
	esac
}
holds_data() {
	local want=50
	[ "$2" -lt 2 ] || want=49
	[ "$(ec "$1" get greeting --print-value-only 2>/dev/null)" = hello ] &&
		[ "$(ec "$1" get big --print-value-only)" = "$(cat "$T_DIR/big.txt")" ] &&
		[ "$(ec "$1" get k/ --prefix --keys-only | grep -c .)" -eq "$want" ] &&
		[ "$(ec "$1" get k/7 --print-value-only)" = v7 ] || return 1
	[ "$2" -lt 2 ] || [ "$(ec "$1" get after-migration --print-value-only)" = yes ]
}

survives etcd
finish
