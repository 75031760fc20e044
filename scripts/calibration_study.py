#!/usr/bin/env python3
"""Scores rules for the interval's width on the fits of `nasperf eval` runs.

A calibration rule only sets the interval's half-width; the predictions stay
the same. Each run of `quality.json` records what the width was calibrated
from (`interval`: the error quantiles of models of `far_rows` and
`near_rows` rows, the rows, the numerical floor) and the half-widths that
would have held 50%, 51%, ... 99% of its test networks
(`held_out_half_widths`). So any rule's coverage on the same fits is read off
those widths, without fitting again, to within a point per run (interpolated
between the shares).

    scripts/calibration_study.py RUN_DIR/quality.json [...]

prints, per rule and train size, the mean coverage over objectives, the
cells more than 5 points off 80% and which, for the trees with proxies and
those without (where `--without-proxies` scored them). The `current` rule
must give back each run's recorded coverage: the script checks it.
"""

import json
import math
import sys
from collections import defaultdict

SHARES = [p / 100 for p in range(50, 100)]
MAX_POWER = 8.0


def shrink(cal, min_power=0.0, damping=1.0):
    """The learning curve's factor, as `learning_curve_shrink` computes it,
    with the power taken as 0 below `min_power` and multiplied by `damping`."""
    far_rows, far_q = cal["far_rows"], cal["far_quantile"]
    near_rows, near_q = cal["near_rows"], cal["near_quantile"]
    n = cal["rows"]
    if far_q is None or near_q is None:
        return 1.0
    measured = near_q > 0 and math.isfinite(far_q) and far_rows > 0
    if not (measured and far_q > near_q and near_rows > far_rows and n > near_rows):
        return 1.0
    power = min(math.log(far_q / near_q) / math.log(near_rows / far_rows), MAX_POWER)
    if power < min_power:
        return 1.0
    return (near_rows / n) ** (power * damping)


def carried(cal, **kw):
    near_q = cal["near_quantile"]
    if near_q is None or math.isnan(near_q):
        return float("nan")
    return max(near_q * shrink(cal, **kw), min(near_q, cal["numerical_floor"]))


RULES = {
    "current": lambda cal: carried(cal),
    "no curve": lambda cal: cal["near_quantile"],
    "curve from power 0.5": lambda cal: carried(cal, min_power=0.5),
    "curve from power 1": lambda cal: carried(cal, min_power=1.0),
    "curve from power 2": lambda cal: carried(cal, min_power=2.0),
    "half the curve's power": lambda cal: carried(cal, damping=0.5),
}


def coverage_at(width, held):
    """The share of test networks within `width`, from the half-widths that
    held each share: the largest share held, interpolated to the next."""
    if width is None or math.isnan(width):
        return float("nan")
    if width < held[0]:
        return SHARES[0] * width / held[0] if held[0] > 0 else SHARES[0]
    if width >= held[-1]:
        return 0.995
    for k in range(len(held) - 1):
        lo, hi = held[k], held[k + 1]
        if lo <= width < hi:
            return SHARES[k] + (SHARES[k + 1] - SHARES[k]) * (width - lo) / (hi - lo)
    return 0.995


def main(paths):
    # (side, rule, N) -> objective -> [coverage per seed]
    table = defaultdict(lambda: defaultdict(list))
    worst_check = 0.0
    for path in paths:
        with open(path) as f:
            runs = json.load(f)["runs"]
        for run in runs:
            sides = [("with proxies", run)]
            if run.get("without_proxies"):
                sides.append(("without proxies", run["without_proxies"]))
            for side, r in sides:
                cal, held = r["interval"], r["held_out_half_widths"]
                for rule, width_of in RULES.items():
                    width = width_of(cal)
                    cov = coverage_at(width, held)
                    if rule == "current":
                        if not math.isclose(width, cal["half_width"], rel_tol=1e-9, abs_tol=1e-12):
                            sys.exit(f"{run['objective']} seed {run['seed']}: current rule gives "
                                     f"{width}, the run {cal['half_width']}")
                        if side == "with proxies" and not math.isnan(run["coverage"]):
                            worst_check = max(worst_check, abs(cov - run["coverage"]))
                        elif side == "without proxies":
                            worst_check = max(worst_check, abs(cov - r["coverage"]))
                    table[(side, rule, run["train_size"])][run["objective"]].append(cov)
    print(f"largest gap between the current rule read off the widths and the recorded "
          f"coverage of a run: {100 * worst_check:.2f} points\n")
    print("| trees | rule | N | objectives | mean coverage | off the bar (< 75% / > 85%) |")
    print("|---|---|---|---|---|---|")
    for (side, rule, n), by_objective in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][2], list(RULES).index(kv[0][1]))):
        means = {o: sum(c) / len(c) for o, c in by_objective.items() if not any(map(math.isnan, c))}
        if not means:
            continue
        low = sorted((o for o, m in means.items() if m < 0.75), key=means.get)
        high = sorted((o for o, m in means.items() if m > 0.85), key=means.get)
        def named(os):
            return ", ".join(f"{o} {100 * means[o]:.1f}" for o in os)
        print(f"| {side} | {rule} | {n} | {len(means)} | {100 * sum(means.values()) / len(means):.1f}% "
              f"| {len(low)} / {len(high)}: {named(low)}{'; ' if low and high else ''}{named(high)} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
