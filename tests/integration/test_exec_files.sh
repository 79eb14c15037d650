#!/usr/bin/env bash
# A folder as an exec component's state (the `files` component of
# deploy/examples/agent.ini: python3 -m http.server serves the folder, tar
# dumps and restores it): after a migration, and after a failover (SIGKILL of
# the node's agent and of the server), the folder on the new node is the
# original byte for byte (every file's content, size, mode and mtime, every
# folder, symbolic link and empty file), and the server serves it.
. "$(dirname "$0")/exec_lib.sh"
need /usr/bin/python3 /bin/tar /bin/sh
command -v curl >/dev/null || { echo "# skipped: curl is not installed"; exit 77; }

declare -A PORT=([n1]=$(free_port) [n2]=$(free_port))
recipe_conf n1 agent.ini 8580 "${PORT[n1]}"
recipe_conf n2 agent.ini 8580 "${PORT[n2]}"
data() { echo "$T_DIR/$1/files/data"; }

# tree NODE: what the folder holds, one line per entry (sorted), then the
# digest of every regular file.
tree() {
	(cd "$(data "$1")" &&
		find . -mindepth 1 -printf '%y %m %p -> %l\n' | LC_ALL=C sort &&
		find . -type f -printf '%s %TY-%Tm-%Td %TH:%TM %p\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
serving() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$1]}/")" = 200 ]
}
write_data() {
	local d i
	d=$(data "$1")
	case $2 in
	1)
		printf 'hello\n' >"$d/greeting.txt" &&
			mkdir -p "$d/sub/deeper" "$d/empty dir" "$d/many" &&
			head -c 1048576 /dev/urandom >"$d/sub/blob" &&
			head -c 2097152 /dev/zero >"$d/sub/deeper/zeros" &&
			printf 'spaces\n' >"$d/name with spaces.txt" &&
			: >"$d/empty" &&
			ln -s sub/blob "$d/link" &&
			printf '#!/bin/sh\necho hi\n' >"$d/script.sh" && chmod 750 "$d/script.sh" &&
			chmod 600 "$d/sub/blob" &&
			touch -d '2001-02-03 04:05:06' "$d/greeting.txt" || return 1
		for i in $(seq 200); do echo "file $i" >"$d/many/f$i" || return 1; done ;;
	2)
		printf 'changed on n2\n' >"$d/greeting.txt" &&
			rm "$d/many/f7" &&
			head -c 65536 /dev/urandom >"$d/sub/new" || return 1 ;;
	esac
	tree "$1" >"$T_DIR/tree.$2"
}
holds_data() {
	local got
	got=$(tree "$1" 2>/dev/null) || return 1
	if [ "$got" != "$(cat "$T_DIR/tree.$2")" ]; then
		echo "$got" >"$T_DIR/tree.$1.got"
		cp "$T_DIR/tree.$2" "$T_DIR/tree.$1.want"
		return 1
	fi
	# and the server serves it
	curl -s "http://127.0.0.1:${PORT[$1]}/sub/blob" | cmp -s - "$(data "$1")/sub/blob" &&
		[ "$(curl -s "http://127.0.0.1:${PORT[$1]}/greeting.txt")" = "$(head -n1 "$(data "$1")/greeting.txt")" ]
}

survives files
# On failure, what differs (holds_data keeps the last tree read).
for n in n1 n2; do
	[ -f "$T_DIR/tree.$n.got" ] && [ "$T_FAIL" -gt 0 ] &&
		diff "$T_DIR/tree.$n.want" "$T_DIR/tree.$n.got" | head -n 20 | sed 's/^/# /'
done
finish
