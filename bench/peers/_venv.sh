# Shared by bench/peers/setup_<name>.sh: create a peer's own venv with the CPU torch first.
#
# Usage (sourced): make_peer_venv VENV_DIR CHECK_PYTHON_SNIPPET PIP_ARGS...
# Idempotent: when VENV_DIR/bin/python runs CHECK_PYTHON_SNIPPET without error, nothing happens.
# torch==2.13.0 comes from the local CPU wheel (PIP_FIND_LINKS / $TORCH_WHEEL) and is pinned by a
# constraint file, so no peer dependency can swap it for a CUDA build.

make_peer_venv() {
    local venv="$1" check="$2"
    shift 2
    local python="${PYTHON:-python3.11}"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
        echo "peer already installed in $venv"
        return 0
    fi
    "$python" -m venv "$venv"
    local pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)
    local wheel="${TORCH_WHEEL:-$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)}"
    if [ -n "$wheel" ]; then
        "${pip[@]}" "$wheel"
    else
        "${pip[@]}" torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    fi
    "$venv/bin/python" -m pip freeze | grep -i '^torch' > "$venv/constraints.txt"
    "${pip[@]}" --constraint "$venv/constraints.txt" "$@"
    "$venv/bin/python" -c "$check"
    echo "peer installed in $venv"
}
