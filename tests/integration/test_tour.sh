#!/usr/bin/env bash
# README's five-minute tour, run as written: the shell blocks between
# "<!-- tour:begin" and "<!-- tour:end -->" in README.md, in order, with the
# tour's fixed ports and /tmp/ckpt-tour replaced by free ports and a
# temporary folder. A block that starts a service (ckpt-nas, ckpt-manager,
# ckpt-agent, an endless ckptctl watch) runs in the background as a user's
# terminal would; the others run in the foreground, one after the other, and
# what they print is checked.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || { echo "jq missing"; exit 1; }

README="$(dirname "$0")/../../README.md"
TOUR="$T_DIR/tour"
mkdir -p "$TOUR"
CKPT_BUILD="$CKPT_BUILD" . "$(dirname "$0")/../../deploy/local/env.sh"
command -v ckptctl >/dev/null || { echo "ckptctl not on PATH after env.sh"; exit 1; }

# The tour's blocks, one file each, ports and folder replaced.
subst=()
for p in 7410 7420 7421 7431 7432; do subst+=(-e "s/127\.0\.0\.1:$p/127.0.0.1:$(free_port)/g"); done
subst+=(-e "s#/tmp/ckpt-tour#$TOUR#g")
awk -v dir="$T_DIR" '
	/<!-- tour:begin/ { on = 1; next }
	/<!-- tour:end/ { on = 0 }
	on && /^```sh/ { n++; f = sprintf("%s/block%02d.sh", dir, n); inb = 1; next }
	inb && /^```/ { inb = 0; close(f); next }
	inb { print > f }
' "$README"
blocks=("$T_DIR"/block*.sh)
check "README has a tour of at least eight blocks" [ "${#blocks[@]}" -ge 8 ]
for b in "${blocks[@]}"; do sed -i "${subst[@]}" "$b"; done
MGR_URL=$(grep -ho 'ckpt-manager --listen [^ ]*' "${blocks[@]}" | head -n1 | cut -d' ' -f3)
check "the tour starts a manager" [ -n "$MGR_URL" ]

is_service() { # FILE: one line starting a long-running program
	[ "$(grep -vc '^\s*$' "$1")" -eq 1 ] || return 1
	grep -Eq '^(ckpt-nas|ckpt-manager|ckpt-agent) |^ckptctl .*watch$' "$1"
}
svc=0 fg=0 exports=""
nodes_json() { ckptctl --manager "$MGR_URL" --json nodes; }
runs_on() { nodes_json | jq -r --arg c "$1" '.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'; }
for b in "${blocks[@]}"; do
	if is_service "$b"; then
		svc=$((svc + 1))
		start "svc$svc" bash -c "exec $(cat "$b")"
		case "$(cat "$b")" in
		ckpt-nas*|ckpt-manager*) check "service $svc ($(cut -d' ' -f1 "$b")) listens" wait_for 20 log_has "svc$svc" listening ;;
		esac
		continue
	fi
	fg=$((fg + 1))
	# What a user sees before typing the block: the cluster is up.
	case $fg in
	1)
		two_up() { [ "$(nodes_json | jq '[.[] | select(.state == "up")] | length')" -eq 2 ]; }
		check "both nodes are up before the first commands" wait_for 30 two_up
		stored() { ckptctl --manager "$MGR_URL" --json ls n1/counter | jq -e 'length > 0'; }
		check "counter has a checkpoint" wait_for 30 stored ;;
	3)
		n2_stored() { ckptctl --manager "$MGR_URL" --json ls n2/counter | jq -e 'length > 0'; }
		check "n2 stored counter after the migration" wait_for 30 n2_stored ;;
	esac
	out="$T_DIR/out$fg.txt"
	# From a file: a command line holding the block would match its pkill.
	printf '%s%s\n' "$exports" "$(cat "$b")" >"$T_DIR/run$fg.sh"
	check "tour block $fg runs without error" bash -e "$T_DIR/run$fg.sh" >"$out" 2>&1 || cat "$out"
	exports+=$(grep '^export ' "$b" || true)$'\n'
	case $fg in
	1)
		check "nodes lists n1 and n2" grep -Eq '^n1 .*up' "$out"
		check "ls shows counter's latest checkpoint" grep -Eq '^n1 +counter +[0-9]' "$out"
		check "get gives back what put stored" grep -qx 'hello, ckpt' "$out" ;;
	2)
		check "counter runs on n2 after the migration" [ "$(runs_on counter)" = n2 ]
		check "the jq view shows counter restored from n1" \
			grep -q '"node": "n1"' "$out" ;;
	3)
		check "counter failed over back to n1" [ "$(runs_on counter)" = n1 ]
		check "watch printed the failover" grep -q 'failover.done' "$out"
		from=$(nodes_json | jq -r '.[] | .components[]? | select(.name == "counter") | .restored_from.node')
		check "counter was restored from n2's checkpoint" [ "$from" = n2 ] ;;
	esac
done
check "the tour has five services and three command blocks" [ "$svc" -eq 5 ] && [ "$fg" -eq 3 ]
watch_log="$T_DIR/svc5.log"
check "terminal 5 saw the migration and the failover" \
	sh -c "grep -q 'migration.done' '$watch_log' && grep -q 'failover.done' '$watch_log'"
finish
