#!/usr/bin/env bash
# Build llama.cpp (through llama-cpp-python, compiled from source) once into a venv outside the
# repository, for the tests that check our GGUF files in llama.cpp itself (pytest -m llama_cpp).
#
#   ${TOKENGRAFT_CACHE:-~/.cache/tokengraft}/llama-cpp-venv      (override: TOKENGRAFT_LLAMA_CPP_VENV)
#
# Idempotent: a venv whose stamp names the pinned version is left alone (a second run takes a
# second); a new version or new CMAKE_ARGS build again. The build takes about 7 minutes on 2 idle
# cores (15 CPU-minutes), CPU only. A failed or interrupted build leaves no stamp, so the next run
# starts over. Concurrent runs wait on a lock.
set -euo pipefail
VERSION=0.3.36
CACHE=${TOKENGRAFT_CACHE:-$HOME/.cache/tokengraft}
VENV=${TOKENGRAFT_LLAMA_CPP_VENV:-$CACHE/llama-cpp-venv}
# A portable x86-64-v3 build: -march=native turns on AMX on CPUs that advertise it, and its Q8_0
# kernels die with SIGILL where the kernel or hypervisor does not grant AMX state (seen here).
FLAGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}
TAG=$(printf '%s' "$VERSION $FLAGS" | sha256sum | cut -c1-12)
STAMP="$VENV/.tokengraft-llama-cpp-$VERSION-$TAG"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import llama_cpp" >/dev/null 2>&1; then
  exit 0
fi
echo "building llama-cpp-python $VERSION into $VENV (several minutes on 2 cores)" >&2
started=$(date +%s)
rm -rf "$VENV"
"$PY" -m venv "$VENV"
export CMAKE_ARGS="$FLAGS"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-cache-dir \
  "llama-cpp-python==$VERSION"
"$VENV/bin/python" -c "import llama_cpp; print('llama_cpp', llama_cpp.__version__)"
echo "built in $(($(date +%s) - started)) s" > "$STAMP"
echo "llama-cpp-python $VERSION built in $(($(date +%s) - started)) s" >&2
