"""Generates the gRPC stubs in src/nasperf_client/_pb from ../../proto.

    python generate.py [OUT_DIR]

The stubs are committed so that `pip install ./clients/python` needs no
build step; CI regenerates them into a temporary folder and fails if they
differ from the committed ones. Imports between generated modules are
rewritten to be relative, so the stubs live inside this package instead of
claiming a top-level `nasperf` package.
"""

import pathlib
import re
import sys

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
PROTOS = ["nasperf/v1/predictor.proto", "nasperf/v1/store.proto", "nasperf/v1/models.proto"]


def generate(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *PROTOS,
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    for path in sorted(out.rglob("*.py*")):
        text = path.read_text()
        # `from nasperf.v1 import x_pb2` -> `from . import x_pb2`
        text = re.sub(r"^from nasperf\.v1 import", "from . import", text, flags=re.M)
        path.write_text(text)
    for package in [out / "nasperf", out / "nasperf" / "v1"]:
        (package / "__init__.py").write_text("")
    (out / "__init__.py").write_text('"""Generated gRPC stubs; see generate.py."""\n')


if __name__ == "__main__":
    generate(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "src" / "nasperf_client" / "_pb")
