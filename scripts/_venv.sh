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
    local digest have
    digest="$(sha256sum < "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating $VENV ..." >&2
        "$python" -m venv "$VENV"
    fi
    have="$(cat "$VENV/.vestige-installed" 2>/dev/null || true)"
    # Up to date when pyproject.toml is unchanged and the extras asked for are installed
    # (an install with the dev extras also serves a plain one).
    if [ "$have" != "$digest $extras" ] && { [ -n "$extras" ] || [ "${have%% *}" != "$digest" ]; }; then
        echo "Installing vestige$([ -n "$extras" ] && echo " [$extras]") into .venv ..." >&2
        (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 \
            | grep -v "^WARNING: Location" >&2 || true)
        "$VENV/bin/python" -c "import vestige, sqlalchemy_continuum, alembic" \
            || { echo "error: installing into $VENV failed; see the pip output above" >&2; exit 1; }
        echo "$digest $extras" > "$VENV/.vestige-installed"
    fi
}
