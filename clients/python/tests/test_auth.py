"""The client against a server that requires bearer tokens: the token goes
with every call, streams included; a missing or too weak token keeps the
server's status and message."""

import os
import subprocess

import pytest

from conftest import OBJECTIVES, _binary, free_port
from nasperf_client import Client, Evaluation, NasperfError

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
PREDICT = "predict-py-4f1d9c2e7b30"
RECORD = "record-py-8a6e0d3b5c17"


def test_tokens_and_roles(models, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"predict {PREDICT}\nrecord {RECORD}\n")
    port = free_port()
    target = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [_binary(), "serve", "--listen", target, "--models", str(models),
         "--data-dir", str(tmp_path / "data"), "--tokens-file", str(tokens)],
        stderr=open(tmp_path / "server.log", "a"),
        env={k: v for k, v in os.environ.items() if k not in ("NASPERF_SERVE_BENCH", "NASPERF_TOKEN")},
    )
    try:
        with Client(target, token=RECORD) as client:
            # Wait until models are loaded (the probe-style call needs a token too).
            import time
            deadline = time.monotonic() + 60
            while True:
                try:
                    if len([o for o in client.list_objectives() if o.model_version]) == len(OBJECTIVES):
                        break
                except NasperfError:
                    pass
                assert time.monotonic() < deadline, "server never ready"
                time.sleep(0.1)
            assert client.predict([CELL], objectives=OBJECTIVES[:1]).values[0][0] > 0
            streamed = list(client.stream_predict([[CELL], [CELL, CELL]], objectives=OBJECTIVES[:1]))
            assert [len(p.values) for p in streamed] == [1, 2]
            report = client.record([Evaluation(arch=CELL, objective=OBJECTIVES[0], value=91.0)])
            assert report.stored == 1

        with Client(target) as anonymous:
            with pytest.raises(NasperfError) as e:
                anonymous.predict([CELL])
            assert e.value.code.name == "UNAUTHENTICATED"

        with Client(target, token=PREDICT) as reader:
            reader.predict([CELL], objectives=OBJECTIVES[:1])
            with pytest.raises(NasperfError) as e:
                reader.record([Evaluation(arch=CELL, objective=OBJECTIVES[0], value=91.0)])
            assert e.value.code.name == "PERMISSION_DENIED"
            assert "record role" in e.value.details
    finally:
        process.kill()
        process.wait()
