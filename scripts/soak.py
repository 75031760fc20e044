#!/usr/bin/env python3
"""A soak test of nasperf on PostgreSQL: minutes of mixed load from several
client processes, with retraining, model swaps and deliberate faults, then
an audit of what was stored and of the server's memory.

    python scripts/soak.py --bench ../shared/benchdata --minutes 10 \
        --report docs/soak-report.md

Needs the Python client installed (``pip install ./clients/python
matplotlib``), a built ``nasperf`` ($NASPERF_BIN, default the release build
in $CARGO_TARGET_DIR) and a PostgreSQL server ($NASPERF_TEST_POSTGRES,
default the machine's, trust auth). It creates a database of its own and
drops it at the end (``--keep-database`` keeps it).

The load, all against one ``nasperf serve``:
- recorders (processes): stream the true CIFAR-10 validation accuracy of
  NB201 networks in batches of 20, each row under a key of its own, and
  log every key the server acknowledged (stored or already stored);
- predictors (processes): Predict for 1 to 100 random networks, in the
  soak study, as fast as the server answers;
- an operator (process): every 15 s pins an older model version
  (ActivateModel) or unpins it (UnpinModel), every 60 s asks for a
  retraining; the server also retrains on its own schedule.
Deliberate faults, counted apart: rows with an unknown op among valid ones
(each must come back rejected, the rest stored), calls with a 1 ms
deadline, and, halfway, PostgreSQL terminating every connection of the
server (the store's outage handling; recorders retry on UNAVAILABLE).

Before the clock starts, one evaluation of every network is recorded (the
prefill, audited like the rest; ``--no-prefill`` skips it). Retraining
reads one row per distinct architecture, so without it the training set,
and the memory its retraining keeps mapped, grows for the first minutes
of the run while random draws reach the networks not yet seen: a fill
that ends, which a 10-minute window cannot tell from a leak. With it, the
data a retraining reads has its final size from the start, and what is
left to grow is what a leak would grow. The number of distinct
architectures stored is reported per minute either way.

The audit: every acknowledged key is stored exactly once with its value,
nothing was stored that was not sent, no call failed outside the faults,
and resident memory has no growth trend after the first two minutes.
Exit status 1 when any of that does not hold.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import grpc

import nasperf_client
from nasperf_client._pb.nasperf.v1 import models_pb2, predictor_pb2
from nasperf_client._pb.nasperf.v1 import predictor_pb2_grpc, models_pb2_grpc

STUDY = "soak"
OBJECTIVE = "cifar10/val_acc_200ep"
BATCH = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_networks(bench: pathlib.Path) -> list[tuple[str, float]]:
    with open(bench / "nb201-groundtruth" / "zccombine_nb201_cifar10_valid_nets.csv") as f:
        return [(row["net_str"], float(row["val_accs"])) for row in csv.DictReader(f)]


def psql(admin_url: str, sql: str, database: str | None = None) -> str:
    url = admin_url
    if database:
        parts = urllib.parse.urlsplit(admin_url)
        url = urllib.parse.urlunsplit(parts._replace(path="/" + database))
    out = subprocess.run(["psql", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout


def resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_until_serving(target: str, arch: str, timeout: float = 120.0) -> None:
    """Until the study's model answers a prediction."""
    stub = predictor_pb2_grpc.PredictorStub(grpc.insecure_channel(target))
    request = predictor_pb2.PredictRequest(
        candidates=[predictor_pb2.Candidate(search_space="nb201", arch=arch)], objectives=[OBJECTIVE], study=STUDY)
    end = time.time() + timeout
    while True:
        try:
            stub.Predict(request, timeout=2)
            return
        except grpc.RpcError:
            if time.time() > end:
                raise
            time.sleep(0.2)


# --- the client processes ---------------------------------------------------


def recorder(target: str, worker: int, networks, deadline: float, out_dir: str) -> None:
    rng = random.Random(worker)
    client = nasperf_client.Client(target, timeout=30.0)
    acked = open(os.path.join(out_dir, f"acked-{worker}.tsv"), "w")
    sent = open(os.path.join(out_dir, f"sent-{worker}.tsv"), "w")
    stats = {"calls": 0, "rows": 0, "failed": [], "rejected_expected": 0, "rejected_unexpected": []}
    n = 0
    while time.time() < deadline:
        rows = []
        poisoned = None
        if rng.random() < 0.02:
            poisoned = rng.randrange(BATCH)  # a deliberate fault: one invalid row
        for i in range(BATCH):
            arch, value = networks[rng.randrange(len(networks))]
            key = f"soak-w{worker}-{n}"
            n += 1
            if i == poisoned:
                arch = "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"
            rows.append({"study": STUDY, "arch": arch, "objective": OBJECTIVE, "value": value,
                         "worker": f"soak-{worker}", "idempotency_key": key, "dataset": "cifar10"})
            sent.write(f"{key}\t{value!r}\t{int(i == poisoned)}\n")
        sent.flush()
        stats["calls"] += 1
        try:
            report = client.record(rows, chunk_size=BATCH)
        except nasperf_client.NasperfError as e:
            stats["failed"].append((time.time(), e.code.name, e.details[:200]))
            continue
        rejected = {index for index, _, _ in report.rejected}
        expected = {poisoned} if poisoned is not None else set()
        stats["rejected_expected"] += len(rejected & expected)
        for index, code, message in report.rejected:
            if index not in expected:
                stats["rejected_unexpected"].append((rows[index]["idempotency_key"], code, message[:200]))
        for i, row in enumerate(rows):
            if i not in rejected:
                acked.write(f"{row['idempotency_key']}\t{row['value']!r}\n")
        acked.flush()
        stats["rows"] += report.stored + report.already_stored
        # About 40 evaluations a second per recorder: far more than GPU
        # workers report, while retraining still keeps up.
        time.sleep(0.5)
    with open(os.path.join(out_dir, f"recorder-{worker}.json"), "w") as f:
        json.dump(stats, f)


def predictor(target: str, worker: int, networks, deadline: float, out_dir: str) -> None:
    rng = random.Random(1000 + worker)
    channel = grpc.insecure_channel(target)
    stub = predictor_pb2_grpc.PredictorStub(channel)
    stats = {"calls": 0, "candidates": 0, "failed": [], "deadline_faults": 0, "latency_ms": []}
    while time.time() < deadline:
        k = rng.randint(1, 100)
        request = predictor_pb2.PredictRequest(
            candidates=[predictor_pb2.Candidate(search_space="nb201", arch=networks[rng.randrange(len(networks))][0])
                        for _ in range(k)],
            objectives=[OBJECTIVE], study=STUDY)
        if rng.random() < 0.01:
            # A deliberate fault: a deadline no call can meet.
            try:
                stub.Predict(request, timeout=0.001)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    stats["deadline_faults"] += 1
                    continue
                stats["failed"].append((time.time(), e.code().name, (e.details() or "")[:200]))
            continue
        started = time.perf_counter()
        try:
            response = stub.Predict(request, timeout=30.0)
        except grpc.RpcError as e:
            stats["failed"].append((time.time(), e.code().name, (e.details() or "")[:200]))
            continue
        stats["latency_ms"].append((time.perf_counter() - started) * 1000)
        stats["calls"] += 1
        stats["candidates"] += len(response.predictions)
    with open(os.path.join(out_dir, f"predictor-{worker}.json"), "w") as f:
        json.dump(stats, f)


def operator(target: str, deadline: float, out_dir: str) -> None:
    channel = grpc.insecure_channel(target)
    models = models_pb2_grpc.ModelsStub(channel)
    stats = {"pins": 0, "unpins": 0, "retrains": 0, "retrain_outcomes": {}, "failed": []}
    tick = 0
    pinned = False
    while time.time() < deadline:
        time.sleep(15)
        tick += 1
        try:
            listed = models.ListModels(models_pb2.ListModelsRequest(study=STUDY, objective=OBJECTIVE), timeout=30)
            versions = [m.version for m in listed.models if m.study == STUDY]
            if not pinned and len(versions) >= 2:
                # Pin the second newest version: a model swap under load.
                models.ActivateModel(models_pb2.ActivateModelRequest(
                    study=STUDY, objective=OBJECTIVE, version=versions[1]), timeout=30)
                stats["pins"] += 1
                pinned = True
            elif pinned:
                # Back to the newest: another swap.
                models.UnpinModel(models_pb2.UnpinModelRequest(study=STUDY, objective=OBJECTIVE), timeout=30)
                stats["unpins"] += 1
                pinned = False
            if tick % 4 == 0:
                try:
                    r = models.Retrain(models_pb2.RetrainRequest(study=STUDY, objectives=[OBJECTIVE]), timeout=300)
                except grpc.RpcError as e:
                    # The server's own schedule was retraining the same study:
                    # ABORTED is its documented answer ("try again when it is
                    # done"), not a failure. Counted apart.
                    if e.code() != grpc.StatusCode.ABORTED:
                        raise
                    stats["retrain_outcomes"]["deferred (ABORTED: already retraining)"] = (
                        stats["retrain_outcomes"].get("deferred (ABORTED: already retraining)", 0) + 1)
                else:
                    stats["retrains"] += 1
                    for x in r.results:
                        stats["retrain_outcomes"][x.outcome] = stats["retrain_outcomes"].get(x.outcome, 0) + 1
        except grpc.RpcError as e:
            stats["failed"].append((time.time(), e.code().name, (e.details() or "")[:200]))
    with open(os.path.join(out_dir, "operator.json"), "w") as f:
        json.dump(stats, f)


# --- the run ----------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", type=pathlib.Path,
                   default=pathlib.Path(os.environ.get("NASPERF_BENCHDATA", "../shared/benchdata")))
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--recorders", type=int, default=3)
    p.add_argument("--predictors", type=int, default=2)
    p.add_argument("--report", type=pathlib.Path, help="write the figures here as Markdown (and a PNG beside it)")
    p.add_argument("--keep-database", action="store_true")
    p.add_argument("--no-prefill", dest="prefill", action="store_false",
                   help="do not record every network once before the clock starts")
    args = p.parse_args()

    target_dir = os.environ.get("CARGO_TARGET_DIR", "target")
    binary = os.environ.get("NASPERF_BIN", os.path.join(target_dir, "release", "nasperf"))
    admin_url = os.environ.get("NASPERF_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
    database = f"nasperf_soak_{os.getpid()}"
    psql(admin_url, f"CREATE DATABASE {database}")
    parts = urllib.parse.urlsplit(admin_url)
    db_url = urllib.parse.urlunsplit(parts._replace(path="/" + database))
    work = pathlib.Path(tempfile.mkdtemp(prefix="nasperf-soak-"))
    networks = load_networks(args.bench)
    print(f"soak: {args.minutes} min, database {database}, logs in {work}", flush=True)

    # A first model for the study, so predictions are served from the start.
    models_dir = work / "models"
    subprocess.run([binary, "train", "--bench", str(args.bench), "--out", str(models_dir), "--objective",
                    OBJECTIVE, "--iterations", "100", "--no-proxies"], check=True, capture_output=True)
    subprocess.run([binary, "models", "import", str(models_dir), "--database-url", db_url, "--study", STUDY],
                   check=True, capture_output=True)

    port, metrics_port = free_port(), free_port()
    target = f"127.0.0.1:{port}"
    server_log = open(work / "server.log", "w")
    server = subprocess.Popen(
        [binary, "--log-format", "json", "serve", "--listen", target, "--database-url", db_url,
         "--data-dir", str(work / "data"), "--metrics-listen", f"127.0.0.1:{metrics_port}",
         "--retrain-interval", "45s", "--retrain-after", "2000", "--retrain-iterations", "60",
         "--retrain-jobs", "1"],
        stderr=server_log,
        # The allocator setting of the container image (Dockerfile).
        env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    try:
        wait_until_serving(target, networks[0][0])
        if args.prefill:
            prefill(target, networks, work)
        started = time.time()
        deadline = started + args.minutes * 60
        # Spawned, not forked: this process already holds gRPC channels (the
        # readiness check, the prefill), and a child forked from it can hang
        # in gRPC's inherited state before its first call.
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=recorder, args=(target, w, networks, deadline, str(work)))
                 for w in range(args.recorders)]
        procs += [ctx.Process(target=predictor, args=(target, w, networks, deadline, str(work)))
                  for w in range(args.predictors)]
        procs.append(ctx.Process(target=operator, args=(target, deadline, str(work))))
        for proc in procs:
            proc.start()

        memory: list[tuple[float, int]] = []
        distinct: list[tuple[float, int]] = []
        outage_at = None
        while time.time() < deadline:
            memory.append((time.time() - started, resident_kib(server.pid)))
            if not distinct or memory[-1][0] - distinct[-1][0] >= 60:
                try:
                    count = int(psql(admin_url, "SELECT count(DISTINCT architecture_id) FROM evaluations",
                                     database=database).strip())
                    distinct.append((memory[-1][0], count))
                except subprocess.CalledProcessError:
                    pass  # during the deliberate outage; the next minute counts
            if outage_at is None and time.time() - started > args.minutes * 30:
                # A deliberate fault: PostgreSQL drops every connection of the server.
                outage_at = time.time()
                killed = psql(admin_url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                         f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")
                print(f"  {outage_at - started:.0f}s: terminated {killed.strip()} PostgreSQL connections",
                      flush=True)
            print(f"  {time.time() - started:5.0f}s  rss {memory[-1][1] / 1024:.1f} MiB", flush=True)
            time.sleep(5)
        for proc in procs:
            proc.join(timeout=600)
        memory.append((time.time() - started, resident_kib(server.pid)))
        alive = server.poll() is None
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()

    return audit(args, work, admin_url, database, memory, distinct, outage_at, started, alive)


def prefill(target: str, networks, work: pathlib.Path) -> None:
    """One evaluation of every network, logged as sent and acknowledged like
    the recorders' rows, so the audit covers them too."""
    client = nasperf_client.Client(target, timeout=60.0)
    rows = [{"study": STUDY, "arch": arch, "objective": OBJECTIVE, "value": value, "worker": "soak-prefill",
             "idempotency_key": f"soak-prefill-{i}", "dataset": "cifar10"}
            for i, (arch, value) in enumerate(networks)]
    with open(work / "sent-prefill.tsv", "w") as sent:
        sent.writelines(f"{r['idempotency_key']}\t{r['value']!r}\t0\n" for r in rows)
    report = client.record(rows, chunk_size=500)
    if report.rejected:
        raise RuntimeError(f"prefill rows rejected: {report.rejected[:3]}")
    with open(work / "acked-prefill.tsv", "w") as acked:
        acked.writelines(f"{r['idempotency_key']}\t{r['value']!r}\n" for r in rows)
    print(f"prefill: {report.stored + report.already_stored:,} evaluations, one per network", flush=True)


def audit(args, work, admin_url, database, memory, distinct, outage_at, started, alive) -> int:
    sent, acked = {}, {}
    poisoned = set()
    for f in work.glob("sent-*.tsv"):
        for line in f.read_text().splitlines():
            key, value, bad = line.split("\t")
            sent[key] = float(value)
            if bad == "1":
                poisoned.add(key)
    for f in work.glob("acked-*.tsv"):
        for line in f.read_text().splitlines():
            key, value = line.split("\t")
            acked[key] = float(value)
    rows = psql(admin_url, "SELECT e.idempotency_key, e.value FROM evaluations e JOIN studies s "
                           f"ON s.id = e.study_id WHERE s.name = '{STUDY}'", database=database)
    stored: dict[str, list[float]] = {}
    for line in rows.splitlines():
        key, value = line.split("|")
        stored.setdefault(key, []).append(float(value))
    if not args.keep_database:
        psql(admin_url, f"DROP DATABASE {database} WITH (FORCE)")

    recorders = [json.loads(f.read_text()) for f in sorted(work.glob("recorder-*.json"))]
    predictors = [json.loads(f.read_text()) for f in sorted(work.glob("predictor-*.json"))]
    workers_reported = len(recorders) == args.recorders and len(predictors) == args.predictors
    operator_stats = json.loads((work / "operator.json").read_text())
    window = (outage_at or 0, (outage_at or 0) + 15)

    def split(failures):
        in_fault = [f for f in failures if window[0] <= f[0] <= window[1]]
        return in_fault, [f for f in failures if not window[0] <= f[0] <= window[1]]

    record_fault, record_other = split([f for r in recorders for f in r["failed"]])
    predict_fault, predict_other = split([f for p in predictors for f in p["failed"]])
    operator_fault, operator_other = split(operator_stats["failed"])
    lost = [k for k in acked if k not in stored]
    doubled = [k for k, v in stored.items() if len(v) > 1]
    wrong_value = [k for k in acked if k in stored and stored[k][0] != acked[k]]
    unsent = [k for k in stored if k not in sent]
    poisoned_stored = [k for k in stored if k in poisoned]
    unacked_stored = [k for k in stored if k not in acked]
    latencies = sorted(x for p in predictors for x in p["latency_ms"])

    # The memory trend after the first two minutes. Resident memory is a
    # sawtooth: every retraining allocates its training set and LightGBM's
    # buffers, then frees them. A leak raises what stays between them, so
    # the check fits a line to each minute's lowest reading (the floor);
    # the line through every reading and the one through each minute's
    # highest are reported beside it.
    def slope(points):
        n = len(points)
        mt = sum(t for t, _ in points) / n
        mk = sum(k for _, k in points) / n
        var = sum((t - mt) ** 2 for t, _ in points) or 1.0
        return 60 * sum((t - mt) * (k - mk) for t, k in points) / var, mk

    tail = [(t, kib) for t, kib in memory if t >= 120] or memory
    by_minute: dict[int, list[tuple[float, int]]] = {}
    for t, kib in tail:
        by_minute.setdefault(int(t // 60), []).append((t, kib))
    # Whole minutes only: the run's last seconds form a minute of one or two
    # readings, whose "floor" is just wherever the sawtooth happened to be.
    minutes = {m: [k for _, k in v] for m, v in by_minute.items() if v[-1][0] - v[0][0] >= 45} or {
        m: [k for _, k in v] for m, v in by_minute.items()}
    floors = [(60 * m + 30, min(v)) for m, v in sorted(minutes.items())]
    peaks = [(60 * m + 30, max(v)) for m, v in sorted(minutes.items())]
    slope_kib_per_min, _ = slope(tail)
    floor_slope, floor_mean = slope(floors) if len(floors) > 1 else (0.0, floors[0][1])
    peak_slope, _ = slope(peaks) if len(peaks) > 1 else (0.0, 0.0)
    span_min = (tail[-1][0] - tail[0][0]) / 60
    flat = floor_slope * span_min <= 0.05 * floor_mean

    def pct(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    checks = {
        "every acknowledged evaluation stored": not lost,
        "none stored twice": not doubled,
        "stored values are the acknowledged ones": not wrong_value,
        "nothing stored that was not sent": not unsent,
        "no invalid row stored": not poisoned_stored,
        "no failed call outside the deliberate faults": not (record_other or predict_other or operator_other),
        "no unexpected row rejection": not any(r["rejected_unexpected"] for r in recorders),
        "memory floor flat after 2 minutes (growth under 5%)": flat,
        "server alive at the end": alive,
        "every client process reported": workers_reported,
    }
    lines = [
        f"Soak run: {args.minutes:g} minutes, {args.recorders} recorder and {args.predictors} predictor processes "
        f"and an operator, one `nasperf serve` on PostgreSQL"
        f"{', after a prefill of one evaluation per network' if args.prefill else ''}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| evaluations sent (prefill included) | {len(sent):,} |",
        f"| acknowledged (stored or already stored) | {len(acked):,} |",
        f"| found in PostgreSQL | {len(stored):,} |",
        f"| lost / stored twice / wrong value | {len(lost)} / {len(doubled)} / {len(wrong_value)} |",
        f"| stored but never acknowledged (a reply lost in the outage; kept, exactly once) | {len(unacked_stored)} |",
        f"| invalid rows sent (deliberate) / rejected as expected / stored | {len(poisoned)} / "
        f"{sum(r['rejected_expected'] for r in recorders)} / {len(poisoned_stored)} |",
        f"| record calls / failed in the outage window / failed otherwise | "
        f"{sum(r['calls'] for r in recorders):,} / {len(record_fault)} / {len(record_other)} |",
        f"| predict calls / candidates predicted | {sum(p['calls'] for p in predictors):,} / "
        f"{sum(p['candidates'] for p in predictors):,} |",
        f"| predict failures in the outage window / otherwise | {len(predict_fault)} / {len(predict_other)} |",
        f"| 1 ms deadlines sent (deliberate) and answered DEADLINE_EXCEEDED | "
        f"{sum(p['deadline_faults'] for p in predictors)} |",
        f"| predict latency p50 / p99 / max (ms, 1-100 candidates, under load) | {pct(0.5):.1f} / {pct(0.99):.1f} / "
        f"{(latencies[-1] if latencies else float('nan')):.1f} |",
        f"| model pins / unpins / explicit retrainings {operator_stats['retrain_outcomes']} | "
        f"{operator_stats['pins']} / {operator_stats['unpins']} / {operator_stats['retrains']} |",
        f"| operator failures in the outage window / otherwise | {len(operator_fault)} / {len(operator_other)} |",
        f"| PostgreSQL connections terminated at | {((outage_at or started) - started):.0f} s |",
        f"| resident memory: start / end / max (MiB) | {memory[0][1] / 1024:.1f} / {memory[-1][1] / 1024:.1f} / "
        f"{max(k for _, k in memory) / 1024:.1f} |",
        f"| memory trend after 2 min, least squares: per-minute floor / every reading / per-minute peak | "
        f"{floor_slope:+.1f} / {slope_kib_per_min:+.1f} / {peak_slope:+.1f} KiB/min |",
        f"| per-minute floor after 2 min (MiB) | {', '.join(f'{k / 1024:.1f}' for _, k in floors)} |",
        f"| distinct architectures stored, each minute ({'after the prefill' if args.prefill else 'no prefill'}) | "
        f"{', '.join(f'{n:,}' for _, n in distinct)} |",
        "",
        "| check | |",
        "|---|---|",
    ] + [f"| {name} | {'yes' if ok else '**NO**'} |" for name, ok in checks.items()]
    for label, failures in (("record", record_other), ("predict", predict_other), ("operator", operator_other)):
        for f in failures[:5]:
            lines.append(f"\n{label} failure at {f[0] - started:.0f}s: {f[1]} {f[2]}")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.report:
        args.report.write_text(report)
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots(figsize=(7, 3.2))
            ax.plot([t / 60 for t, _ in memory], [k / 1024 for _, k in memory], label="resident memory")
            if outage_at:
                ax.axvline((outage_at - started) / 60, color="red", ls=":", label="PostgreSQL connections killed")
            ax.set_xlabel("minutes")
            ax.set_ylabel("MiB")
            ax.set_title("nasperf serve under the soak load")
            ax.legend(loc="lower right")
            fig.tight_layout()
            fig.savefig(args.report.with_suffix(".png"), dpi=110)
        except ImportError:
            print("matplotlib is not installed: no plot", file=sys.stderr)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
