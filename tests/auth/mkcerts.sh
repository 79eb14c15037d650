#!/usr/bin/env bash
# Certificates for the identity tests (openssl CLI), into DIR:
#   ca.pem ca.key             the deployment's CA (EC P-256)
#   ca2.pem ca2.key           another CA
#   NAME.pem NAME.key         signed by ca, one role each: node-n1 (ckpt:node:n1),
#                             node-n2, nas, manager, operator
#   other-n1                  ckpt:node:n1 signed by ca2
#   norole                    only a DNS name and an https: URI
#   nosan                     no subjectAltName at all
#   tworoles                  ckpt:node:n1 and ckpt:operator
#   badrole                   ckpt:boss
#   rsa-operator, ed-operator RSA 2048 and Ed25519 keys
#   int.pem                   an intermediate CA under ca; chain-n3.pem holds
#                             node-n3 (ckpt:node:n3, signed by int) then int.pem
#   nodeca.pem                a node CA under ca (SAN URI ckpt:node-ca, pathlen 0);
#                             chain-nodeca-n4.pem, chain-nodeca-nas.pem,
#                             chain-nodeca-manager.pem and
#                             chain-nodeca-operator.pem: a leaf it signed, then it
# Every leaf is valid for 2 days from now (tests check expiry by verifying at
# a later time).
# Usage: bash tests/auth/mkcerts.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
exec 3>&2 2>mkcerts.log # openssl is chatty; the log stays for a failure

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }

ca() { # name
	ec "$1"
	openssl req -x509 -new -key "$1.key" -subj "/CN=ckpt test $1" -days 30 -out "$1.pem"
}

# leaf NAME CA EXT [KEYALG]
leaf() {
	local name=$1 ca=$2 ext=$3
	case ${4:-ec} in
	ec) ec "$name" ;;
	rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$name.key" ;;
	ed) openssl genpkey -algorithm ED25519 -out "$name.key" ;;
	esac
	openssl req -new -key "$name.key" -subj "/CN=$name" -out "$name.csr"
	printf '%b\n' "$ext" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
		-days 2 -extfile "$name.ext" -out "$name.pem"
	rm -f "$name.csr" "$name.ext"
}

ca ca
ca ca2
bc='basicConstraints=critical,CA:FALSE'
for r in node:n1 node:n2 nas manager operator; do
	leaf "${r/:/-}" ca "$bc\nsubjectAltName=URI:ckpt:$r"
done
leaf other-n1 ca2 "$bc\nsubjectAltName=URI:ckpt:node:n1"
leaf norole ca "$bc\nsubjectAltName=DNS:example.org,URI:https://example.org/"
leaf nosan ca "$bc"
leaf tworoles ca "$bc\nsubjectAltName=URI:ckpt:node:n1,URI:ckpt:operator"
leaf badrole ca "$bc\nsubjectAltName=URI:ckpt:boss"
leaf rsa-operator ca "$bc\nsubjectAltName=URI:ckpt:operator" rsa
leaf ed-operator ca "$bc\nsubjectAltName=URI:ckpt:operator" ed
leaf int ca 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign'
leaf node-n3 int "$bc\nsubjectAltName=URI:ckpt:node:n3"
cat node-n3.pem int.pem >chain-n3.pem
leaf nodeca ca 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectAltName=URI:ckpt:node-ca'
for r in node:n4 nas manager operator; do
	leaf "nodeca-${r/:/-}" nodeca "$bc\nsubjectAltName=URI:ckpt:$r"
	cat "nodeca-${r/:/-}.pem" nodeca.pem >"chain-nodeca-${r/:/-}.pem"
done
exec 2>&3
