# Sourced by scripts/run and scripts/test: make (or refresh) the project's own virtual
# environment from the pinned requirements, then put it first on PATH.
# Usage: venv_ready requirements.txt | requirements-dev.txt

venv_ready() {
    local requirements="$1"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Peermark needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)." >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "Creating the virtual environment in .venv ..." >&2
        "$python" -m venv .venv
    fi
    # Reinstall only when the pinned requirements change: the stamp is their hash.
    local stamp=".venv/.installed-$(basename "$requirements" .txt)"
    local want
    want="$(cat requirements.txt "$requirements" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "Installing pinned requirements from $requirements ..." >&2
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
        echo "$want" > "$stamp"
    fi
    export PATH="$PWD/.venv/bin:$PATH"
    export VIRTUAL_ENV="$PWD/.venv"
}
