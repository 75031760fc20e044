"""A real `nasperf serve` on the machine's PostgreSQL (a fresh database per
test session) with small models trained from the benchmark tables."""

import os
import pathlib
import socket
import subprocess
import time
import uuid

import grpc
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
OBJECTIVES = ["cifar10/val_acc_200ep", "cifar10/edgegpu_latency"]


def _binary() -> str:
    path = os.environ.get("NASPERF_BIN")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
        path = os.path.join(target, "release", "nasperf")
    assert os.path.exists(path), f"build nasperf first (NASPERF_BIN={path})"
    return path


def _psql(sql: str) -> None:
    admin = os.environ.get("NASPERF_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
    subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`nasperf serve` on a fixed port, restartable."""

    def __init__(self, models: pathlib.Path, database_url: str, log: pathlib.Path):
        self.models, self.database_url, self.log = models, database_url, log
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [_binary(), "serve", "--listen", self.target, "--models", str(self.models),
             "--database-url", self.database_url],
            stderr=open(self.log, "a"),
            env={k: v for k, v in os.environ.items() if k != "NASPERF_SERVE_BENCH"},
        )

    def kill(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("models")
    bench = os.environ.get("NASPERF_BENCHDATA", str(REPO.parent / "shared" / "benchdata"))
    args = [_binary(), "train", "--bench", bench, "--out", str(out), "--iterations", "60"]
    for o in OBJECTIVES:
        args += ["--objective", o]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


@pytest.fixture()
def server(models, tmp_path):
    name = f"nasperf_py_{uuid.uuid4().hex}"
    _psql(f"CREATE DATABASE {name}")
    base = os.environ.get("NASPERF_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
    url = base.rsplit("/", 1)[0] + "/" + name
    s = Server(models, url, tmp_path / "server.log")
    s.start()
    wait_ready(s.target)
    yield s
    s.kill()
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def wait_ready(target: str, timeout: float = 60.0) -> None:
    """Until every fixture model is loaded and the store is connected."""
    from nasperf_client._pb.nasperf.v1 import predictor_pb2, predictor_pb2_grpc, store_pb2, store_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = predictor_pb2_grpc.PredictorStub(channel)
        while True:
            try:
                r = stub.ListObjectives(predictor_pb2.ListObjectivesRequest(), timeout=2)
                if sum(1 for o in r.objectives if o.model_version) == len(OBJECTIVES):
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, f"{target} never became ready"
            time.sleep(0.05)
        # The store connects after the predictor is ready; a test's first
        # store call must not race it (UNAVAILABLE "not connected yet").
        # Any other answer (UNAUTHENTICATED on a server with tokens) means
        # the store is past that point or the call never reaches it.
        store = store_pb2_grpc.StoreStub(channel)
        while True:
            try:
                store.ListStudies(store_pb2.ListStudiesRequest(), timeout=2)
                return
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    return
            assert time.monotonic() < deadline, f"{target}: the store never connected"
            time.sleep(0.05)


@pytest.fixture()
def learning_server(tmp_path):
    """`nasperf serve` from an empty store (PostgreSQL), retraining after
    every 20 new evaluations of an objective."""
    name = f"nasperf_py_{uuid.uuid4().hex}"
    _psql(f"CREATE DATABASE {name}")
    base = os.environ.get("NASPERF_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
    url = base.rsplit("/", 1)[0] + "/" + name
    port = free_port()
    target = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [_binary(), "serve", "--listen", target, "--database-url", url,
         "--retrain-after", "20", "--retrain-interval", "0s", "--retrain-iterations", "150",
         "--retrain-check-every", "200ms"],
        stderr=open(tmp_path / "server.log", "a"),
        env={k: v for k, v in os.environ.items() if k != "NASPERF_SERVE_BENCH"},
    )
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(target) as channel:
        while True:
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                break
            except grpc.FutureTimeoutError:
                assert time.monotonic() < deadline, "server never listened"
    yield target
    process.kill()
    process.wait()
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
