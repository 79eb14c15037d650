#!/usr/bin/env bash
# The Kubernetes manifests (deploy/k8s), offline: no cluster is needed.
#   test_k8s.sh render     kubectl kustomize renders base and overlays/k3s,
#                          with the objects, wiring and settings expected
#   test_k8s.sh validate   every rendered object passes the Kubernetes schema
#                          (npm kubernetes-models, pinned in deploy/k8s/tools)
#   test_k8s.sh lint       yamllint (strict) on the sources and the renders
# A missing tool (kubectl, node and npm, yamllint) skips the test (exit 77)
# and says which. CKPT_BUILD: the meson build folder (the npm packages go to
# CKPT_BUILD/k8s-tools).
. "$(dirname "$0")/../integration/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
K8S="$top/deploy/k8s"
mode=${1:?usage: test_k8s.sh render|validate|lint}

skip() { echo "SKIP: $*"; exit 77; }
need() { command -v "$1" >/dev/null || skip "$1 is not installed ($2)"; }

need kubectl "kubectl kustomize renders the manifests; install kubectl"
render() { # NAME DIR
	kubectl kustomize "$2" >"$T_DIR/$1.yaml" 2>"$T_DIR/$1.err" ||
		{ cat "$T_DIR/$1.err"; return 1; }
}
check "kubectl kustomize renders deploy/k8s/base" render base "$K8S/base"
check "kubectl kustomize renders deploy/k8s/overlays/k3s" render k3s "$K8S/overlays/k3s"
[ -s "$T_DIR/base.yaml" ] && [ -s "$T_DIR/k3s.yaml" ] || { finish; exit 1; }

case "$mode" in
render)
	kinds() { grep '^kind:' "$T_DIR/$1.yaml" | sort | uniq -c | awk '{printf "%s=%s ", $3, $1}'; }
	want="ConfigMap=4 DaemonSet=1 Deployment=1 Namespace=1 NetworkPolicy=1 Service=2 StatefulSet=1 "
	for r in base k3s; do
		check "$r: the expected objects ($(kinds $r))" [ "$(kinds $r)" = "$want" ]
		check "$r: every object in the namespace ckpt" sh -c \
			"[ \$(grep -c '^  namespace: ckpt$' $T_DIR/$r.yaml) -eq 10 ]"
		check "$r: the image is localhost/ckpt:latest, pulled only if missing" sh -c \
			"[ \$(grep -c 'image: localhost/ckpt:latest' $T_DIR/$r.yaml) -eq 3 ] &&
			 [ \$(grep -c 'imagePullPolicy: IfNotPresent' $T_DIR/$r.yaml) -eq 3 ]"
		check "$r: the agent's node id and address come from the downward API" sh -c \
			"grep -q 'fieldPath: spec.nodeName' $T_DIR/$r.yaml &&
			 grep -q 'fieldPath: status.podIP' $T_DIR/$r.yaml &&
			 grep -q 'value: tcp://\$(POD_IP):7430' $T_DIR/$r.yaml"
		check "$r: probes on /healthz and /readyz" sh -c \
			"[ \$(grep -c 'path: /healthz' $T_DIR/$r.yaml) -eq 4 ] &&
			 [ \$(grep -c 'path: /readyz' $T_DIR/$r.yaml) -eq 3 ]"
		check "$r: Prometheus scrapes the three services" sh -c \
			"[ \$(grep -c 'prometheus.io/scrape: \"true\"' $T_DIR/$r.yaml) -eq 3 ]"
		check "$r: the agents mount their component specs" \
			grep -q 'name: ckpt-agent-components-' "$T_DIR/$r.yaml"
	done
	check "k3s: the NAS's volume is local-path, 2Gi" sh -c \
		"grep -q 'storageClassName: local-path' $T_DIR/k3s.yaml && grep -q 'storage: 2Gi' $T_DIR/k3s.yaml"
	check "k3s: small limits (NAS 256Mi, manager 96Mi, agent 192Mi)" sh -c \
		"grep -q 'memory: 256Mi' $T_DIR/k3s.yaml && grep -q 'memory: 96Mi' $T_DIR/k3s.yaml &&
		 grep -q 'memory: 192Mi' $T_DIR/k3s.yaml && ! grep -q 'memory: 1Gi' $T_DIR/k3s.yaml"
	check "k3s: the merged settings (CKPT_MAP_MAX 1536M below the 2Gi volume)" \
		grep -q 'CKPT_MAP_MAX: 1536M' "$T_DIR/k3s.yaml"

	# Every CKPT_* of a ConfigMap is a setting of the service that reads it
	# (a misspelt variable would be ignored without a word).
	settings() { # RENDER: "configmap KEY" lines
		awk 'function flush(i) { if (kind == "ConfigMap") for (i = 1; i <= n; i++) print name, keys[i]
				kind = ""; name = ""; n = 0 }
			/^---/ {flush()} /^kind: / {kind = $2} /^  name: / {name = $2}
			/^  CKPT_[A-Z0-9_]*:/ {sub(":", "", $1); keys[++n] = $1}
			END {flush()}' "$1"
	}
	for r in base k3s; do
		while read -r cm key; do
			case "$cm" in
			ckpt-nas-*) bin=$NAS_BIN ;;
			ckpt-manager-*) bin=$MGR_BIN ;;
			ckpt-agent-*) bin=$AGENT_BIN ;;
			*) check "$r: $key of ConfigMap $cm belongs to a service" false; continue ;;
			esac
			if [ "$key" = CKPT_HTTP ] && ! "$bin" --help | grep -q 'env CKPT_HTTP;'; then
				echo "# $r: $key: $(basename "$bin") of this build has no --http yet: not checked"
				continue
			fi
			check "$r: $key is a setting of $(basename "$bin")" \
				sh -c "'$bin' --help | grep -q 'env $key;'"
		done < <(settings "$T_DIR/$r.yaml")
	done
	;;
validate)
	need node "the validator runs under Node.js 20"
	need npm "npm installs the pinned kubernetes-models"
	tools="$CKPT_BUILD/k8s-tools"
	bash "$K8S/tools/install.sh" "$tools" >"$T_DIR/npm.log" 2>&1 ||
		{ cat "$T_DIR/npm.log"; skip "npm could not install deploy/k8s/tools' packages (registry unreachable?)"; }
	for r in base k3s; do
		echo "# --- deploy/k8s/$([ $r = base ] && echo base || echo overlays/k3s)"
		check "$r: every object validates against the Kubernetes schema" \
			node "$K8S/tools/validate.cjs" "$tools" "$T_DIR/$r.yaml"
	done
	# The validator itself refuses what it should: a misspelt field, a bad
	# quantity, a kind that does not exist.
	sed '0,/imagePullPolicy:/s//imagePullPolicyy:/' "$T_DIR/base.yaml" >"$T_DIR/typo.yaml"
	sed '0,/memory: 128Mi/s//memory: 128 MiB/' "$T_DIR/base.yaml" >"$T_DIR/quantity.yaml"
	sed '0,/^kind: DaemonSet/s//kind: DaemonSett/' "$T_DIR/base.yaml" >"$T_DIR/kind.yaml"
	for bad in typo:'imagePullPolicyy: unknown field' quantity:'must match format "quantity"' \
		kind:'kind DaemonSett is not in apps/v1'; do
		f=${bad%%:*} why=${bad#*:}
		rc=0
		node "$K8S/tools/validate.cjs" "$tools" "$T_DIR/$f.yaml" >"$T_DIR/$f.out" 2>&1 || rc=$?
		check "the validator refuses a $f ($why)" sh -c \
			"[ $rc -eq 1 ] && grep -F -q -- '$why' '$T_DIR/$f.out'"
	done
	;;
lint)
	need yamllint "apt-get install yamllint"
	check "yamllint -s: deploy/k8s sources" \
		sh -c "cd '$K8S' && yamllint -s -c .yamllint.yaml ."
	check "yamllint -s: the renders of base and overlays/k3s" \
		yamllint -s -c "$K8S/.yamllint.yaml" "$T_DIR/base.yaml" "$T_DIR/k3s.yaml"
	;;
*) echo "usage: test_k8s.sh render|validate|lint" >&2; exit 2 ;;
esac
finish
