"""A distributed multi-objective NAS search that screens candidates with
nasperf: maximise CIFAR-10 validation accuracy, minimise edge-GPU latency
(and, with --robustness, maximise accuracy under PGD attack, eps 1/255),
over the 9,445 NAS-Bench-201 networks of the benchmark tables.

    python search.py --server 127.0.0.1:50051 --bench ../../../../shared/benchdata \\
        --study run-1 --budget 200 --workers 4 --method screened

Each generation, NSGA-II-style crossover and mutation propose offspring of
the current population. `screened` asks nasperf's ParetoRank for many of
them and "trains" only the few whose predicted values add the most
hypervolume to the true front found so far; `nsga2` trains the offspring it
would have proposed anyway; `random` trains random networks. Training is
simulated the usual way for tabular benchmarks: the true values are looked
up in the tables, and only then reported to nasperf with `record`, so the
service's models learn only from what the search paid for (the server must
start with no true values of these objectives: a fresh store, no --bench).
`--workers K` processes share the server: each screens and trains its part
of every generation.

`--proxies` also sends the 13 zero-cost proxies of every screened and
trained network (looked up in the tables; computing them costs about 7 s
of GPU time per network, which the output counts).

Simulated training is instant, while real training takes hours, in which
the service retrains on what was reported. With `--wait-for-retraining`
(what a real search gets for free) a generation waits until the service
has made a retraining attempt after its evaluations arrived.

Prints one JSON line per generation: evaluations spent, the hypervolume
of the true Pareto front found so far, and the proxy GPU time spent. A
study that already holds evaluations is resumed: they count toward the
budget.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import pathlib
import random
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

ACC = "cifar10/val_acc_200ep"
LAT = "cifar10/edgegpu_latency"
PGD = "cifar10/pgd_eps1"
#: GPU seconds to compute all 13 zero-cost proxies of one NB201 network.
PROXY_GPU_SECONDS = 7.0
PROXY_COLUMNS = ["epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm",
                 "nwot", "params", "plain", "snip", "synflow", "zen"]


@dataclass(frozen=True)
class Goal:
    objective: str
    direction: str  # "max" or "min"
    #: a value worse than every network in the tables (hypervolume reference)
    reference: float


ACCURACY = Goal(ACC, "max", 0.0)
LATENCY = Goal(LAT, "min", 40.0)
ROBUSTNESS = Goal(PGD, "max", 0.0)


def goals(robustness: bool) -> list[Goal]:
    return [ACCURACY, LATENCY] + ([ROBUSTNESS] if robustness else [])


# Kept for the two-objective callers: (accuracy, latency).
REFERENCE = (ACCURACY.reference, LATENCY.reference)

Point = tuple[float, ...]


@dataclass
class Tables:
    """What simulated training looks up, per NB201 arch string."""

    #: values in goal order
    values: dict[str, Point]
    #: CIFAR-10 test accuracy (%) after 200 epochs
    test_accuracy: dict[str, float]
    #: the 13 proxies on CIFAR-10
    proxies: dict[str, dict[str, float]]


def load_tables(bench: pathlib.Path, wanted: Sequence[Goal] = (ACCURACY, LATENCY)) -> Tables:
    arch, acc = {}, {}
    with open(bench / "nb201-groundtruth" / "zccombine_nb201_cifar10_valid_nets.csv") as f:
        for row in csv.DictReader(f):
            acc[row["net"]] = float(row["val_accs"])
            arch[row["net"]] = row["net_str"]
    lat = {}
    with open(bench / "hw-nas-bench" / "zccombine_hw_cifar10.csv") as f:
        for row in csv.DictReader(f):
            lat[row["net"]] = float(row["edgegpu_latency"])
    pgd = {}
    if any(g.objective == PGD for g in wanted):
        with open(bench / "nb201-robustness" / "zccombine_robustness_targets_cifar10.csv") as f:
            for row in csv.DictReader(f):
                pgd[row["net"]] = float(row["pgd@Linf_eps-1.0"])
    test = {}
    with open(bench / "nb201-groundtruth" / "robot_nb201_test_acc_200ep.csv") as f:
        for row in csv.DictReader(f):
            test[row["arch_str"]] = float(row["cifar10_test_acc"])
    proxies = {}
    with open(bench / "nas-bench-suite-zero" / "zccombine_nb201_cifar10_zc_proxies.csv") as f:
        for row in csv.DictReader(f):
            proxies[row["net_str"]] = {c: float(row[c]) for c in PROXY_COLUMNS}
    by_goal = {ACC: acc, LAT: lat, PGD: pgd}
    values = {}
    for net, a in arch.items():
        if all(net in by_goal[g.objective] for g in wanted):
            values[a] = tuple(by_goal[g.objective][net] for g in wanted)
    return Tables(values=values, test_accuracy=test, proxies=proxies)


OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
#: The (to, from) node of each of the six edges, in arch-string order.
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


def genome(arch: str) -> tuple[int, ...]:
    """`|op~0|+|op~0|op~1|+|...|` -> six op indices."""
    ops = [part.split("~")[0] for part in arch.replace("+", "").split("|") if part]
    return tuple(OPS.index(o) for o in ops)


def key(g: tuple[int, ...]) -> str:
    nodes = []
    for to in (1, 2, 3):
        nodes.append("|" + "|".join(f"{OPS[g[i]]}~{fr}" for i, (t, fr) in enumerate(EDGES) if t == to) + "|")
    return "+".join(nodes)


def genome_encoding(arch: str) -> str:
    """The server's normalised encoding of a cell: six op codes, edges in
    arch-string order (what ListEvaluations returns)."""
    return "".join(str(i) for i in genome(arch))


def _minimised(points: Sequence[Point], wanted: Sequence[Goal]) -> list[Point]:
    """Points as losses below the reference (0 is the reference), dropping
    those not strictly better than it in every objective."""
    out = []
    for p in points:
        q = tuple((g.reference - v) if g.direction == "max" else (v - g.reference) for v, g in zip(p, wanted))
        if all(x < 0 for x in q):
            out.append(q)
    return out


def _hv2(points: list[tuple[float, float]]) -> float:
    """Area dominated by minimisation points against (0, 0)."""
    area, ceiling = 0.0, 0.0
    for x, y in sorted(points):
        if y < ceiling:
            area += -x * (ceiling - y)
            ceiling = y
    return area


def hypervolume(points: Sequence[Point], wanted: Sequence[Goal] = (ACCURACY, LATENCY)) -> float:
    """Exact hypervolume of points (in goal order) against the goals'
    reference, for two or three objectives: in three, slabs between
    consecutive third-objective values, each the area of the points at or
    below it."""
    pts = _minimised(points, wanted)
    if len(wanted) == 2:
        return _hv2([(p[0], p[1]) for p in pts])
    if len(wanted) != 3:
        raise ValueError("hypervolume for two or three objectives")
    pts.sort(key=lambda p: p[2])
    volume = 0.0
    for i, p in enumerate(pts):
        top = pts[i + 1][2] if i + 1 < len(pts) else 0.0
        if top > p[2]:
            volume += _hv2([(q[0], q[1]) for q in pts[: i + 1]]) * (top - p[2])
    return volume


def _dominates(a: Point, b: Point, wanted: Sequence[Goal]) -> bool:
    better = False
    for x, y, g in zip(a, b, wanted):
        if g.direction == "min":
            x, y = -x, -y
        if x < y:
            return False
        better |= x > y
    return better


def nondominated(points: dict[str, Point], wanted: Sequence[Goal] = (ACCURACY, LATENCY)) -> list[str]:
    return [k for k, p in points.items() if not any(_dominates(q, p, wanted) for q in points.values())]


def select(population: dict[str, Point], size: int, wanted: Sequence[Goal]) -> list[str]:
    """NSGA-II survival by true values: whole fronts, then a front spread
    evenly along the first objective."""
    left = dict(population)
    chosen: list[str] = []
    while left and len(chosen) < size:
        front = nondominated(left, wanted)
        if len(chosen) + len(front) > size:
            front.sort(key=lambda k: left[k][0], reverse=True)
            step = len(front) / (size - len(chosen))
            front = [front[int(i * step)] for i in range(size - len(chosen))]
        chosen.extend(front)
        for k in front:
            left.pop(k)
    return chosen


def offspring(parents: list[str], n: int, valid: dict, seen: set, rng: random.Random) -> list[str]:
    out: list[str] = []
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        a, b = genome(rng.choice(parents)), genome(rng.choice(parents))
        child = [x if rng.random() < 0.5 else y for x, y in zip(a, b)]
        child[rng.randrange(6)] = rng.randrange(5)
        k = key(tuple(child))
        if k in valid and k not in seen and k not in out:
            out.append(k)
    return out


def pick_by_improvement(candidates, ranking, front, take, rng, wanted) -> list[str]:
    """Greedily the candidates whose predicted point adds the most
    hypervolume to the true front found so far, each pick joining the
    front before the next; ties (no improvement predicted) by predicted
    front and crowding."""
    predicted = {k: tuple(v) for k, v in zip(candidates, ranking.values)}
    order = {k: (ranking.fronts[i], -ranking.crowding[i], rng.random()) for i, k in enumerate(candidates)}
    current = list(front)
    base = hypervolume(current, wanted)
    chosen: list[str] = []
    left = list(candidates)
    while left and len(chosen) < take:
        gains = {k: hypervolume(current + [predicted[k]], wanted) - base for k in left}
        best = max(left, key=lambda k: (gains[k], tuple(-x for x in order[k])))
        chosen.append(best)
        left.remove(best)
        current.append(predicted[best])
        base = hypervolume(current, wanted)
    return chosen


@dataclass
class Share:
    """One worker's part of a generation."""

    server: str
    study: str
    method: str
    candidates: list[str]
    take: int
    values: dict[str, Point]
    proxies: Optional[dict[str, dict[str, float]]]
    worker: str
    seed: int
    front: list[Point]
    wanted: list[Goal]


def work_share(share: Share) -> tuple[list[tuple[str, Point]], bool]:
    """Screen (maybe), train, report."""
    from nasperf_client import Client, Evaluation, NasperfError

    rng = random.Random(share.seed)
    wanted = share.wanted
    with Client(share.server) as client:
        chosen = share.candidates[: share.take]
        screened = False
        if share.method == "screened" and len(share.candidates) > share.take:
            try:
                ranking = client.pareto_rank(
                    share.candidates,
                    [(g.objective, g.direction) for g in wanted],
                    proxies=[share.proxies[k] for k in share.candidates] if share.proxies else None,
                    dataset="cifar10" if share.proxies else "",
                    study=share.study,
                )
                chosen = pick_by_improvement(share.candidates, ranking, share.front, share.take, rng, wanted)
                screened = True
            except NasperfError as e:
                # No model yet (FAILED_PRECONDITION): train what was proposed.
                if e.code.name != "FAILED_PRECONDITION":
                    raise
        trained = [(k, share.values[k]) for k in chosen]
        report = client.record(
            [
                Evaluation(arch=k, objective=g.objective, value=v, study=share.study, worker=share.worker,
                           idempotency_key=f"{share.study}:{g.objective}:{k}",
                           dataset="cifar10" if share.proxies else "",
                           proxies=share.proxies[k] if share.proxies else {})
                for k, point in trained
                for g, v in zip(wanted, point)
            ]
        )
        if report.rejected:
            raise RuntimeError(f"rejected: {report.rejected[:3]}")
        return trained, screened


def wait_for_retraining(client, study: str, objectives: Sequence[str], since_ms: int,
                        timeout: float = 30.0) -> bool:
    """Until the service has made a retraining attempt of every objective
    of the study after `since_ms` (Unix ms). False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, attempts = client.list_models(study)
        latest = {a.objective: a.updated_at_unix_ms for a in attempts if a.study == study}
        if all(latest.get(o, 0) >= since_ms for o in objectives):
            return True
        time.sleep(0.05)
    return False


def search(server: str, bench: pathlib.Path, study: str, method: str, budget: int,
           workers: int, seed: int, per_generation: int = 10, screen_factor: int = 20,
           population: int = 20, log=sys.stdout, *, robustness: bool = False,
           proxies: bool = False, wait: bool = False,
           tables: Optional[Tables] = None) -> list[dict]:
    from nasperf_client import Client

    wanted = goals(robustness)
    tables = tables or load_tables(bench, wanted)
    table = tables.values
    rng = random.Random(seed)
    evaluated: dict[str, Point] = {}
    # Networks whose proxies were computed (paid for once each).
    proxied: set[str] = set()
    with Client(server) as client:
        client.create_study(study, f"{method} search, seed {seed}")
        # Resume: what the study already trained counts toward the budget
        # and is never trained again.
        known: dict[str, dict[str, float]] = {}
        for e in client.list_evaluations(study):
            known.setdefault(e.encoding, {})[e.objective] = e.value
        for k in table:
            measured = known.get(genome_encoding(k), {})
            if all(g.objective in measured for g in wanted):
                evaluated[k] = tuple(measured[g.objective] for g in wanted)
    proxied |= set(evaluated) if proxies else set()
    history = []
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    waited_out = False
    try:
        with Client(server) as client:
            generation = 0
            while len(evaluated) < budget:
                take = min(per_generation, budget - len(evaluated))
                n = take * (screen_factor if method == "screened" else 1)
                if method == "random" or len(evaluated) < population:
                    pool_keys = [k for k in table if k not in evaluated]
                    candidates = rng.sample(pool_keys, min(n, len(pool_keys)))
                else:
                    parents = select(evaluated, population, wanted)
                    candidates = offspring(parents, n, table, set(evaluated), rng)
                if not candidates:
                    break
                front = [evaluated[k] for k in nondominated(evaluated, wanted)]
                # An attempt that starts after this sees the generation's
                # evaluations (taken before any is sent: an attempt may
                # start before the last worker returns).
                started_ms = int(time.time() * 1000)
                shares = []
                for w in range(workers):
                    part = candidates[w::workers]
                    quota = take // workers + (1 if w < take % workers else 0)
                    if part and quota:
                        shares.append(Share(
                            server, study, method, part, quota, {k: table[k] for k in part},
                            {k: tables.proxies[k] for k in part} if proxies else None,
                            f"w{w}", rng.randrange(1 << 30), front, wanted))
                results = pool.map(work_share, shares) if pool else [work_share(s) for s in shares]
                screened = 0
                for share, (trained, used_ranking) in zip(shares, results):
                    screened += used_ranking
                    if proxies:
                        # Screening computed every candidate's proxies; without
                        # a model only the trained ones.
                        proxied.update(share.candidates if used_ranking else [k for k, _ in trained])
                    for k, point in trained:
                        evaluated[k] = point
                generation += 1
                point = {"method": method, "seed": seed, "generation": generation,
                         "evaluations": len(evaluated),
                         "shares_screened": screened,
                         "hypervolume": hypervolume(list(evaluated.values()), wanted),
                         "proxy_gpu_hours": len(proxied) * PROXY_GPU_SECONDS / 3600}
                history.append(point)
                print(json.dumps(point), file=log, flush=True)
                if wait and not waited_out and len(evaluated) < budget:
                    if not wait_for_retraining(client, study, [g.objective for g in wanted], started_ms):
                        print("the service made no retraining attempt in 30 s (is --retrain-after set?); "
                              "not waiting any more", file=sys.stderr)
                        waited_out = True
    finally:
        if pool:
            pool.close()
            pool.join()
    if history:
        # The true front among what was trained, for reports.
        history[-1]["front"] = nondominated(evaluated, wanted)
    return history


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="127.0.0.1:50051")
    p.add_argument("--bench", type=pathlib.Path, required=True)
    p.add_argument("--study", required=True)
    p.add_argument("--method", choices=["screened", "nsga2", "random"], default="screened")
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--robustness", action="store_true",
                   help=f"a third objective: maximise {PGD}")
    p.add_argument("--proxies", action="store_true",
                   help="send zero-cost proxies with every screened and trained network")
    p.add_argument("--wait-for-retraining", action="store_true",
                   help="each generation waits for the service's retraining attempt")
    a = p.parse_args(argv)
    search(a.server, a.bench, a.study, a.method, a.budget, a.workers, a.seed,
           robustness=a.robustness, proxies=a.proxies, wait=a.wait_for_retraining)


if __name__ == "__main__":
    main()
