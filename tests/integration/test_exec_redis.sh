#!/usr/bin/env bash
# Redis as an exec component (deploy/examples/redis.ini): its data survives
# a migration and a failover (SIGKILL of the node's agent and of Redis), read
# back with redis-cli on the new node's port. Skipped without redis-server.
. "$(dirname "$0")/exec_lib.sh"
need /usr/bin/redis-server /usr/bin/redis-cli

declare -A PORT=([n1]=$(free_port) [n2]=$(free_port))
recipe_conf n1 redis.ini 6390 "${PORT[n1]}"
recipe_conf n2 redis.ini 6390 "${PORT[n2]}"
# A value too big for one chunk, and random: it must come back whole.
head -c 300000 /dev/urandom | base64 -w0 >"$T_DIR/big.txt"

rc() { redis-cli -p "${PORT[$1]}" "${@:2}"; }
serving() { [ "$(rc "$1" ping 2>/dev/null)" = PONG ]; }
write_data() {
	case $2 in
	1)
		rc "$1" set greeting hello >/dev/null &&
			rc "$1" rpush list a b c >/dev/null &&
			rc "$1" -x set big <"$T_DIR/big.txt" >/dev/null &&
			for i in $(seq 1000); do printf 'SET k%d v%d\r\n' "$i" "$i"; done |
				rc "$1" --pipe >/dev/null ;;
	2)
		rc "$1" set after-migration yes >/dev/null &&
			rc "$1" hset h f1 v1 f2 v2 >/dev/null ;;
	esac
}
holds_data() {
	[ "$(rc "$1" get greeting 2>/dev/null)" = hello ] &&
		[ "$(rc "$1" lrange list 0 -1 | tr '\n' ' ')" = "a b c " ] &&
		[ "$(rc "$1" get big)" = "$(cat "$T_DIR/big.txt")" ] &&
		[ "$(rc "$1" get k1)" = v1 ] && [ "$(rc "$1" get k1000)" = v1000 ] &&
		[ "$(rc "$1" dbsize)" -ge 1003 ] || return 1
	[ "$2" -lt 2 ] || {
		[ "$(rc "$1" get after-migration)" = yes ] &&
			[ "$(rc "$1" hget h f2)" = v2 ] && [ "$(rc "$1" dbsize)" -eq 1005 ]
	}
}

survives redis
finish
