#!/bin/sh
# The agent pod's init container (tls.yaml): issues this node's certificate,
# ckpt:node:$CKPT_NODE, with the node CA (Secret ckpt-node-ca, mounted here
# only) into the pod's memory-backed emptyDir, where the agent reads it:
#   $CKPT_TLS_DIR/tls.key   a new P-256 key, made in the pod, never leaves it
#   $CKPT_TLS_DIR/tls.crt   the node's certificate, then the node CA's
#   $CKPT_TLS_DIR/ca.crt    the deployment's CA (--tls-ca of every service)
# The services accept a certificate issued through the node CA (SAN URI
# ckpt:node-ca) for ckpt:node:* roles only: README "Kubernetes with TLS".
set -eu
umask 077
ca=${CKPT_NODE_CA_DIR:-/etc/ckpt-node-ca}
out=${CKPT_TLS_DIR:-/etc/ckpt-tls}
tmp=${TMPDIR:-/tmp}
node=${CKPT_NODE:?CKPT_NODE: the node name (downward API spec.nodeName)}
# The agent's rule for node ids (common/limit.h, LIMIT_NAME_MAX):
# 1-63 of [A-Za-z0-9._-]. A Kubernetes node name may have up to 253
# characters: refuse a longer one here rather than issue a certificate
# for an id the agent refuses.
case "$node" in
*[!A-Za-z0-9._-]*)
    echo "issue-node-cert: '$node' is no ckpt node id" \
        "(want 1-63 of [A-Za-z0-9._-])" >&2
    exit 1 ;;
esac
if [ "${#node}" -gt 63 ]; then
    echo "issue-node-cert: node name '$node' has ${#node} characters;" \
        "a ckpt node id has at most 63 (set a shorter CKPT_NODE)" >&2
    exit 1
fi
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/tls.key"
openssl req -new -key "$out/tls.key" -subj "/O=ckpt/CN=ckpt:node:$node" -out "$tmp/node.csr"
printf '%s\n' 'basicConstraints = critical,CA:FALSE' \
    'keyUsage = critical,digitalSignature,keyAgreement' \
    'extendedKeyUsage = serverAuth,clientAuth' "subjectAltName = URI:ckpt:node:$node" \
    'subjectKeyIdentifier = hash' 'authorityKeyIdentifier = keyid' >"$tmp/node.ext"
openssl rand -hex 16 >"$tmp/serial"
openssl x509 -req -in "$tmp/node.csr" -CA "$ca/tls.crt" -CAkey "$ca/tls.key" \
    -CAserial "$tmp/serial" -days "${CKPT_NODE_CERT_DAYS:-825}" -sha256 \
    -extfile "$tmp/node.ext" -out "$tmp/node.crt"
cat "$tmp/node.crt" "$ca/tls.crt" >"$out/tls.crt"
cp "$ca/ca.crt" "$out/ca.crt"
chmod 0444 "$out/tls.crt" "$out/ca.crt"
chmod 0400 "$out/tls.key"
rm -f "$tmp/node.csr" "$tmp/node.ext" "$tmp/node.crt" "$tmp/serial"
echo "issue-node-cert: ckpt:node:$node issued by the node CA into $out"
