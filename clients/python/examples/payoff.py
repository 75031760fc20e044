"""Does screening with nasperf pay off? Runs the search of search.py with
prediction screening, plain NSGA-II and random proposals, each seed in its
own study of one fresh server, and writes docs/search.md and
docs/search-hypervolume.png.

    pip install ./clients/python scipy matplotlib
    python clients/python/examples/payoff.py --nasperf $CARGO_TARGET_DIR/release/nasperf \\
        --bench ../shared/benchdata --seeds 10 --budget 500

The server starts from an empty store (no true values of the objectives)
and retrains after every 10 new evaluations of an objective in a study.
Training is simulated by table lookup, so a search would outrun every
retraining; `--generation-seconds` (default 1 s) gives the service that
much wall time per generation of the screened search, as real training
would give it hours.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import search  # noqa: E402

BUDGETS = [100, 200, 500]
METHODS = ["screened", "nsga2", "random"]


def start_server(binary: str, data_dir: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [binary, "serve", "--listen", target, "--data-dir", data_dir,
         "--retrain-after", "10", "--retrain-interval", "0s"],
        stderr=subprocess.DEVNULL,
    )
    import grpc

    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
    return process, target


def at_budget(history: list[dict], budget: int) -> float:
    for h in history:
        if h["evaluations"] >= budget:
            return h["hypervolume"]
    return history[-1]["hypervolume"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nasperf", required=True)
    p.add_argument("--bench", type=pathlib.Path, required=True)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=max(BUDGETS))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--generation-seconds", type=float, default=1.0)
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs"))
    a = p.parse_args()

    from scipy.stats import mannwhitneyu
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = search.load_tables(a.bench)
    best = search.hypervolume([table[k] for k in search.nondominated(table)])
    histories: dict[str, list[list[dict]]] = {m: [] for m in METHODS}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as data:
        process, target = start_server(a.nasperf, data)
        try:
            for seed in range(a.seeds):
                for method in METHODS:
                    h = search.search(
                        target, a.bench, f"{method}-seed{seed}", method, a.budget, a.workers, seed,
                        log=io.StringIO(),
                        generation_seconds=a.generation_seconds if method == "screened" else 0.0,
                    )
                    histories[method].append(h)
                    print(f"seed {seed} {method}: hypervolume {h[-1]['hypervolume']:.1f} "
                          f"after {h[-1]['evaluations']} evaluations "
                          f"({time.monotonic() - started:.0f} s)", flush=True)
        finally:
            process.kill()
            process.wait()

    rows = []
    for budget in [b for b in BUDGETS if b <= a.budget]:
        values = {m: [at_budget(h, budget) for h in histories[m]] for m in METHODS}
        p_nsga = mannwhitneyu(values["screened"], values["nsga2"], alternative="greater").pvalue
        p_rand = mannwhitneyu(values["screened"], values["random"], alternative="greater").pvalue
        rows.append((budget, values, p_nsga, p_rand))

    a.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    grid = list(range(10, a.budget + 1, 10))
    for method, color in zip(METHODS, ["tab:blue", "tab:orange", "tab:gray"]):
        curves = [[at_budget(h, b) for b in grid] for h in histories[method]]
        mean = [statistics.mean(c[i] for c in curves) for i in range(len(grid))]
        ax.plot(grid, mean, label=method, color=color)
        lo = [min(c[i] for c in curves) for i in range(len(grid))]
        hi = [max(c[i] for c in curves) for i in range(len(grid))]
        ax.fill_between(grid, lo, hi, color=color, alpha=0.15)
    ax.axhline(best, color="black", linestyle="--", linewidth=1, label="true front of all 9,445")
    ax.set_xlabel("true evaluations spent")
    ax.set_ylabel("hypervolume of the true front found")
    ax.set_title("CIFAR-10 accuracy (max) vs edge-GPU latency (min), NAS-Bench-201")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out / "search-hypervolume.png", dpi=120)

    lines = [
        "# Does screening with nasperf pay off?",
        "",
        "A multi-objective NAS search over the 9,445 NAS-Bench-201 networks (maximise CIFAR-10",
        "validation accuracy, minimise edge-GPU latency), three ways, with the same budget of true",
        "evaluations: **screened** (NSGA-II offspring, 20 proposals per evaluation, of which those",
        "whose values predicted by nasperf's `ParetoRank` add the most hypervolume to the true front",
        "found so far are trained; the models are retrained from what the search reported), **nsga2**",
        "(the same search, every proposal evaluated) and **random**. The server starts from an empty",
        "store; each run is its own study, so a study's models learn only from its own evaluations.",
        f"{a.seeds} seeds per method, {a.workers} worker processes, hypervolume against",
        f"(accuracy {search.REFERENCE[0]}, latency {search.REFERENCE[1]} ms). The true Pareto front of",
        f"all 9,445 networks has hypervolume {best:.1f}.",
        "",
        "| evaluations | screened | nsga2 | random | p (screened > nsga2) | p (screened > random) |",
        "|---|---|---|---|---|---|",
    ]
    for budget, values, p_nsga, p_rand in rows:
        cell = lambda v: f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}"  # noqa: E731
        lines.append(
            f"| {budget} | {cell(values['screened'])} | {cell(values['nsga2'])} | "
            f"{cell(values['random'])} | {p_nsga:.3g} | {p_rand:.3g} |"
        )
    lines += [
        "",
        "Mean ± standard deviation over seeds; p from a one-sided Mann–Whitney U test.",
        "",
        "![hypervolume against evaluations](search-hypervolume.png)",
        "",
        "Made with:",
        "",
        "```sh",
        "pip install ./clients/python scipy matplotlib",
        "python clients/python/examples/payoff.py --nasperf $CARGO_TARGET_DIR/release/nasperf \\",
        f"    --bench ../shared/benchdata --seeds {a.seeds} --budget {a.budget} "
        f"--workers {a.workers} --generation-seconds {a.generation_seconds}",
        "```",
        "",
        f"It took {(time.monotonic() - started) / 60:.0f} minutes on 2 cores.",
        "",
    ]
    (a.out / "search.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
