#!/usr/bin/env bash
# Prints deploy/k8s/base as `podman kube play` (podman 4.3) runs it: a NAS,
# a manager and one agent per NODE, as Pods (see topod.cjs for what changes
# and why). Needs kubectl (kustomize) and node; installs the pinned npm
# packages (deploy/k8s/tools) into MODULES (default build/k8s-tools).
#   bash deploy/k8s/podman/render.sh PREFIX IMAGE NODE[=VAR=VALUE,...]... > pods.yaml
#   podman network create PREFIX && podman kube play --network PREFIX pods.yaml
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
[ $# -ge 3 ] || { echo "usage: render.sh PREFIX IMAGE NODE[=VAR=VALUE,...]..." >&2; exit 2; }
modules=${MODULES:-$top/build/k8s-tools}
bash "$top/deploy/k8s/tools/install.sh" "$modules" >&2
kubectl kustomize "$top/deploy/k8s/base" | node "$here/topod.cjs" "$modules" "$@"
