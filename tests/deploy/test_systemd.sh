#!/usr/bin/env bash
# The systemd units (deploy/systemd): `systemd-analyze verify` reports nothing
# (an unknown key is only a warning there, so its output must be empty), the
# sandbox's exposure (`systemd-analyze security --offline`) stays low, and
# every CKPT_ variable of the environment files, set or commented, is a
# setting of the service. The units are verified with ExecStart pointing at
# this build's binaries (verify checks that the program exists). Skips (exit
# 77) where systemd-analyze is missing.
. "$(dirname "$0")/../integration/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
SD="$top/deploy/systemd"
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed (package systemd)"; exit 77; }

for s in nas:"$NAS_BIN":1.5 manager:"$MGR_BIN":1.5 agent:"$AGENT_BIN":3.5; do
	IFS=: read -r name bin most <<<"$s"
	unit="ckpt-$name.service"
	sed "s#^ExecStart=/usr/local/bin/ckpt-$name#ExecStart=$bin#" "$SD/$unit" >"$T_DIR/$unit"
	check "$unit runs /usr/local/bin/ckpt-$name" grep -q "^ExecStart=/usr/local/bin/ckpt-$name$" "$SD/$unit"
	check "$unit reads /etc/ckpt/$name.env" grep -q "^EnvironmentFile=/etc/ckpt/$name.env$" "$SD/$unit"
	(cd "$T_DIR" && systemd-analyze verify "$unit") >"$T_DIR/$name-verify.log" 2>&1
	rc=$?
	cat "$T_DIR/$name-verify.log"
	check "systemd-analyze verify $unit: no error, no warning" \
		sh -c "[ $rc -eq 0 ] && [ ! -s '$T_DIR/$name-verify.log' ]"
	if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
		level=$(cd "$T_DIR" && systemd-analyze security --offline=yes "$unit" 2>/dev/null |
			sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		echo "# $unit: exposure ${level:-unknown} (systemd-analyze security; 0 safest, 10 none)"
		check "$unit: exposure ${level:-unknown} at most $most" \
			awk -v l="${level:-99}" -v m="$most" 'BEGIN {exit !(l <= m)}'
	fi
	while read -r key; do
		if [ "$key" = CKPT_HTTP ] && ! "$bin" --help | grep -q 'env CKPT_HTTP;'; then
			echo "# $name.env: CKPT_HTTP: ckpt-$name of this build has no --http yet: not checked"
			continue
		fi
		check "$name.env: $key is a setting of ckpt-$name" sh -c "'$bin' --help | grep -q 'env $key;'"
	done < <(grep -o '^#\{0,1\} *CKPT_[A-Z0-9_]*=' "$SD/$name.env" | tr -d '# =')
done
finish
