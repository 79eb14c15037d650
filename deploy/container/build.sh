#!/usr/bin/env bash
# Builds the ckpt image (deploy/container/Containerfile) with podman, with no
# container registry: the Debian 12 base image is made here from Debian's
# archive (debootstrap --variant=minbase, then podman import) unless it exists.
#   bash deploy/container/build.sh                 builds ckpt:latest
#   bash deploy/container/build.sh --rebuild-base  makes the base image anew first
# Environment: CKPT_IMAGE (default localhost/ckpt:latest), CKPT_BASE_IMAGE
# (default localhost/ckpt-debian-base:bookworm), CKPT_DEBIAN_MIRROR (default
# http://deb.debian.org/debian), CKPT_DEBIAN_SECURITY (default
# http://deb.debian.org/debian-security). Needs root (debootstrap, rootful
# podman). Unless CONTAINERS_CONF is set, podman reads deploy/container/
# containers.conf: the runc runtime and finite default ulimits, which Debian
# 12's podman needs on hosts where crun refuses the cgroup setup.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
me=deploy/container/build.sh
image=${CKPT_IMAGE:-localhost/ckpt:latest}
base=${CKPT_BASE_IMAGE:-localhost/ckpt-debian-base:bookworm}
mirror=${CKPT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${CKPT_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
rebuild_base=0
case "${1:-}" in
"") ;;
--rebuild-base) rebuild_base=1 ;;
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: bash $me [--rebuild-base]" >&2; exit 2 ;;
esac
command -v podman >/dev/null || { echo "$me: podman is not installed (apt-get install podman runc)" >&2; exit 1; }
[ -n "${CONTAINERS_CONF:-}" ] || export CONTAINERS_CONF="$here/containers.conf"

if [ $rebuild_base -eq 1 ] || ! podman image exists "$base"; then
	command -v debootstrap >/dev/null || { echo "$me: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
	[ "$(id -u)" -eq 0 ] || { echo "$me: making the base image needs root (debootstrap)" >&2; exit 1; }
	rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/ckpt-rootfs.XXXXXX")
	trap 'rm -rf "$rootfs"' EXIT
	echo "== making the base image $base from $mirror (debootstrap, about two minutes)"
	debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
		tail -n 20 "$rootfs.log" >&2; echo "$me: debootstrap failed (log: $rootfs.log)" >&2; exit 1; }
	rm -f "$rootfs.log"
	cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
	# A slim base, as a container image should be: no recommends, no
	# documentation or translations, no package caches.
	printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
		>"$rootfs/etc/apt/apt.conf.d/90ckpt-slim"
	printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n' \
		>"$rootfs/etc/dpkg/dpkg.cfg.d/90ckpt-slim"
	find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
		"$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
	tar --numeric-owner -C "$rootfs" -c . |
		podman import --change 'CMD ["/bin/bash"]' --message "debootstrap minbase bookworm" - "$base" >/dev/null
	rm -rf "$rootfs"
	trap - EXIT
fi

echo "== building $image from $top (deploy/container/Containerfile on $base)"
podman build --build-arg "BASE=$base" -f "$here/Containerfile" -t "$image" "$top"
echo "== built $image: $(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}')"
