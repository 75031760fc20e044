"""A distributed multi-objective NAS search that screens candidates with
nasperf: maximise CIFAR-10 validation accuracy, minimise edge-GPU latency,
over the 9,445 NAS-Bench-201 networks of the benchmark tables.

    python search.py --server 127.0.0.1:50051 --bench ../../../../shared/benchdata \\
        --study run-1 --budget 200 --workers 4 --method screened

Each generation, NSGA-II-style crossover and mutation propose offspring of
the current population. `screened` asks nasperf's ParetoRank for many of
them and "trains" only the few whose predicted values add the most
hypervolume to the true front found so far; `nsga2` trains the offspring it would
have proposed anyway; `random` trains random networks. Training is
simulated the usual way for tabular benchmarks: the true values are looked
up in the tables, and only then reported to nasperf with `record`, so the
service's models learn only from what the search paid for (the server must
start with no true values of these objectives: a fresh store, no --bench).
`--workers K` processes share the server: each screens and trains its part
of every generation.

Prints one JSON line per generation: evaluations spent and the hypervolume
of the true Pareto front found so far. A study that already holds
evaluations is resumed: they count toward the budget.
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
from typing import Optional

ACC = "cifar10/val_acc_200ep"
LAT = "cifar10/edgegpu_latency"
#: A reference point worse than every network in the tables:
#: (accuracy, latency).
REFERENCE = (0.0, 40.0)


def load_tables(bench: pathlib.Path) -> dict[str, tuple[float, float]]:
    """NB201 arch string -> (validation accuracy, edge-GPU latency)."""
    acc, arch = {}, {}
    with open(bench / "nb201-groundtruth" / "zccombine_nb201_cifar10_valid_nets.csv") as f:
        for row in csv.DictReader(f):
            acc[row["net"]] = float(row["val_accs"])
            arch[row["net"]] = row["net_str"]
    out = {}
    with open(bench / "hw-nas-bench" / "zccombine_hw_cifar10.csv") as f:
        for row in csv.DictReader(f):
            if row["net"] in acc:
                out[arch[row["net"]]] = (acc[row["net"]], float(row["edgegpu_latency"]))
    return out


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


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Of (accuracy: max, latency: min) points, against REFERENCE."""
    pts = sorted((-a, l) for a, l in points if a > REFERENCE[0] and l < REFERENCE[1])
    area, ceiling = 0.0, REFERENCE[1]
    for na, lat in pts:
        if lat < ceiling:
            area += (-REFERENCE[0] - na) * (ceiling - lat)
            ceiling = lat
    return area


def nondominated(points: dict[str, tuple[float, float]]) -> list[str]:
    out = []
    for k, (a, l) in points.items():
        if not any((a2 >= a and l2 <= l) and (a2 > a or l2 < l) for a2, l2 in points.values()):
            out.append(k)
    return out


def select(population: dict[str, tuple[float, float]], size: int) -> list[str]:
    """NSGA-II survival by true values: whole fronts, then by spread."""
    left = dict(population)
    chosen: list[str] = []
    while left and len(chosen) < size:
        front = nondominated(left)
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


def pick_by_improvement(candidates, ranking, front, take, rng) -> list[str]:
    """Greedily the candidates whose predicted point adds the most
    hypervolume to the true front found so far, each pick joining the
    front before the next; ties (no improvement predicted) by predicted
    front and crowding."""
    predicted = {k: (v[0], v[1]) for k, v in zip(candidates, ranking.values)}
    order = {k: (ranking.fronts[i], -ranking.crowding[i], rng.random()) for i, k in enumerate(candidates)}
    current = list(front)
    base = hypervolume(current)
    chosen: list[str] = []
    left = list(candidates)
    while left and len(chosen) < take:
        gains = {k: hypervolume(current + [predicted[k]]) - base for k in left}
        best = max(left, key=lambda k: (gains[k], tuple(-x for x in order[k])))
        chosen.append(best)
        left.remove(best)
        current.append(predicted[best])
        base = hypervolume(current)
    return chosen


def work_share(args: tuple) -> tuple[list[tuple[str, float, float]], bool]:
    """One worker's part of a generation: screen (maybe), train, report."""
    server, study, method, candidates, take, table, worker, seed, front = args
    from nasperf_client import Client, Evaluation, NasperfError

    rng = random.Random(seed)
    with Client(server) as client:
        chosen = candidates[:take]
        screened = False
        if method == "screened" and len(candidates) > take:
            try:
                ranking = client.pareto_rank(candidates, {ACC: "max", LAT: "min"}, study=study)
                chosen = pick_by_improvement(candidates, ranking, front, take, rng)
                screened = True
            except NasperfError as e:
                # No model yet (FAILED_PRECONDITION): train what was proposed.
                if e.code.name != "FAILED_PRECONDITION":
                    raise
        trained = [(k, *table[k]) for k in chosen]
        report = client.record(
            [
                Evaluation(arch=k, objective=o, value=v, study=study, worker=worker,
                           idempotency_key=f"{study}:{o}:{k}")
                for k, acc, lat in trained
                for o, v in ((ACC, acc), (LAT, lat))
            ]
        )
        if report.rejected:
            raise RuntimeError(f"rejected: {report.rejected[:3]}")
        return trained, screened


def search(server: str, bench: pathlib.Path, study: str, method: str, budget: int,
           workers: int, seed: int, per_generation: int = 10, screen_factor: int = 20,
           population: int = 20, log=sys.stdout, generation_seconds: float = 0.0) -> list[dict]:
    from nasperf_client import Client

    table = load_tables(bench)
    rng = random.Random(seed)
    evaluated: dict[str, tuple[float, float]] = {}
    with Client(server) as client:
        client.create_study(study, f"{method} search, seed {seed}")
        # Resume: what the study already trained counts toward the budget
        # and is never trained again.
        known: dict[str, dict[str, float]] = {}
        for e in client.list_evaluations(study):
            known.setdefault(e.encoding, {})[e.objective] = e.value
        for k in table:
            measured = known.get(genome_encoding(k), {})
            if ACC in measured and LAT in measured:
                evaluated[k] = (measured[ACC], measured[LAT])
    history = []
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        generation = 0
        while len(evaluated) < budget:
            take = min(per_generation, budget - len(evaluated))
            if method == "random" or len(evaluated) < population:
                pool_keys = [k for k in table if k not in evaluated]
                n = take * (screen_factor if method == "screened" else 1)
                candidates = rng.sample(pool_keys, min(n, len(pool_keys)))
            else:
                parents = select(evaluated, population)
                n = take * (screen_factor if method == "screened" else 1)
                candidates = offspring(parents, n, table, set(evaluated), rng)
            if not candidates:
                break
            generation_started = time.monotonic()
            # Split the generation across the workers.
            shares = []
            for w in range(workers):
                part = candidates[w::workers]
                quota = take // workers + (1 if w < take % workers else 0)
                if part and quota:
                    shares.append((server, study, method, part, quota,
                                   {k: table[k] for k in part}, f"w{w}", rng.randrange(1 << 30),
                                   [evaluated[k] for k in nondominated(evaluated)]))
            results = pool.map(work_share, shares) if pool else [work_share(s) for s in shares]
            screened = 0
            for trained, used_ranking in results:
                screened += used_ranking
                for k, acc, lat in trained:
                    evaluated[k] = (acc, lat)
            generation += 1
            point = {"method": method, "seed": seed, "generation": generation,
                     "evaluations": len(evaluated),
                     "shares_screened": screened,
                     "hypervolume": hypervolume(list(evaluated.values()))}
            history.append(point)
            print(json.dumps(point), file=log, flush=True)
            # Simulated training is instant; real training gives the service
            # time to retrain before the next generation is screened.
            rest = generation_seconds - (time.monotonic() - generation_started)
            if rest > 0:
                time.sleep(rest)
    finally:
        if pool:
            pool.close()
            pool.join()
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
    p.add_argument("--generation-seconds", type=float, default=0.0,
                   help="wall time each generation takes at least (simulated training)")
    a = p.parse_args(argv)
    search(a.server, a.bench, a.study, a.method, a.budget, a.workers, a.seed,
           generation_seconds=a.generation_seconds)


if __name__ == "__main__":
    main()
