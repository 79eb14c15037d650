# Helpers of the exec-driver tests (test_exec_*.sh; it sources lib.sh):
# two nodes on one machine, each with a config file of its own that declares
# the same component (the same name, each node's own folder and ports), and a
# node death that kills the agent and the process groups of its components,
# as a power cut would.
. "$(dirname "$0")/lib.sh"

NAS_PORT=$(free_port); MGR_PORT=$(free_port); EV_PORT=$(free_port)
MGR_URL="tcp://127.0.0.1:$MGR_PORT"
# Long enough that a busy machine's heartbeats (every 100 ms) do not miss it.
DOWN_MS=1500

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# need PROGRAM...: skip the test (exit 77) when one is not installed.
need() {
	local p
	for p in "$@"; do
		if [ ! -x "$p" ]; then
			echo "# skipped: $p is not installed"
			exit 77
		fi
	done
}

cluster() {
	start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
	start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" \
		--heartbeat-ms 100 --down-after ${DOWN_MS}ms || { echo "manager did not start"; exit 1; }
	start watch "$CTL_BIN" --manager "$MGR_URL" --json watch
}

# exec_agent NAME [ARGS...]: the agent of node NAME, everything else
# (node id, addresses, components) from its config file $T_DIR/NAME.ini.
exec_agent() {
	local name=$1; shift
	start "$name" "$AGENT_BIN" --config "$T_DIR/$name.ini" "$@"
}

# agent_section NAME: the [agent] section of node NAME's config file.
agent_section() {
	printf '[agent]\nnode = %s\nmanager = %s\nlisten = tcp://127.0.0.1:%s\n\n' \
		"$1" "$MGR_URL" "$(free_port)"
}

runs_on() { # COMPONENT: the up nodes that run it, one line each
	ctl --json nodes | jq -r --arg c "$1" \
		'.[] | select(.state == "up") | select(any(.components[]; .name == $c)) | .id'
}
not() { ! "$@"; }
runs_only_on() { [ "$(runs_on "$1")" = "$2" ]; }
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq "$1" ]; }

# newest_seq NODE COMPONENT: the newest stored sequence (0: none).
newest_seq() { ctl --json ls "$1/$2" | jq '[.[].seq] | max // 0'; }
# stored_after NODE COMPONENT SEQ: a checkpoint newer than SEQ+1 is stored,
# so one whole dump began after SEQ was stored.
stored_after() { [ "$(newest_seq "$1" "$2")" -ge $(( $3 + 2 )) ]; }

# node_death NAME: SIGKILL the agent and every process group it started.
node_death() {
	local name=$1 pid pg groups
	eval "pid=\${PID_$name}"
	# Stopped first, so that it starts no command between the list and the kill.
	kill -STOP "$pid"
	groups=$(ps -o pgid= --ppid "$pid" | tr -d ' ' | sort -u)
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	for pg in $groups; do
		[ "$pg" -gt 1 ] && [ "$pg" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] &&
			kill -KILL -- "-$pg" 2>/dev/null
	done
	echo "# $name died: agent $pid and process groups ${groups//$'\n'/ } killed"
}

EXAMPLES="$(cd "$(dirname "$0")/../../deploy/examples" && pwd)"
# recipe_conf NODE EXAMPLE [FROM TO]...: node NAME's config file: its [agent]
# section, then deploy/examples/EXAMPLE with the folders moved under
# $T_DIR/NODE, each FROM (a port) replaced by TO, and a checkpoint every
# second.
recipe_conf() {
	local node=$1 example=$2; shift 2
	local args=(-e '/^\[agent\]$/d' -e "s|/var/lib/ckpt|$T_DIR/$node|g"
		-e 's|^interval *=.*|interval = 1s|')
	while [ $# -ge 2 ]; do args+=(-e "s|$1|$2|g"); shift 2; done
	{ agent_section "$node"; sed "${args[@]}" "$EXAMPLES/$example"; } >"$T_DIR/$node.ini"
}

# survives COMPONENT: the scenario every test_exec_*.sh runs, with the test's
# hooks, each given a node name (the test maps it to that node's port and
# folder): serving NODE (the program answers there), write_data NODE STEP
# and holds_data NODE STEP (every write of steps 1..STEP reads back there).
#  1. n1 starts COMPONENT fresh (no checkpoint of it exists); n2, whose
#     config declares it too, does not start it (it runs on n1).
#  2. Data written on n1; `ckptctl migrate COMPONENT --to n2`: n1 stops it
#     after a final checkpoint, n2 restores it and serves the data.
#  3. More data written on n2 and stored in a checkpoint; n2 dies (the agent
#     and the program's process group, SIGKILL): the manager fails it over
#     to n1, which serves the data of both steps.
# The times are printed, never asserted: a busy machine may take any time.
survives() {
	local c=$1 t0 t1 t2 seq
	cluster
	exec_agent n1
	check "$c starts on n1" wait_for 120 runs_only_on "$c" n1
	check "... fresh: no checkpoint of it existed" wait_for 10 log_has n1 "component $c started fresh"
	check "... and serves on n1's port" wait_for 120 serving n1
	exec_agent n2
	check "n2 attaches" wait_for 30 nodes_up 2
	check "n2 does not start $c: n1 runs it" wait_for 30 log_has n2 "component $c not started on node n2"
	check "... $c runs on n1 only" runs_only_on "$c" n1
	check "... nothing serves on n2's port" not serving n2

	check "data written on n1" write_data n1 1
	check "... reads back on n1" holds_data n1 1

	t0=$(now_ms)
	check "ckptctl migrate $c --to n2" ctl --timeout 120s migrate "$c" --to n2
	t1=$(now_ms)
	check "n2 serves $c's data after the migration" wait_for 120 holds_data n2 1
	t2=$(now_ms)
	echo "# migration of $c: ckptctl migrate returned after $((t1 - t0)) ms," \
		"the data was served on n2 after $((t2 - t0)) ms"
	check "... $c runs on n2 only" runs_only_on "$c" n2
	check "... n1 stopped its copy" wait_for 30 not serving n1

	check "more data written on n2" write_data n2 2
	check "... reads back on n2" holds_data n2 2
	seq=$(newest_seq n2 "$c")
	check "... and is stored in a checkpoint of n2" wait_for 120 stored_after n2 "$c" "$seq"
	node_death n2
	t0=$(now_ms)
	check "n1 serves every write after the failover" wait_for 180 holds_data n1 2
	t1=$(now_ms)
	echo "# failover of $c: the data was served on n1 $((t1 - t0)) ms after n2's SIGKILL" \
		"(down-after $DOWN_MS ms)"
	check "... $c runs on n1 only" wait_for 30 runs_only_on "$c" n1
	check "... the manager logged the failover" wait_for 10 log_has manager "failover of $c from n2 to n1 done"
	seq=$(newest_seq n1 "$c")
	check "... and n1 stores checkpoints of it" wait_for 60 stored_after n1 "$c" "$seq"

	check "n1 exits 0 on SIGTERM" stop n1 TERM
	check "... and stopped $c" wait_for 30 not serving n1
	for s in watch manager nas; do
		check "$s exits 0 on SIGTERM" stop "$s" TERM
	done
}
