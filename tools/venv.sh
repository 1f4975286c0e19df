#!/usr/bin/env bash
# Create or reuse the project's Python 3.12 environment and link it as ./.venv.
#
# The Isaac Lab environment is ~8 GB, so it is not built inside every clone: it lives under the user
# cache, keyed by a hash of the dependency list in pyproject.toml, and every clone links to it.
# A second call with unchanged dependencies only re-points the editable install when needed (seconds).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

is_py312() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' >/dev/null 2>&1; }

find_python312() {
    local c
    if [ -n "${PYTHON:-}" ]; then
        is_py312 "$PYTHON" && { echo "$PYTHON"; return 0; }
        echo "error: PYTHON=$PYTHON is not a Python 3.12 interpreter." >&2
        return 1
    fi
    if command -v uv >/dev/null 2>&1; then
        c=$(uv python find 3.12 2>/dev/null || true)
        [ -n "$c" ] && is_py312 "$c" && { echo "$c"; return 0; }
    fi
    for c in python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12 \
             "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
        if command -v "$c" >/dev/null 2>&1 && is_py312 "$c"; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if ! PY=$(find_python312); then
    cat >&2 <<'MSG'
error: vt_refine needs Python 3.12 (Isaac Lab 3.0 supports no other version), and none was found.
Install it with one of:
    uv python install 3.12
    pyenv install 3.12            (then rerun; pyenv's versions are found automatically)
    sudo apt-get install python3.12 python3.12-venv
or point at an interpreter:  make test PYTHON=/path/to/python3.12
MSG
    exit 1
fi

key=$("$PY" - <<'PYCODE'
import hashlib, json, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
spec = {"deps": project["dependencies"], "extras": project.get("optional-dependencies", {}),
        "python": sys.version.split()[0]}
print(hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12])
PYCODE
)

venv_root=${VT_REFINE_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/vt_refine/venvs}
venv="$venv_root/py312-$key"
mkdir -p "$venv_root"

install() {  # install($pip_args...) with uv when present, else pip
    if command -v uv >/dev/null 2>&1; then
        uv pip install --python "$venv/bin/python" "$@"
    else
        "$venv/bin/python" -m pip install --disable-pip-version-check "$@"
    fi
}

(
    # one builder at a time per key; a build that died half-way has no marker and is redone
    flock 9
    if [ ! -f "$venv/.vt_refine_complete" ]; then
        echo "[vt_refine] creating the Python 3.12 environment in $venv (Isaac Lab ~8 GB; minutes the first time)"
        rm -rf "$venv"
        if command -v uv >/dev/null 2>&1; then uv venv --python "$PY" "$venv"; else "$PY" -m venv "$venv"; fi
        install -e ".[test]"
        date -u +%FT%TZ > "$venv/.vt_refine_complete"
    fi
) 9>"$venv_root/.lock-$key"

# .venv: a link to the shared environment, unless the user put a real environment there
if [ -L .venv ] || [ ! -e .venv ]; then
    ln -sfn "$venv" .venv
else
    venv="$root/.venv"
fi

# The editable install must point at *this* clone (clones share the environment).
stamp="$root|$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$venv/.vt_refine_editable" 2>/dev/null)" != "$stamp" ]; then
    echo "[vt_refine] installing vt_refine (editable) from $root"
    install --no-deps -e . >/dev/null
    echo "$stamp" > "$venv/.vt_refine_editable"
fi

# keep the disk in check: drop environments of older dependency lists, keeping the newest two
ls -1dt "$venv_root"/py312-* 2>/dev/null | tail -n +3 | while read -r old; do
    [ "$old" = "$venv" ] || rm -rf "$old"
done
