#!/usr/bin/env bash
# Partition: NAS and manager in one network namespace, agents A and B in two
# others, all on a bridge in a fourth (10.77.0.0/24 exists only inside these
# namespaces; nothing leaves the machine). A's link is cut: its component
# fails over to B with a newer epoch. The link is healed: A's commits with
# the old epoch are refused and A stops the component; exactly one copy runs.
# Skips (exit 0, "SKIP") where namespaces cannot be made (not root...).
. "$(dirname "$0")/lib.sh"
# The bridge's 10.77.0.0/24 is not loopback: plain tcp:// there must be
# permitted (the namespaces are the test's own, nothing leaves the machine).
export CKPT_ALLOW_PLAIN=1

ID=$(( $$ % 100000 ))
NS_BR="ckpt-br-$ID" NS_CORE="ckpt-core-$ID" NS_A="ckpt-a-$ID" NS_B="ckpt-b-$ID"
NET=10.77.0
p_cleanup() {
	local ns pid
	t_cleanup
	for ns in "$NS_CORE" "$NS_A" "$NS_B" "$NS_BR"; do
		# Whatever still runs in a namespace this test made would keep it alive.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
}
trap p_cleanup EXIT

skip() { echo "SKIP: $*"; T_FAIL=0; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root (ip netns add)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
ip netns add "$NS_BR" 2>/dev/null || skip "cannot create a network namespace"
ip -n "$NS_BR" link add br0 type bridge 2>/dev/null || skip "cannot create a bridge"
ip -n "$NS_BR" link set br0 up
host() { # NS LETTER ADDRESS: a namespace on the bridge (veth made inside the bridge's namespace)
	ip netns add "$1" && ip -n "$NS_BR" link add "vb$2" type veth peer name eth0 netns "$1" &&
	ip -n "$NS_BR" link set "vb$2" master br0 up && ip -n "$1" addr add "$3/24" dev eth0 &&
	ip -n "$1" link set eth0 up && ip -n "$1" link set lo up
}
host "$NS_CORE" c "$NET.1" && host "$NS_A" a "$NET.11" && host "$NS_B" b "$NET.12" ||
	skip "cannot wire the namespaces (veth, bridge)"

NAS_URL="tcp://$NET.1:7001" MGR_URL="tcp://$NET.1:7002"
# (ip netns exec execs the program: its pid is the service's, for stop and kill)
ctl() { ip netns exec "$NS_CORE" "$CTL_BIN" --manager "$MGR_URL" "$@"; }
start nas ip netns exec "$NS_CORE" "$NAS_BIN" --listen "$NAS_URL" --data "$T_DIR/nas-data" \
	--keep 1000000
check "nas starts in its namespace" wait_for 10 log_has nas "listening"
start manager ip netns exec "$NS_CORE" "$MGR_BIN" --listen "$MGR_URL" --events "tcp://$NET.1:7003" \
	--nas "$NAS_URL" --heartbeat-ms 100 --down-after 2s
check "manager starts in its namespace" wait_for 10 log_has manager "listening"
start A ip netns exec "$NS_A" "$AGENT_BIN" --node A --manager "$MGR_URL" --listen "tcp://$NET.11:7011" \
	--interval-ms 200 --demo demo_p:256K
start B ip netns exec "$NS_B" "$AGENT_BIN" --node B --manager "$MGR_URL" --listen "tcp://$NET.12:7011" \
	--interval-ms 200
nodes_up() { [ "$(ctl --json nodes | jq '[.[] | select(.state == "up")] | length')" -eq 2 ]; }
check "A and B attach over the bridge" wait_for 30 nodes_up
stored() { [ "$(ctl --json ls A/demo_p | jq length)" -ge 3 ]; }
check "A checkpoints demo_p" wait_for 30 stored
old_epoch=$(ctl --json ls A/demo_p | jq 'max_by(.seq) | .epoch')

ip -n "$NS_BR" link set vba down # cut A off
on_b() { ctl --json nodes | jq -e '.[] | select(.id == "B") | any(.components[]; .name == "demo_p")' >/dev/null; }
check "demo_p fails over to B while A is cut off" wait_for 30 on_b
b_stored() { ctl --json ls B/demo_p | jq -e 'length > 0' >/dev/null; }
check "B stores demo_p with the new epoch" wait_for 30 b_stored
new_epoch=$(ctl --json ls B/demo_p | jq 'max_by(.seq) | .epoch')
check "the new epoch is higher ($old_epoch -> $new_epoch)" [ "$new_epoch" -gt "$old_epoch" ]
sleep 1 # A goes on running demo_p, unaware, and cannot store
check "A still runs demo_p during the partition" sh -c "! grep -q 'lost its ownership' $T_DIR/A.log"

ip -n "$NS_BR" link set vba up # heal
a_stopped() { log_has A "component demo_p stopped: node A lost its ownership"; }
check "after healing, A stops demo_p (lost its ownership)" wait_for 30 a_stopped
grep 'lost its ownership' "$T_DIR/A.log" | sed 's/^/# /'
check "an old-epoch commit is refused by the NAS (FAILED_PRECONDITION)" sh -c \
	"head -c 100 /dev/zero | ip netns exec $NS_CORE $CTL_BIN --manager $MGR_URL put A/demo_p --epoch $old_epoch 2>&1 | grep -q FAILED_PRECONDITION"
a_back() { ctl --json nodes | jq -e '.[] | select(.id == "A") | .state == "up"' >/dev/null; }
check "A attaches again" wait_for 30 a_back
once() {
	ctl --json nodes | jq -e '[.[].components[] | select(.name == "demo_p")] | length == 1' >/dev/null &&
	ctl --json nodes | jq -e '.[] | select(.id == "A") | all(.components[]; .name != "demo_p")' >/dev/null
}
check "exactly one copy of demo_p runs (on B)" once
stop_line=$(grep -n 'lost its ownership' "$T_DIR/A.log" | head -n1 | cut -d: -f1)
sleep 1
check "A stores no demo_p checkpoint after stopping it" sh -c \
	"! tail -n +$((stop_line + 1)) $T_DIR/A.log | grep -q 'checkpoint stored on NAS: A/demo_p'"
b_goes_on() { [ "$(ctl --json ls B/demo_p | jq length)" -ge 2 ]; }
check "B's checkpoints of demo_p go on" wait_for 30 b_goes_on

for s in A B manager nas; do
	check "$s exits 0 on SIGTERM" stop "$s" TERM
done
finish
