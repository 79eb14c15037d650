#!/usr/bin/env bash
# Installs the Debian 12 packages ckpt needs to build, test and run, if any is
# missing. Uses sudo when not root.
set -euo pipefail
PKGS=(build-essential clang meson ninja-build pkg-config cmake
	libnng-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev lmdb-utils
	libssl-dev libjansson-dev libzstd-dev libxxhash-dev libinih-dev check
	python3 jq yamllint
	redis-server redis-tools etcd-server etcd-client
	curl prometheus  # curl, promtool: test_metrics scrapes and checks the --http endpoints
	openssl)  # deploy/certs.sh (TLS certificates: run-demo.sh --tls, test_tls, seed_tls)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ckpt: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
