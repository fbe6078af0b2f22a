#!/usr/bin/env bash
# Create the virtual environment that runs MLServer 1.7.1 for side-by-side
# benchmarks, then print the path of its python. Running it again reuses the
# environment when the pinned set below is already installed.
#
# Usage: benchmarks/mlserver_env.sh   (set PYTHON to choose the interpreter)
#
# Why a separate environment: inferpool keeps current releases, but MLServer
# 1.7.1's workers crash at start with uvloop 0.22 or newer. Each worker calls
# asyncio.get_event_loop() before it runs a loop, and uvloop 0.22 raises
# "RuntimeError: There is no current event loop" there. The pool restarts the
# workers in a loop, so no model ever becomes ready and SIGTERM then hangs.
#
# Pins: MLServer's lock files at its 1.7.1 tag use uvloop 0.21.0, numpy
# 1.26.4 and pandas 2.2.3 for the server, and scikit-learn 1.6.1 in the
# scikit-learn runtime's tests. mlserver-sklearn 1.7.1 itself accepts any
# scikit-learn version ("*"). scikit-learn 1.9.1 with numpy 2.4 and pandas 3.1
# also served the iris model here, but only the tested set is pinned. A model file
# must be pickled by the scikit-learn version that loads it, so train the
# models that MLServer serves with this environment's python.
#
# Starting MLServer 1.7.1 on a repository folder DIR:
#   DIR/settings.json: {"host": "127.0.0.1", "http_port": ..., "grpc_port": ...,
#     "metrics_port": ..., "parallel_workers": 2, "debug": false,
#     "metrics_dir": ..., "environments_dir": ...}
#   .venv-mlserver/bin/mlserver start DIR
# - host defaults to 0.0.0.0 (all interfaces), so set it to 127.0.0.1.
# - metrics_dir and environments_dir default to ".metrics" and ".envs" in the
#   current directory, which MLServer creates at start. With parallel_workers
#   above 0 it also exports PROMETHEUS_MULTIPROC_DIR=metrics_dir to the
#   workers. Point both at a scratch folder so no run writes into the tree.
# - debug defaults to true, which prints an access log line per request.
# - The defaults for the three ports are 8080, 8081 and 8082, so all three
#   must be free or set. Every field has an MLSERVER_ environment variable
#   (MLSERVER_HTTP_PORT and so on) that overrides settings.json.
# - No other environment variable, system package or service is needed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-mlserver"
python="${PYTHON:-python3}"

requirements=(
    "mlserver==1.7.1"
    "mlserver-sklearn==1.7.1"
    "uvloop==0.21.0"
    "scikit-learn==1.6.1"
    "numpy==1.26.4"
    "pandas==2.2.3"
)

# The stamp records the pinned set, so editing the list above reinstalls.
stamp="$venv/.installed"
wanted="$(printf '%s\n' "${requirements[@]}")"

if [[ ! -f "$stamp" ]] || [[ "$(cat "$stamp")" != "$wanted" ]]; then
    if [[ ! -x "$venv/bin/python" ]]; then
        "$python" -m venv "$venv" >&2
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet "${requirements[@]}" >&2
    "$venv/bin/python" -c 'import mlserver, mlserver_sklearn, sklearn, uvloop' >&2
    printf '%s\n' "$wanted" >"$stamp"
fi

echo "$venv/bin/python"
