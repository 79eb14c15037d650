# Source me (". deploy/local/env.sh") from anywhere: puts the ckpt binaries
# that `bash deploy/local/run-demo.sh` (or `meson compile -C build`) built on
# PATH. CKPT_BUILD picks another build folder.
_ckpt_top=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/../.." && pwd)
_ckpt_b=${CKPT_BUILD:-$_ckpt_top/build}
if [ ! -x "$_ckpt_b/clients/ckptctl/ckptctl" ]; then
	echo "ckpt: no build in $_ckpt_b: run 'bash deploy/local/run-demo.sh' first" >&2
else
	PATH="$_ckpt_b/services/nas:$_ckpt_b/services/manager:$_ckpt_b/services/agent:$_ckpt_b/clients/ckptctl:$PATH"
	export PATH
fi
unset _ckpt_top _ckpt_b
