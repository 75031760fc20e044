"""Does screening with nasperf pay off? Runs the search of search.py with
prediction screening (on the server's graph features, and with zero-cost
proxies), plain NSGA-II and random proposals, each seed in its own study of
one fresh server, and writes a Markdown report and a PNG plot.

    pip install ./clients/python scipy matplotlib
    python clients/python/examples/payoff.py --nasperf $CARGO_TARGET_DIR/release/nasperf \\
        --bench ../shared/benchdata --seeds 10 --budget 500

`--robustness` adds the third objective (accuracy under PGD, eps 1/255)
and writes docs/search-robustness.md instead of docs/search.md.

The server starts from an empty store (no true values of the objectives)
and retrains after every 10 new evaluations of an objective in a study.
Training is simulated by table lookup, so a search would outrun every
retraining; the screened searches wait each generation for the service's
retraining attempt, as real training (hours per generation) would let them.
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
#: name -> (search method, proxies)
METHODS = {
    "screened": ("screened", False),
    "screened+proxies": ("screened", True),
    "nsga2": ("nsga2", False),
    "random": ("random", False),
}
COLORS = {"screened": "tab:blue", "screened+proxies": "tab:green", "nsga2": "tab:orange", "random": "tab:gray"}


def start_server(binary: str, data_dir: str, min_rows: int, min_heldout: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [binary, "serve", "--listen", target, "--data-dir", data_dir,
         "--retrain-after", "10", "--retrain-interval", "0s", "--retrain-check-every", "100ms",
         "--retrain-min-rows", str(min_rows), "--retrain-min-heldout", str(min_heldout)],
        stderr=subprocess.DEVNULL,
    )
    import grpc

    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
    return process, target


def at_budget(history: list[dict], budget: int, field: str = "hypervolume") -> float:
    for h in history:
        if h["evaluations"] >= budget:
            return h[field]
    return history[-1][field]


def on_test(front: list[str], tables: search.Tables, wanted) -> tuple[float, float]:
    """The front found, scored on CIFAR-10 test accuracy instead of
    validation accuracy: its hypervolume and its best test accuracy."""
    points = [(tables.test_accuracy[k],) + tables.values[k][1:] for k in front]
    return search.hypervolume(points, wanted), max(p[0] for p in points)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nasperf", required=True)
    p.add_argument("--bench", type=pathlib.Path, required=True)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=max(BUDGETS))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--robustness", action="store_true")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--min-rows", type=int, default=12,
                   help="the server's --retrain-min-rows: training rows before a study's first model")
    p.add_argument("--min-heldout", type=int, default=4,
                   help="the server's --retrain-min-heldout")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs"))
    a = p.parse_args()

    from scipy.stats import mannwhitneyu
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in a.methods.split(",") if m]
    wanted = search.goals(a.robustness)
    tables = search.load_tables(a.bench, wanted)
    true_front = search.nondominated(tables.values, wanted)
    best = search.hypervolume([tables.values[k] for k in true_front], wanted)
    best_test = on_test(true_front, tables, wanted)
    histories: dict[str, list[list[dict]]] = {m: [] for m in methods}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as data:
        process, target = start_server(a.nasperf, data, a.min_rows, a.min_heldout)
        try:
            for seed in range(a.seeds):
                for name in methods:
                    method, proxies = METHODS[name]
                    h = search.search(
                        target, a.bench, f"{name.replace('+', '-')}-seed{seed}", method, a.budget, a.workers, seed,
                        log=io.StringIO(), robustness=a.robustness, proxies=proxies,
                        wait=method == "screened", tables=tables,
                    )
                    histories[name].append(h)
                    print(f"seed {seed} {name}: hypervolume {h[-1]['hypervolume']:.1f} "
                          f"after {h[-1]['evaluations']} evaluations "
                          f"({time.monotonic() - started:.0f} s)", flush=True)
        finally:
            process.kill()
            process.wait()

    budgets = [b for b in BUDGETS if b <= a.budget]
    baselines = [m for m in ("nsga2", "random") if m in methods]
    screened = [m for m in methods if m.startswith("screened")]
    values = {b: {m: [at_budget(h, b) for h in histories[m]] for m in methods} for b in budgets}

    def pvalue(x: list[float], y: list[float]) -> float:
        return mannwhitneyu(x, y, alternative="greater").pvalue

    def cell(v: list[float]) -> str:
        return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"

    a.out.mkdir(parents=True, exist_ok=True)
    stem = "search-robustness" if a.robustness else "search"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    grid = list(range(10, a.budget + 1, 10))
    for m in methods:
        curves = [[at_budget(h, b) for b in grid] for h in histories[m]]
        mean = [statistics.mean(c[i] for c in curves) for i in range(len(grid))]
        ax.plot(grid, mean, label=m, color=COLORS[m])
        lo = [min(c[i] for c in curves) for i in range(len(grid))]
        hi = [max(c[i] for c in curves) for i in range(len(grid))]
        ax.fill_between(grid, lo, hi, color=COLORS[m], alpha=0.12)
    ax.axhline(best, color="black", linestyle="--", linewidth=1, label="true front of all 9,445")
    ax.set_xlabel("true evaluations spent")
    ax.set_ylabel("hypervolume of the true front found")
    title = "CIFAR-10 accuracy (max) vs edge-GPU latency (min)"
    if a.robustness:
        title += "\nvs PGD accuracy, eps 1/255 (max)"
    ax.set_title(title + ", NAS-Bench-201")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out / f"{stem}-hypervolume.png", dpi=120)

    objectives = ("maximise CIFAR-10 validation accuracy, minimise edge-GPU latency"
                  + (", maximise CIFAR-10 accuracy under PGD attack with eps 1/255" if a.robustness else ""))
    reference = ", ".join(f"{g.objective} {g.reference}" for g in wanted)
    lines = [
        "# Does screening with nasperf pay off?" + (" (three objectives)" if a.robustness else ""),
        "",
        f"A multi-objective NAS search over the 9,445 NAS-Bench-201 networks ({objectives}),",
        "several ways, with the same budget of true evaluations:",
        "",
        "- **screened**: NSGA-II offspring, 20 proposals per evaluation. nasperf's `ParetoRank`",
        "  predicts them from the server's graph features (free), and the proposals whose predicted",
        "  values add the most hypervolume to the true front found so far are trained.",
        "- **screened+proxies**: the same, and every screened or trained network also sends its 13",
        f"  zero-cost proxies. They are looked up in the tables here, but would cost about {search.PROXY_GPU_SECONDS:.0f} s of GPU",
        "  time per network; the GPU hours are counted below.",
        "- **nsga2**: the same search with every proposal evaluated.",
        "- **random**: random networks.",
        "",
        "The server starts from an empty store. Each run is its own study, so a study's models learn",
        "only from what that search reported. The service retrains after every 10 new evaluations;",
        f"a study's first model needs {a.min_rows} training and {a.min_heldout} held-out rows",
        f"(`--retrain-min-rows {a.min_rows} --retrain-min-heldout {a.min_heldout}`).",
        "Training is simulated by table lookup, so each screened generation waits for the service's",
        "retraining attempt, as real training (hours per generation) would let it.",
        f"{a.seeds} seeds per method, {a.workers} worker processes, hypervolume against ({reference}).",
        f"The true Pareto front of all 9,445 networks has hypervolume {best:.1f}.",
        "",
        "## Hypervolume of the true front found",
        "",
        "| evaluations | " + " | ".join(methods) + " | "
        + " | ".join(f"p ({s} > {b})" for s in screened for b in baselines) + " |",
        "|---|" + "---|" * (len(methods) + len(screened) * len(baselines)),
    ]
    for b in budgets:
        v = values[b]
        lines.append(
            f"| {b} | " + " | ".join(cell(v[m]) for m in methods) + " | "
            + " | ".join(f"{pvalue(v[s], v[o]):.3g}" for s in screened for o in baselines) + " |"
        )
    lines += [
        "",
        "Mean ± standard deviation over seeds; p from a one-sided Mann–Whitney U test.",
        "",
        f"![hypervolume against evaluations]({stem}-hypervolume.png)",
        "",
        f"## The fronts found, on test accuracy ({a.budget} evaluations)",
        "",
        "Each search's front (found on validation accuracy), scored with the CIFAR-10 test",
        "accuracy of its networks after 200 epochs: the hypervolume with test accuracy in place of",
        "validation accuracy, and the best test accuracy on the front. The true front of all",
        f"9,445 networks scores {best_test[0]:.1f} and {best_test[1]:.2f} %.",
        "",
        "| method | test hypervolume | best test accuracy (%) |",
        "|---|---|---|",
    ]
    for m in methods:
        scored = [on_test(h[-1]["front"], tables, wanted) for h in histories[m]]
        lines.append(f"| {m} | {cell([s[0] for s in scored])} | "
                     f"{statistics.mean(s[1] for s in scored):.2f} ± {statistics.stdev(s[1] for s in scored) if len(scored) > 1 else 0:.2f} |")
    if "screened+proxies" in methods:
        lines += [
            "",
            "## What the proxies cost",
            "",
            f"GPU hours spent computing proxies ({search.PROXY_GPU_SECONDS:.0f} s per network, once per network),",
            "in the screened+proxies search, mean over seeds:",
            "",
            "| evaluations | proxy GPU hours |",
            "|---|---|",
        ]
        for b in budgets:
            hours = [at_budget(h, b, "proxy_gpu_hours") for h in histories["screened+proxies"]]
            lines.append(f"| {b} | {statistics.mean(hours):.1f} |")
    command = [
        "pip install ./clients/python scipy matplotlib",
        "python clients/python/examples/payoff.py --nasperf $CARGO_TARGET_DIR/release/nasperf \\",
        f"    --bench ../shared/benchdata --seeds {a.seeds} --budget {a.budget} --workers {a.workers}"
        + (" --robustness" if a.robustness else "")
        + ("" if methods == list(METHODS) else f" --methods {','.join(methods)}"),
    ]
    lines += ["", "Made with:", "", "```sh", *command, "```", "",
              f"It took {(time.monotonic() - started) / 60:.0f} minutes on 2 cores.", ""]
    (a.out / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
