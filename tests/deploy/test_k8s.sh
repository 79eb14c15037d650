#!/usr/bin/env bash
# The Kubernetes manifests (deploy/k8s), offline: no cluster is needed.
#   test_k8s.sh render     kubectl kustomize renders base, overlays/k3s and
#                          overlays/tls, with the objects, wiring and settings
#                          expected; the TLS overlay's init container script
#                          issues a node certificate the services accept
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
check "kubectl kustomize renders deploy/k8s/overlays/tls" render tls "$K8S/overlays/tls"
[ -s "$T_DIR/base.yaml" ] && [ -s "$T_DIR/k3s.yaml" ] && [ -s "$T_DIR/tls.yaml" ] || { finish; exit 1; }

case "$mode" in
render)
	kinds() { grep '^kind:' "$T_DIR/$1.yaml" | sort | uniq -c | awk '{printf "%s=%s ", $3, $1}'; }
	for r in base k3s tls; do
		# The TLS overlay adds the ConfigMap of its script and an init container.
		ncm=4 nobj=10 nimg=3 scheme=tcp
		[ "$r" = tls ] && ncm=5 nobj=11 nimg=4 scheme=tls+tcp
		want="ConfigMap=$ncm DaemonSet=1 Deployment=1 Namespace=1 NetworkPolicy=1 Service=2 StatefulSet=1 "
		check "$r: the expected objects ($(kinds $r))" [ "$(kinds $r)" = "$want" ]
		check "$r: every object in the namespace ckpt" sh -c \
			"[ \$(grep -c '^  namespace: ckpt$' $T_DIR/$r.yaml) -eq $nobj ]"
		check "$r: the image is localhost/ckpt:latest, pulled only if missing" sh -c \
			"[ \$(grep -c 'image: localhost/ckpt:latest' $T_DIR/$r.yaml) -eq $nimg ] &&
			 [ \$(grep -c 'imagePullPolicy: IfNotPresent' $T_DIR/$r.yaml) -eq $nimg ]"
		check "$r: the agent's node id and address come from the downward API" sh -c \
			"grep -q 'fieldPath: spec.nodeName' $T_DIR/$r.yaml &&
			 grep -q 'fieldPath: status.podIP' $T_DIR/$r.yaml &&
			 grep -q 'value: $scheme://\$(POD_IP):7430' $T_DIR/$r.yaml"
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

	# TLS: no plain address and no CKPT_ALLOW_PLAIN=1 left; each Secret
	# mounted where it belongs, the node CA's only in the init container.
	check "tls: every service address is tls+tcp://, plain is not allowed" sh -c \
		"! grep -E 'CKPT_(LISTEN|EVENTS|NAS|MANAGER): tcp://' $T_DIR/tls.yaml &&
		 [ \$(grep -c 'CKPT_ALLOW_PLAIN: \"0\"' $T_DIR/tls.yaml) -eq 3 ] &&
		 [ \$(grep -c 'CKPT_TLS_CERT: /etc/ckpt-tls/tls.crt' $T_DIR/tls.yaml) -eq 3 ]"
	check "tls: the NAS mounts ckpt-tls-nas, the manager ckpt-tls-manager" sh -c \
		"awk '/^kind: /{k=\$2} /secretName: /{print k, \$2}' $T_DIR/tls.yaml | sort |
		 tr '\n' ' ' | grep -qx 'DaemonSet ckpt-node-ca Deployment ckpt-tls-manager StatefulSet ckpt-tls-nas '"
	mounts() { # CONTAINER: the volumes that container of the rendered DaemonSet mounts
		awk -v c="$1" '/^kind: /{k=$2; in_c=0}
			k == "DaemonSet" && /^      - / {in_c=0}
			k == "DaemonSet" && /^        name: / {in_c=($2 == c)}
			k == "DaemonSet" && in_c && /^        - mountPath: /{getline; print $2}' \
			"$T_DIR/tls.yaml" | sort | tr '\n' ' '
	}
	check "tls: the node CA's Secret is mounted by the init container only ($(mounts node-cert)/ $(mounts agent))" \
		sh -c "[ '$(mounts node-cert)' = 'issue node-ca tls tmp ' ] && ! echo '$(mounts agent)' | grep -q node-ca &&
		 echo '$(mounts agent)' | grep -q tls"
	# The init container's script, run here as the pod would run it (openssl
	# on the machine in place of the image's): its certificate chains to the
	# CA through the node CA, and ckpt-agent starts with it on TLS.
	if command -v openssl >/dev/null; then
		I="$T_DIR/issue"
		mkdir -p "$I/ca" "$I/out"
		bash "$top/deploy/certs.sh" -o "$I/certs" --node-ca >/dev/null 2>&1
		cp "$I/certs/ca.crt" "$I/ca/ca.crt"; cp "$I/certs/node-ca.crt" "$I/ca/tls.crt"
		cp "$I/certs/node-ca.key" "$I/ca/tls.key"
		check "tls: the init container's script issues ckpt:node:worker-1" sh -c \
			"CKPT_NODE=worker-1 CKPT_NODE_CA_DIR=$I/ca CKPT_TLS_DIR=$I/out TMPDIR=$I \
			 sh $K8S/overlays/tls/issue-node-cert.sh &&
			 openssl verify -CAfile $I/out/ca.crt -untrusted $I/ca/tls.crt $I/out/tls.crt &&
			 openssl x509 -in $I/out/tls.crt -noout -ext subjectAltName | grep -q 'URI:ckpt:node:worker-1'"
		check "tls: it refuses a node name that is no ckpt node id" sh -c \
			"! CKPT_NODE='a b' CKPT_NODE_CA_DIR=$I/ca CKPT_TLS_DIR=$I/out TMPDIR=$I \
			 sh $K8S/overlays/tls/issue-node-cert.sh 2>/dev/null"
		long=$(printf 'n%.0s' $(seq 64))
		check "tls: it refuses a node name longer than 63 characters" sh -c \
			"! CKPT_NODE=$long CKPT_NODE_CA_DIR=$I/ca CKPT_TLS_DIR=$I/out TMPDIR=$I \
			 sh $K8S/overlays/tls/issue-node-cert.sh 2>$I/long.err && grep -q 'at most 63' $I/long.err"
		P=$(free_port)
		start issued "$AGENT_BIN" --node worker-1 --manager "tls+tcp://127.0.0.1:$(free_port)" \
			--listen "tls+tcp://127.0.0.1:$P" --tls-ca "$I/out/ca.crt" --tls-cert "$I/out/tls.crt" \
			--tls-key "$I/out/tls.key"
		check "tls: ckpt-agent starts on TLS with the issued certificate" \
			wait_for 10 log_has issued "listening on tls+tcp://127.0.0.1:$P"
		stop issued TERM
	fi

	# Every CKPT_* of a ConfigMap is a setting of the service that reads it
	# (a misspelt variable would be ignored without a word).
	settings() { # RENDER: "configmap KEY" lines
		awk 'function flush(i) { if (kind == "ConfigMap") for (i = 1; i <= n; i++) print name, keys[i]
				kind = ""; name = ""; n = 0 }
			/^---/ {flush()} /^kind: / {kind = $2} /^  name: / {name = $2}
			/^  CKPT_[A-Z0-9_]*:/ {sub(":", "", $1); keys[++n] = $1}
			END {flush()}' "$1"
	}
	for r in base k3s tls; do
		while read -r cm key; do
			case "$cm" in
			ckpt-nas-*) bin=$NAS_BIN ;;
			ckpt-manager-*) bin=$MGR_BIN ;;
			ckpt-agent-*) bin=$AGENT_BIN ;;
			ckpt-issue-node-cert-*) continue ;; # a script, no settings
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
	for r in base k3s tls; do
		echo "# --- deploy/k8s/$([ $r = base ] && echo base || echo overlays/$r)"
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
	check "yamllint -s: the renders of base, overlays/k3s and overlays/tls" \
		yamllint -s -c "$K8S/.yamllint.yaml" "$T_DIR/base.yaml" "$T_DIR/k3s.yaml" "$T_DIR/tls.yaml"
	;;
*) echo "usage: test_k8s.sh render|validate|lint" >&2; exit 2 ;;
esac
finish
