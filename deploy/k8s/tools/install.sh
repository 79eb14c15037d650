#!/usr/bin/env bash
# Installs the validator's npm packages (package-lock.json: exact versions and
# digests) into DIR/node_modules, once per change of the lock file:
#   bash deploy/k8s/tools/install.sh DIR
# Needs node (20 or later) and npm, and the npm registry for the first run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: install.sh DIR}
mkdir -p "$dir"
if [ -d "$dir/node_modules" ] && cmp -s "$here/package-lock.json" "$dir/package-lock.json"; then
	exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dir/"
(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
