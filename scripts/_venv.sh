# Sourced by the scripts: make sure .venv exists and holds this project as pyproject.toml
# describes it. Reinstalls when pyproject.toml changes. Usage: ensure_venv [EXTRAS]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export PATH="$VENV/bin:$PATH"

ensure_venv() {
    local extras="${1:-}"
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "error: Vestige needs Python 3.11 or newer as '$python'; set PYTHON=/path/to/python3.11" >&2
        exit 2
    fi
    local want
    want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16) $extras"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating $VENV ..." >&2
        "$python" -m venv "$VENV"
    fi
    if [ "$(cat "$VENV/.vestige-installed" 2>/dev/null || true)" != "$want" ]; then
        echo "Installing vestige$([ -n "$extras" ] && echo " [$extras]") into .venv ..." >&2
        (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 \
            | grep -v "^WARNING: Location" >&2 || true)
        "$VENV/bin/python" -c "import vestige, sqlalchemy_continuum, alembic" \
            || { echo "error: installing into $VENV failed; see the pip output above" >&2; exit 1; }
        echo "$want" > "$VENV/.vestige-installed"
    fi
}
