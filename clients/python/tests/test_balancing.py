"""Client-side round-robin over several replicas (what the headless Service
in deploy/ is for), shown with each replica's own /metrics."""

import os
import subprocess
import urllib.request

from conftest import OBJECTIVES, _binary, free_port, wait_ready
from nasperf_client import Client

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
PREDICT_OK = 'nasperf_rpc_calls_total{method="/nasperf.v1.Predictor/Predict",code="OK"}'


def predict_calls(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(PREDICT_OK):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_round_robin_spreads_calls_over_every_replica(models, tmp_path):
    replicas = []
    try:
        for i in range(3):
            port, metrics = free_port(), free_port()
            process = subprocess.Popen(
                [_binary(), "serve", "--listen", f"127.0.0.1:{port}", "--models", str(models),
                 "--data-dir", str(tmp_path / f"data{i}"), "--metrics-listen", f"127.0.0.1:{metrics}"],
                stderr=open(tmp_path / f"replica{i}.log", "a"),
                env={k: v for k, v in os.environ.items() if k != "NASPERF_SERVE_BENCH"},
            )
            replicas.append((process, port, metrics))
        for _, port, _ in replicas:
            wait_ready(f"127.0.0.1:{port}")

        target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port, _ in replicas)
        with Client(target, round_robin=True) as client:
            for _ in range(60):
                assert client.predict([CELL], objectives=OBJECTIVES[:1]).values[0][0] > 0
        calls = [predict_calls(metrics) for _, _, metrics in replicas]
        assert sum(calls) == 60, calls
        assert all(c >= 15 for c in calls), f"each replica takes its share: {calls}"

        # Without round robin, one connection: every call to one replica.
        with Client(target) as client:
            for _ in range(30):
                client.predict([CELL], objectives=OBJECTIVES[:1])
        after = [predict_calls(metrics) for _, _, metrics in replicas]
        assert sorted(a - c for a, c in zip(after, calls)) == [0, 0, 30], after
    finally:
        for process, _, _ in replicas:
            process.kill()
            process.wait()
