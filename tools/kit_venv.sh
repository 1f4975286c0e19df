#!/usr/bin/env bash
# Create or reuse the side environment with Isaac Sim's Kit kernel (isaacsim-kernel, ~400 MB) that the Kit
# extension test runs (tests/test_kit_extension.py). It is apart from the project's environment: the kernel is
# Kit's own Python runtime, not a library the project imports; the test starts it with the project's
# site-packages on PYTHONPATH. Shared between clones under the user cache, like tools/venv.sh's. Prints its path.
set -euo pipefail

KIT_VERSION=6.2.0.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# the same interpreter as the project's environment: Kit's Python must load the project's compiled wheels
PY=$("$root/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')/bin/python3.12
venv_root=${VT_REFINE_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/vt_refine/venvs}
venv="$venv_root/kit-$KIT_VERSION"
mkdir -p "$venv_root"
(
    flock 9
    if [ ! -f "$venv/.vt_refine_complete" ]; then
        echo "[vt_refine] creating the Kit kernel environment in $venv (isaacsim-kernel $KIT_VERSION, ~400 MB)" >&2
        rm -rf "$venv"
        "$PY" -m venv "$venv"
        "$venv/bin/python" -m pip install --disable-pip-version-check -q "isaacsim-kernel==$KIT_VERSION" >&2
        date -u +%FT%TZ > "$venv/.vt_refine_complete"
    fi
) 9>"$venv_root/.lock-kit-$KIT_VERSION"
echo "$venv"
