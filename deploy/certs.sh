#!/usr/bin/env bash
# Makes a CA and the certificates of a ckpt cluster with the openssl CLI: one
# per identity, its role in a SAN URI (the only one in the certificate):
#
#   nas.crt        ckpt:nas          the NAS
#   manager.crt    ckpt:manager      the manager
#   operator.crt   ckpt:operator     ckptctl
#   node-ID.crt    ckpt:node:ID      the agent of node ID (one per ID given)
#
# each with its key (NAME.key, P-256, unencrypted, mode 0600) and ca.crt, the
# CA every binary takes as --tls-ca. Certificates serve both ends of a
# connection (extendedKeyUsage serverAuth and clientAuth): agents listen and
# dial. An existing CA in DIR is reused, so more nodes can be added later.
#
#   bash deploy/certs.sh [options] [NODE_ID...]
#     -o, --out DIR      where to write (default ./run/certs)
#     --days N           validity of the certificates (default 825)
#     --ca-days N        validity of a new CA (default 3650)
#     --only NAME        make only NAME: nas, manager, operator or node:ID
#                        (NODE_IDs are then ignored)
#     --expired          make the certificates already expired (for tests)
#     --k8s              also write DIR/k8s-secrets.yaml: one Secret of type
#                        kubernetes.io/tls per identity (ckpt-tls-nas,
#                        ckpt-tls-manager, ckpt-tls-operator, ckpt-tls-node-ID),
#                        keys ca.crt, tls.crt, tls.key
#     --namespace NS     the Secrets' namespace (default ckpt)
#     --node-ca          also make (or reuse) node-ca.crt/.key: an intermediate
#                        CA (CA:TRUE, pathlen:0, SAN URI ckpt:node-ca) that a
#                        node's init container uses to issue that node's own
#                        certificate (deploy/k8s/overlays/tls). Services accept
#                        what it issues only for ckpt:node:* roles. With --k8s:
#                        the Secret ckpt-node-ca (ca.crt, tls.crt, tls.key).
#     --via-node-ca      issue the certificates of this run through node-ca
#                        (their .crt holds the chain: the certificate, then
#                        node-ca.crt); for node ids, and for tests (a nas,
#                        manager or operator issued so is refused by every
#                        service)
#
# Example: bash deploy/certs.sh -o run/certs dummy_1 dummy_2, then
#   ckpt-nas --listen tls+tcp://127.0.0.1:7410 --tls-ca run/certs/ca.crt \
#            --tls-cert run/certs/nas.crt --tls-key run/certs/nas.key ...
set -euo pipefail
me=deploy/certs.sh
out=run/certs days=825 ca_days=3650 expired=0 k8s=0 ns=ckpt only="" node_ca=0 via=0
nodes=()
while [ $# -gt 0 ]; do
	case "$1" in
	-o | --out) out=$2; shift 2 ;;
	--days) days=$2; shift 2 ;;
	--ca-days) ca_days=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--expired) expired=1; shift ;;
	--k8s) k8s=1; shift ;;
	--namespace) ns=$2; shift 2 ;;
	--node-ca) node_ca=1; shift ;;
	--via-node-ca) via=1 node_ca=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "$me: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) nodes+=("$1"); shift ;;
	esac
done
command -v openssl >/dev/null || { echo "$me: openssl not found (apt-get install openssl)" >&2; exit 1; }
case "$days$ca_days" in *[!0-9]*) echo "$me: --days and --ca-days take a number" >&2; exit 2 ;; esac
for id in "${nodes[@]}"; do
	# The agent's own rule for node ids (key.h): 1-63 of [A-Za-z0-9._-].
	if ! [[ "$id" =~ ^[A-Za-z0-9._-]{1,63}$ ]]; then
		echo "$me: node id '$id': want 1-63 of [A-Za-z0-9._-]" >&2; exit 2
	fi
done

mkdir -p "$out"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s "$out/ca.key" ] || [ ! -s "$out/ca.crt" ]; then
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ca.key" 2>/dev/null
	openssl req -new -x509 -key "$out/ca.key" -out "$out/ca.crt" -days "$ca_days" \
	    -subj "/O=ckpt/CN=ckpt CA $(date -u +%Y%m%d%H%M%S)" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -addext "subjectKeyIdentifier=hash"
	chmod 0644 "$out/ca.crt"
	echo "$me: new CA $out/ca.crt"
fi

# One `openssl ca` database in tmp: it signs with explicit start and end
# dates, which --expired needs (openssl x509 -req only counts days from now).
mkdir "$tmp/db"
: >"$tmp/db/index.txt"
cat >"$tmp/ca.cnf" <<EOF
[ca]
default_ca = ckpt
[ckpt]
database = $tmp/db/index.txt
new_certs_dir = $tmp/db
serial = $tmp/db/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
organizationName = optional
EOF

# The node CA: signed by the CA, allowed to sign end certificates only.
if [ "$node_ca" = 1 ] && { [ ! -s "$out/node-ca.key" ] || [ ! -s "$out/node-ca.crt" ]; }; then
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/node-ca.key" 2>/dev/null
	openssl req -new -key "$out/node-ca.key" -out "$tmp/node-ca.csr" -subj "/O=ckpt/CN=ckpt:node-ca"
	cat >"$tmp/node-ca.ext" <<EOF
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectAltName = URI:ckpt:node-ca
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	openssl rand -hex 16 >"$tmp/db/serial"
	openssl ca -batch -notext -config "$tmp/ca.cnf" -cert "$out/ca.crt" -keyfile "$out/ca.key" \
	    -in "$tmp/node-ca.csr" -out "$out/node-ca.crt" -days "$ca_days" \
	    -extfile "$tmp/node-ca.ext" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	chmod 0644 "$out/node-ca.crt"
	echo "$me: new node CA $out/node-ca.crt (ckpt:node-ca: issues ckpt:node:* only)"
fi

# make NAME ROLE: NAME.key and NAME.crt with SAN URI:ckpt:ROLE.
make() {
	local name=$1 role=$2 start end signer=ca
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/$name.key" 2>/dev/null
	openssl req -new -key "$out/$name.key" -out "$tmp/$name.csr" -subj "/O=ckpt/CN=ckpt:$role"
	cat >"$tmp/$name.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:ckpt:$role
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	if [ "$expired" = 1 ]; then
		start=$(date -u -d '-3 days' +%Y%m%d%H%M%SZ) end=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
	else
		start=$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ) end=$(date -u -d "+$days days" +%Y%m%d%H%M%SZ)
	fi
	[ "$via" = 1 ] && signer=node-ca
	openssl rand -hex 16 >"$tmp/db/serial"
	openssl ca -batch -notext -config "$tmp/ca.cnf" -cert "$out/$signer.crt" \
	    -keyfile "$out/$signer.key" -in "$tmp/$name.csr" -out "$out/$name.crt" \
	    -startdate "$start" -enddate "$end" \
	    -extfile "$tmp/$name.ext" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	# Through the node CA: the chain up to the CA goes with the certificate.
	[ "$signer" = ca ] || cat "$out/$signer.crt" >>"$out/$name.crt"
	chmod 0644 "$out/$name.crt"
	echo "$me: $out/$name.crt (ckpt:$role)$([ "$expired" = 1 ] && echo ', expired')$(
		[ "$signer" = ca ] || echo ', issued by the node CA')"
}

names=()
if [ -n "$only" ]; then
	case "$only" in
	nas | manager | operator) make "$only" "$only"; names+=("$only") ;;
	node:*) id=${only#node:}
		[[ "$id" =~ ^[A-Za-z0-9._-]{1,63}$ ]] || { echo "$me: --only $only: bad node id" >&2; exit 2; }
		make "node-$id" "node:$id"; names+=("node-$id") ;;
	*) echo "$me: --only: want nas, manager, operator or node:ID" >&2; exit 2 ;;
	esac
else
	for r in nas manager operator; do make "$r" "$r"; names+=("$r"); done
	for id in "${nodes[@]}"; do make "node-$id" "node:$id"; names+=("node-$id"); done
fi

if [ "$k8s" = 1 ]; then
	b64() { base64 -w0 <"$1"; }
	{
		echo "# Made by $me: one Secret per identity (kubectl apply -f this file)."
		echo "# Keys ca.crt, tls.crt, tls.key: mount one per pod and point --tls-ca,"
		echo "# --tls-cert and --tls-key (CKPT_TLS_*) at them (README \"Security\")."
		[ "$node_ca" = 1 ] && names+=(node-ca)
		for n in "${names[@]}"; do
			echo "---"
			echo "apiVersion: v1"
			echo "kind: Secret"
			echo "metadata:"
			if [ "$n" = node-ca ]; then
				# Mounted only into the agents' init container (overlays/tls).
				echo "  name: ckpt-node-ca"
			else
				echo "  name: ckpt-tls-$(echo "$n" | tr '._' '--' | tr 'A-Z' 'a-z')"
			fi
			echo "  namespace: $ns"
			echo "  labels:"
			echo "    app.kubernetes.io/part-of: ckpt"
			echo "type: kubernetes.io/tls"
			echo "data:"
			echo "  ca.crt: $(b64 "$out/ca.crt")"
			echo "  tls.crt: $(b64 "$out/$n.crt")"
			echo "  tls.key: $(b64 "$out/$n.key")"
		done
	} >"$out/k8s-secrets.yaml"
	echo "$me: $out/k8s-secrets.yaml (namespace $ns)"
fi
