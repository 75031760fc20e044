#!/usr/bin/env python3
"""Would the models of related objectives rank a hard robustness target better than its own?

A study for the recipe's next lever (docs/quality.md, "The next lever"), not part of the
product. For each target, on the protocol's splits, it compares the test Kendall tau of

- `own`: a random forest (scikit-learn, 100 trees) trained on the target's values, and
- `family`: the mean of that forest and the forests of the same attack at smaller epsilons,
  each trained on its own objective's values of the same training networks and standardised
  by its out-of-fold predictions on them (so that every member weighs the same),

and the same two figures out of fold on the training networks (`oof_own`, `oof_family`): what an
inner cross-validation would see. Only the training networks' values of any objective are used.

Its input is the job files `nasperf eval` writes for the reference runner (`<out>/reference/`):
every one holds an objective's values of all 9,445 networks, the feature sets and the splits.
Make them, with one quick reference model, by:

    nasperf eval --bench ../shared/benchdata --train-sizes 32,128 \\
        $(for o in apgd_ce_eps0.5 apgd_ce_eps1 apgd_ce_eps2 apgd_ce_eps3 apgd_ce_eps4 \\
                   apgd_ce_eps8 pgd_eps0.5 pgd_eps1 pgd_eps2 pgd_eps3 pgd_eps4 pgd_eps8 \\
                   square_eps1 square_eps3 square_eps8 fgsm_eps1 fgsm_eps2 fgsm_eps8 \\
                   fgsm_eps255; do echo --objective cifar10/$o; done) \\
        --reference-models lightgbm --reference-feature-sets graph+proxies --out related-study
    python scripts/related_objectives_study.py related-study/reference 32 \\
        apgd_ce_eps2,apgd_ce_eps3,pgd_eps4

It needs numpy, scipy and scikit-learn (scripts/reference-requirements.txt).
"""

import glob
import json
import os
import re
import sys

import numpy as np
from scipy.stats import kendalltau
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold

FEATURES = "graph+proxies"


def objective_of(path):
    """`cifar10/pgd_eps4` from `.../cifar10__pgd_eps4.job.json`."""
    return os.path.basename(path)[: -len(".job.json")].replace("__", "/")


def attack_and_eps(objective):
    """(`cifar10/pgd`, 4.0) for `cifar10/pgd_eps4`; (objective, None) for one without an epsilon."""
    m = re.match(r"(.*)_eps([\d.]+)$", objective)
    return (m.group(1), float(m.group(2))) if m else (objective, None)


def tau(pred, truth):
    """Kendall tau-b, 0 for a constant prediction (as `nasperf eval` scores it)."""
    if np.all(pred == pred[0]):
        return 0.0
    return kendalltau(pred, truth)[0]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    job_dir, train_size, names = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    jobs = {objective_of(p): json.load(open(p)) for p in sorted(glob.glob(f"{job_dir}/*.job.json"))}
    if not jobs:
        sys.exit(f"no job files in {job_dir}")
    dataset = {o.split("/")[0] for o in jobs}
    if len(dataset) != 1:
        sys.exit(f"job files of several datasets: {sorted(dataset)}")
    # Every objective of one dataset has the same networks in the same order, so the same
    # features and splits: take them from the job with the most splits of this size.
    first = max(jobs.values(), key=lambda j: sum(s["train_size"] == train_size for s in j["splits"]))
    rows = first["feature_sets"][FEATURES]["rows"]
    x = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    values = {o: np.array(j["targets"], dtype=float) for o, j in jobs.items()}
    splits = [s for s in first["splits"] if s["train_size"] == train_size]

    fitted = {}

    def forest(seed, objective, train, test):
        """Test predictions and out-of-fold training predictions of one objective's forest."""
        key = (seed, objective)
        if key not in fitted:
            y = values[objective][train]

            def model():
                return RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1)

            oof = np.zeros(len(train))
            for fit_idx, held in KFold(5, shuffle=True, random_state=seed).split(train):
                oof[held] = model().fit(x[train][fit_idx], y[fit_idx]).predict(x[train][held])
            fitted[key] = (model().fit(x[train], y).predict(x[test]), oof)
        return fitted[key]

    for short in names:
        target = short if "/" in short else f"{next(iter(dataset))}/{short}"
        if target not in values:
            sys.exit(f"no job file for {target}")
        attack, eps = attack_and_eps(target)
        family = sorted(
            o for o in values if eps is not None and attack_and_eps(o)[0] == attack and attack_and_eps(o)[1] <= eps
        ) or [target]
        figures = {"own": [], "family": [], "oof_own": [], "oof_family": []}
        for split in splits:
            train = np.array(split["train"])
            held_out = np.ones(len(x), bool)
            held_out[train] = False
            test = np.where(held_out)[0]
            seed = split["seed"]
            pred, oof = forest(seed, target, train, test)
            figures["own"].append(tau(pred, values[target][test]))
            figures["oof_own"].append(tau(oof, values[target][train]))
            mean_test, mean_oof = np.zeros(len(test)), np.zeros(len(train))
            for member in family:
                p, o = forest(seed, member, train, test)
                scale = o.std() or 1.0
                mean_test += (p - o.mean()) / scale
                mean_oof += (o - o.mean()) / scale
            figures["family"].append(tau(mean_test, values[target][test]))
            figures["oof_family"].append(tau(mean_oof, values[target][train]))
        summary = " ".join(f"{k} {np.mean(v):.3f}" for k, v in figures.items())
        print(f"{target} N={train_size} ({len(splits)} seeds; family: {', '.join(family)}): {summary}", flush=True)


if __name__ == "__main__":
    main()
