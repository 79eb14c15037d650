#!/usr/bin/env bash
# The container image (deploy/container), with podman:
#   test_container.sh seed   builds the image (deploy/container/build.sh), then
#                            runs the seed scenario with the NAS, the manager
#                            and two agents each in its own container on a
#                            podman network; digests checked as in test_seed.sh
#   test_container.sh kube   the same scenario through `podman kube play` of
#                            the rendered Kubernetes manifests (see
#                            deploy/k8s/podman/README.md for what it takes)
# Skips (exit 77) with the reason where podman cannot run containers here.
# Suite `container`: not in tests/run.sh's default run (the first build makes
# the Debian base image and installs compilers in the build stage: minutes).
# CKPT_IMAGE (default localhost/ckpt:latest) names the image it builds.
. "$(dirname "$0")/../integration/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:?usage: test_container.sh seed|kube}
IMAGE=${CKPT_IMAGE:-localhost/ckpt:latest}
BASE=${CKPT_BASE_IMAGE:-localhost/ckpt-debian-base:bookworm}
[ -n "${CONTAINERS_CONF:-}" ] || export CONTAINERS_CONF="$top/deploy/container/containers.conf"
P="ckpt-it-$$" # prefix of every container, network and volume of this run

skip() { echo "SKIP: $*"; exit 77; }
command -v podman >/dev/null || skip "podman is not installed (apt-get install podman runc)"
command -v jq >/dev/null || skip "jq is not installed"
podman info >"$T_DIR/podman-info.log" 2>&1 || { cat "$T_DIR/podman-info.log"; skip "podman info fails: podman cannot run here"; }
if ! podman image exists "$BASE"; then
	[ "$(id -u)" -eq 0 ] || skip "the base image $BASE is missing and making it (debootstrap) needs root"
	command -v debootstrap >/dev/null || skip "the base image $BASE is missing and debootstrap is not installed"
fi

c_cleanup() {
	local c
	for c in $(podman ps -a --format '{{.Names}}' --filter "name=^$P-" 2>/dev/null); do
		podman logs "$c" >"$T_DIR/${c#$P-}.log" 2>&1
		podman rm -f -v -t 2 "$c" >/dev/null 2>&1
	done
	for c in $(podman pod ls --format '{{.Name}}' --filter "name=^$P-" 2>/dev/null); do
		podman pod rm -f "$c" >/dev/null 2>&1
	done
	podman network rm -f "$P" >/dev/null 2>&1
	for c in $(podman volume ls --format '{{.Name}}' --filter "name=^$P-" 2>/dev/null); do
		podman volume rm -f "$c" >/dev/null 2>&1
	done
	return 0
}
trap 'c_cleanup; t_cleanup' EXIT

echo "# building $IMAGE (deploy/container/build.sh)"
if ! bash "$top/deploy/container/build.sh" >"$T_DIR/build.log" 2>&1; then
	tail -n 40 "$T_DIR/build.log"
	if grep -q -E 'OCI runtime error|runc create failed|crun: |error setting rlimit' "$T_DIR/build.log"; then
		skip "podman cannot run build containers here (see the log above)"
	fi
	check "the image builds" false
	finish
	exit 1
fi
grep '^== built' "$T_DIR/build.log"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "# image $IMAGE: $((size / 1000000)) MB"
check "the image holds the four binaries" podman run --rm "$IMAGE" sh -c \
	'for b in ckpt-nas ckpt-manager ckpt-agent ckptctl; do command -v $b || exit 1; done'
check "the services run as ckpt (uid 10001), not root" \
	sh -c "[ \"\$(podman run --rm $IMAGE id -u)\" = 10001 ]"
check "no compiler in the final image" podman run --rm "$IMAGE" sh -c \
	'! command -v gcc && ! command -v cc && ! command -v meson'
check "/data is the image's volume" \
	sh -c "podman image inspect --format '{{json .Config.Volumes}}' $IMAGE | grep -q '\"/data\"'"

# ctl ARGS...: ckptctl of the image, in the manager's container.
MGR=$P-manager
# The containers talk plain tcp:// over podman's private network of this test
# (CKPT_ALLOW_PLAIN; TLS is covered by tests/integration/test_tls*.sh).
ctl() { podman exec -e CKPT_ALLOW_PLAIN=1 "$MGR" ckptctl --manager tcp://127.0.0.1:7420 "$@"; }

case "$mode" in
seed)
	podman network create "$P" >/dev/null
	run() { # NAME ARGS...: a detached container on the network, reachable as NAME
		local name=$1; shift
		podman run -d --name "$P-$name" --network "$P" --network-alias "$name" \
			-e CKPT_ALLOW_PLAIN=1 "$@" >/dev/null
	}
	roles="nas:$P-nas manager:$P-manager dummy_1:$P-dummy_1 dummy_2:$P-dummy_2"
	run nas -v "$P-data:/data" "$IMAGE" ckpt-nas --listen tcp://0.0.0.0:7410 --keep 1000000
	run manager "$IMAGE" ckpt-manager --listen tcp://0.0.0.0:7420 --events tcp://0.0.0.0:7421 \
		--nas tcp://nas:7410
	check "the NAS and the manager start" wait_for 30 ctl info
	for i in 1 2; do
		# Agents listen on every interface: the manager dials back the
		# address their connection comes from (the container's).
		run "dummy_$i" "$IMAGE" ckpt-agent --node "dummy_$i" --manager tcp://manager:7420 \
			--listen "tcp://0.0.0.0:743$i" --demo "demo_$i:256K" --interval-ms 500 --migrate-after 3s
	done
	;;
kube)
	command -v kubectl >/dev/null || skip "kubectl is not installed (it renders the manifests podman plays)"
	command -v node >/dev/null || skip "node is not installed (deploy/k8s/podman/topod.cjs)"
	# The seed's settings on top of the base's: demo components that swap,
	# checkpoints every 500 ms, and no retention (the checks read back the
	# checkpoints the restores came from).
	seed="CKPT_INTERVAL_MS=500,CKPT_MIGRATE_AFTER=3s"
	MODULES="$CKPT_BUILD/k8s-tools" bash "$top/deploy/k8s/podman/render.sh" "$P" "$IMAGE" \
		"dummy_1=CKPT_DEMO=demo_1:256K,$seed" "dummy_2=CKPT_DEMO=demo_2:256K,$seed" \
		>"$T_DIR/kube.yaml" 2>"$T_DIR/render.log" ||
		{ cat "$T_DIR/render.log"; check "the manifests render for podman kube play" false; finish; exit 1; }
	sed -i 's/CKPT_KEEP: "3"/CKPT_KEEP: "1000000"/' "$T_DIR/kube.yaml"
	podman network create "$P" >/dev/null
	podman kube play --start=false --network "$P" "$T_DIR/kube.yaml" >"$T_DIR/play.log" 2>&1
	rc=$?
	cat "$T_DIR/play.log"
	check "podman kube play accepts the rendered manifests (pods created)" [ $rc -eq 0 ]
	for pod in nas manager agent-1 agent-2; do
		check "pod $P-$pod exists" podman pod exists "$P-$pod"
	done
	check "the agents' node ids are set, their settings come from the ConfigMap" sh -c \
		"podman inspect --format '{{range .Config.Env}}{{println .}}{{end}}' $P-agent-1-agent | grep -qx CKPT_NODE=dummy_1 &&
		 podman inspect --format '{{range .Config.Env}}{{println .}}{{end}}' $P-agent-2-agent | grep -qx CKPT_MANAGER=tcp://$P-manager:7420"
	check "the NAS's /data is the claim $P-data" sh -c \
		"podman inspect --format '{{range .Mounts}}{{.Name}} {{.Destination}}{{println}}{{end}}' $P-nas-nas | grep -qx '$P-data /data'"
	for pod in nas manager agent-1 agent-2; do
		if ! podman pod start "$P-$pod" >"$T_DIR/start.log" 2>&1; then
			cat "$T_DIR/start.log"
			if grep -q 'setting rlimit' "$T_DIR/start.log"; then
				echo "# $T_PASS passed, $T_FAIL failed before starting the pods"
				[ "$T_FAIL" -eq 0 ] || exit 1
				skip "podman kube play (podman $(podman version --format '{{.Client.Version}}')) sets" \
					"RLIMIT_NOFILE to 1048576 in rootful pods, ignoring containers.conf, and this" \
					"host may not raise it (no CAP_SYS_RESOURCE): the pods cannot start here"
			fi
			check "pod $P-$pod starts" false
			finish
			exit 1
		fi
	done
	MGR=$P-manager-manager
	roles="nas:$P-nas-nas manager:$P-manager-manager dummy_1:$P-agent-1-agent dummy_2:$P-agent-2-agent"
	check "the NAS and the manager start" wait_for 60 ctl info
	;;
*) echo "usage: test_container.sh seed|kube" >&2; exit 2 ;;
esac

swapped() {
	ctl --json nodes | jq -e '
		(map(select(.id == "dummy_1"))[0].components | map(.name) == ["demo_2"]) and
		(map(select(.id == "dummy_2"))[0].components | map(.name) == ["demo_1"])'
}
check "both agents attach" wait_for 30 sh -c "[ \$(podman exec $MGR ckptctl --manager tcp://127.0.0.1:7420 --json nodes | jq length) -eq 2 ]"
check "the two components swap nodes" wait_for 60 swapped

ctl --json nodes >"$T_DIR/nodes.json"
ctl --json ls >"$T_DIR/ls.json"
for pair in "dummy_1 demo_2 dummy_2" "dummy_2 demo_1 dummy_1"; do
	set -- $pair
	node=$1 comp=$2 src=$3
	c=$(jq -c --arg n "$node" --arg c "$comp" \
		'map(select(.id == $n))[0].components[] | select(.name == $c)' "$T_DIR/nodes.json")
	rf_node=$(jq -r '.restored_from.node' <<<"$c")
	rf_seq=$(jq -r '.restored_from.seq' <<<"$c")
	rf_sha=$(jq -r '.restored_from.sha256' <<<"$c")
	st_sha=$(jq -r '.state_sha256' <<<"$c")
	addr=$(jq -r --arg n "$node" 'map(select(.id == $n))[0].address' "$T_DIR/nodes.json")
	check "$node is dialled at its container's address ($addr)" \
		sh -c "case '$addr' in tcp://0.0.0.0:*|tcp://127.*|null) exit 1 ;; esac"
	check "$comp on $node was restored from $src" [ "$rf_node" = "$src" ]
	check "$comp restored state digest equals the checkpoint's" [ "$st_sha" = "$rf_sha" ]
	ls_sha=$(jq -r --arg n "$src" --arg c "$comp" --argjson s "$rf_seq" \
		'map(select(.node == $n and .component == $c and .seq == $s))[0].sha256' "$T_DIR/ls.json")
	check "$comp restored from the stored checkpoint $src/$comp@$rf_seq" [ "$ls_sha" = "$rf_sha" ]
	ctl get "$src/$comp@$rf_seq" -o - >"$T_DIR/$comp.ckpt"
	got=$(sha256sum "$T_DIR/$comp.ckpt" | cut -d' ' -f1)
	check "ckptctl get of $src/$comp@$rf_seq matches sha256sum" [ "$got" = "$rf_sha" ]
done

# The containers by role.
cname() { tr ' ' '\n' <<<"$roles" | sed -n "s/^$1://p"; }
check "the NAS logged stores and retrievals" sh -c \
	"podman logs $(cname nas) 2>&1 | grep -q 'checkpoint stored' &&
	 podman logs $(cname nas) 2>&1 | grep -q 'checkpoint retrieved'"
check "the manager logged both migrations" sh -c \
	"[ \$(podman logs $MGR 2>&1 | grep -c 'migration of demo_. from') -ge 2 ]"

# Idle memory of each service in its container (what it holds once the swap
# is done): the RSS of the service process (tini's child) and the container's
# whole memory use as podman stats counts it.
for role in nas manager dummy_1 dummy_2; do
	c=$(cname $role)
	pid=$(podman inspect --format '{{.State.Pid}}' "$c")
	child=$(awk '{print $1}' "/proc/$pid/task/$pid/children" 2>/dev/null)
	rss=$(awk '/^VmRSS/ {print $2 " kB"}' "/proc/${child:-$pid}/status" 2>/dev/null)
	mem=$(podman stats --no-stream --format '{{.MemUsage}}' "$c" 2>/dev/null | head -n1)
	echo "# idle $role ($c): service RSS ${rss:-unknown}; container memory ${mem:-unknown}"
done

for role in dummy_1 dummy_2 manager nas; do
	c=$(cname $role)
	podman stop -t 20 "$c" >/dev/null 2>&1
	check "$role ($c) exits 0 on SIGTERM (podman stop)" \
		sh -c "[ \"\$(podman inspect --format '{{.State.ExitCode}}' $c)\" = 0 ]"
done
finish
