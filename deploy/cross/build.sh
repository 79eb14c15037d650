#!/usr/bin/env bash
# deploy/cross/build.sh ARCH: cross-builds ckpt for an ARM board into
# build-ARCH, ARCH aarch64 (arm64) or armhf (32-bit ARMv7, hard float).
# Installs what it needs from Debian 12 (idempotent, as root): the cross
# compiler, the target's -dev packages through multiarch (protoc-c stays the
# host's), and qemu-user to run the tests. Where binfmt_misc can be mounted it
# registers qemu, so the unit tests that start target binaries (exec, libckpt)
# run too. Then:
#   meson test -C build-ARCH --suite unit --suite cross
# Options: --no-install (packages already there), --release (buildtype release),
# --static (build-ARCH-static: every program fully static, minsize, LTO: copy
# one file to the board, no runtime library needed there).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: $0 aarch64|armhf [--no-install] [--release] [--static]" >&2; exit 2; }
[ $# -ge 1 ] || usage
arch=$1; shift
install=1 buildtype=debugoptimized static=0
for a in "$@"; do
	case $a in
	--no-install) install=0 ;;
	--release) buildtype=release ;;
	--static) static=1 ;;
	*) usage ;;
	esac
done
case $arch in
aarch64) deb=arm64 triplet=aarch64-linux-gnu qemu=qemu-aarch64 ;;
armhf) deb=armhf triplet=arm-linux-gnueabihf qemu=qemu-arm ;;
*) usage ;;
esac

# The host's build tools and the target's libraries: .ci/run's list, for $deb.
host_pkgs="build-essential meson ninja-build pkg-config protobuf-c-compiler gcc-$triplet
	qemu-user qemu-user-static binfmt-support jq python3"
target_pkgs=""
for p in libnng-dev libprotobuf-c-dev liblmdb-dev libssl-dev libjansson-dev libzstd-dev libxxhash-dev \
	libinih-dev check; do
	target_pkgs="$target_pkgs $p:$deb"
done

missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
			echo "$p"
	done
}

if [ "$install" = 1 ]; then
	need=$(missing $host_pkgs $target_pkgs)
	if [ -n "$need" ]; then
		export DEBIAN_FRONTEND=noninteractive
		dpkg --print-foreign-architectures | grep -qx "$deb" || dpkg --add-architecture "$deb"
		apt-get -o DPkg::Lock::Timeout=600 update -q
		# --no-install-recommends: a target package's recommends would pull
		# in target tools that conflict with the host's.
		apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
			$host_pkgs $target_pkgs
	fi
fi

# binfmt_misc: the kernel hands a target binary to qemu by itself. The unit
# tests of the exec driver and of libckpt start target programs, which only
# works so; the integration tests pass the emulator explicitly instead.
bf=/proc/sys/fs/binfmt_misc
if [ ! -e "$bf/register" ]; then
	mount -t binfmt_misc binfmt_misc "$bf" 2>/dev/null || true
fi
if [ -e "$bf/register" ] && [ ! -e "$bf/$qemu" ] && command -v update-binfmts >/dev/null; then
	update-binfmts --enable "$qemu" 2>/dev/null || true
fi
if [ -e "$bf/$qemu" ]; then
	echo "build.sh: binfmt_misc runs $arch binaries through $(sed -n 's/^interpreter //p' "$bf/$qemu")"
else
	echo "build.sh: no binfmt_misc for $arch here: the unit tests that start target" \
		"programs (agent_exec, agent_local, agent_drv_lib) fail; the others run under $qemu"
fi

dir=build-$arch
extra=()
if [ "$static" = 1 ]; then
	dir=build-$arch-static buildtype=minsize
	extra=(-Db_lto=true -Dprefer_static=true -Dstatic=true)
fi
if [ ! -f "$dir/build.ninja" ]; then
	meson setup "$dir" --cross-file "deploy/cross/$arch.ini" --buildtype "$buildtype" "${extra[@]}"
else
	meson configure "$dir" --buildtype "$buildtype" >/dev/null
fi
meson compile -C "$dir"
file "$dir/services/agent/ckpt-agent"
