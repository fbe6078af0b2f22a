#!/usr/bin/env bash
# Regenerate the Python stubs of src/inferpool/grpc/grpc_service.proto:
# grpc_service_pb2.py, grpc_service_pb2.pyi and grpc_service_pb2_grpc.py,
# written next to the .proto file. Run it from any directory after editing
# the .proto file, and commit the .proto file and the stubs together.
#
#   scripts/generate_grpc.sh                 # uses python3 from PATH
#   PYTHON=.venv/bin/python scripts/generate_grpc.sh
#
# The interpreter must have grpcio-tools installed.
#
# The committed stubs were made with grpcio-tools 1.85.1, which emits
# protobuf 7.35.1 gencode. That gencode checks at import time that the
# protobuf runtime is at least 7.35.1 and raises VersionError otherwise.
# grpc_service_pb2_grpc.py likewise raises RuntimeError on grpcio older
# than 1.85.1. Regenerating with another grpcio-tools moves both floors to
# that version, so update the dependency floors in pyproject.toml and the
# version above together with the stubs.
#
# Two edits follow protoc:
# - grpc_service_pb2_grpc.py imports grpc_service_pb2 as a top-level
#   module, which fails inside the inferpool.grpc package. It becomes a
#   package-relative import.
# - grpc_service_pb2.py registers its file in a private descriptor pool
#   instead of protobuf's default pool. tritonclient.grpc registers messages
#   with the same full names (inference.ModelInferRequest and so on) in the
#   default pool, and the default pool raises "duplicate symbol" when a
#   second file defines any of them. The private pool lets inferpool and
#   tritonclient load in one process, as the tests and in-process clients
#   do. Code that looks our messages up by name in the default pool, such as
#   grpc's reflection service, does not find them.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="src/inferpool/grpc"

cd "$REPO_ROOT"

TOOLS_VERSION="$("$PYTHON" -c 'from importlib.metadata import version; print(version("grpcio-tools"))')"
echo "Generating stubs with grpcio-tools $TOOLS_VERSION"

"$PYTHON" -m grpc_tools.protoc \
    --proto_path="$OUT_DIR" \
    --python_out="$OUT_DIR" \
    --pyi_out="$OUT_DIR" \
    --grpc_python_out="$OUT_DIR" \
    grpc_service.proto

"$PYTHON" - "$OUT_DIR" <<'PATCH'
import pathlib
import sys

out_dir = pathlib.Path(sys.argv[1])


def replace_once(path: pathlib.Path, old: str, new: str) -> None:
    text = path.read_text()
    count = text.count(old)
    if count != 1:
        sys.exit(
            f"error: expected 1 occurrence of {old!r} in {path}, found {count}; "
            "the protoc output format changed, so update this script"
        )
    path.write_text(text.replace(old, new))


replace_once(
    out_dir / "grpc_service_pb2_grpc.py",
    "\nimport grpc_service_pb2 as grpc__service__pb2\n",
    "\nfrom . import grpc_service_pb2 as grpc__service__pb2\n",
)
replace_once(
    out_dir / "grpc_service_pb2.py",
    "\nDESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(",
    "\n# inferpool: a private pool, because tritonclient defines the same names in\n"
    "# the default pool. See scripts/generate_grpc.sh.\n"
    "DESCRIPTOR = _descriptor_pool.DescriptorPool().AddSerializedFile(",
)
PATCH

echo "Wrote $OUT_DIR/grpc_service_pb2.py, grpc_service_pb2.pyi, grpc_service_pb2_grpc.py"
