# Sourced by the scripts: make sure .venv exists and holds this project as pyproject.toml
# describes it. Reinstalls when pyproject.toml changes. Usage: ensure_venv [EXTRAS]
# ensure_sa20_venv [EXTRAS] does the same for .venv-sa20, with SQLAlchemy 2.0 (<2.1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
SA20_VENV="$ROOT/.venv-sa20"
export PATH="$VENV/bin:$PATH"

ensure_venv() {
    _ensure_venv "$VENV" "${1:-}" ""
}

ensure_sa20_venv() {
    _ensure_venv "$SA20_VENV" "${1:-}" "SQLAlchemy<2.1"
}

# _ensure_venv DIR EXTRAS CONSTRAINT: the venv at DIR, with the extras, pip constrained
# by CONSTRAINT (one requirement, or empty).
_ensure_venv() {
    local venv="$1" extras="$2" constraint="$3"
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "error: Vestige needs Python 3.11 or newer as '$python'; set PYTHON=/path/to/python3.11" >&2
        exit 2
    fi
    local digest have
    digest="$( { cat "$ROOT/pyproject.toml"; echo "$constraint"; } | sha256sum | cut -c1-16)"
    if [ ! -x "$venv/bin/python" ]; then
        echo "Creating $venv ..." >&2
        "$python" -m venv "$venv"
    fi
    have="$(cat "$venv/.vestige-installed" 2>/dev/null || true)"
    # Up to date when pyproject.toml is unchanged and the extras asked for are installed
    # (an install with the dev extras also serves a plain one).
    if [ "$have" != "$digest $extras" ] && { [ -n "$extras" ] || [ "${have%% *}" != "$digest" ]; }; then
        echo "Installing vestige$([ -n "$extras" ] && echo " [$extras]")${constraint:+ ($constraint)} into $(basename "$venv") ..." >&2
        local constraints=()
        if [ -n "$constraint" ]; then
            echo "$constraint" > "$venv/constraints.txt"
            constraints=(-c "$venv/constraints.txt")
        fi
        (cd "$ROOT" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            ${constraints[@]+"${constraints[@]}"} -e "$spec" 2>&1 \
            | grep -v "^WARNING: Location" >&2 || true)
        "$venv/bin/python" -c "import vestige, sqlalchemy_continuum, alembic" \
            || { echo "error: installing into $venv failed; see the pip output above" >&2; exit 1; }
        echo "$digest $extras" > "$venv/.vestige-installed"
    fi
}
