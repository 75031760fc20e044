#!/usr/bin/env python3
"""The reference predictors of `nasperf eval`: scikit-learn's random forest,
XGBoost and LightGBM from their Python packages, default settings, on the
exact feature sets and splits `nasperf eval` used.

    python scripts/reference_runner.py JOB.json RESULTS.json

`nasperf eval` writes JOB.json and calls this script itself (see
`--reference-python`); run by hand, it repeats one objective's reference
figures. The job holds one objective:

    {"objective": "cifar10/val_acc_200ep", "higher_is_better": true,
     "targets": [...], "feature_sets": {"graph": {"names": [...], "rows": [[...]]}},
     "splits": [{"train_size": 32, "seed": 0, "train": [indices]}],
     "models": ["random_forest", "xgboost", "lightgbm"], "top_fraction": 0.05}

Every network not in a split's `train` list is a test network. The results
are one record per split, model and feature set: Kendall tau-b (scipy's
default, which handles ties), Spearman rho, and the precision of the
predicted top fraction. A model that predicts the same value for every
network has no ranking: its correlations are written as 0 and the record
says `constant_prediction`. Models get the split's seed as their random state
and nothing else: every other setting is the package's default.

Needs numpy, scipy, scikit-learn, xgboost and lightgbm
(``pip install -r scripts/reference-requirements.txt``).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from scipy import stats


def make_model(name: str, seed: int):
    if name == "random_forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(random_state=seed, n_jobs=-1)
    if name == "xgboost":
        import xgboost

        return xgboost.XGBRegressor(random_state=seed)
    if name == "lightgbm":
        import lightgbm

        return lightgbm.LGBMRegressor(random_state=seed, verbose=-1)
    raise SystemExit(f"unknown reference model {name!r}; known: random_forest, xgboost, lightgbm")


def top_precision(pred: np.ndarray, truth: np.ndarray, fraction: float, higher_is_better: bool) -> float:
    """How many of the truly best `fraction` of the networks are among the
    predicted best `fraction` (ties in the truth broken by position, as in
    `nasperf eval`)."""
    k = max(1, int(round(fraction * len(truth))))
    sign = -1.0 if higher_is_better else 1.0
    true_top = set(np.argsort(sign * truth, kind="stable")[:k].tolist())
    pred_top = set(np.argsort(sign * pred, kind="stable")[:k].tolist())
    return len(true_top & pred_top) / k


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        job = json.load(f)
    targets = np.asarray(job["targets"], dtype=np.float64)
    features = {name: np.asarray(fs["rows"], dtype=np.float64) for name, fs in job["feature_sets"].items()}
    for name, x in features.items():
        if x.shape[0] != len(targets):
            raise SystemExit(f"feature set {name}: {x.shape[0]} rows for {len(targets)} targets")
    results = []
    for split in job["splits"]:
        train = np.asarray(split["train"], dtype=np.int64)
        mask = np.ones(len(targets), dtype=bool)
        mask[train] = False
        test = np.flatnonzero(mask)
        for model_name in job["models"]:
            for fs_name, x in features.items():
                started = time.perf_counter()
                model = make_model(model_name, split["seed"])
                model.fit(x[train], targets[train])
                pred = model.predict(x[test])
                truth = targets[test]
                # A model that predicts one value for every network (LightGBM's
                # defaults cannot split 32 rows into leaves of 20) ranks
                # nothing: its correlations are undefined, scored 0 here and
                # counted apart.
                constant = bool(np.all(pred == pred[0]))
                results.append({
                    "train_size": split["train_size"],
                    "seed": split["seed"],
                    "model": model_name,
                    "feature_set": fs_name,
                    "kendall_tau": 0.0 if constant else float(stats.kendalltau(pred, truth).statistic),
                    "spearman_rho": 0.0 if constant else float(stats.spearmanr(pred, truth).statistic),
                    "constant_prediction": constant,
                    "top_precision": top_precision(pred, truth, job["top_fraction"], job["higher_is_better"]),
                    "seconds": time.perf_counter() - started,
                })
    with open(sys.argv[2], "w") as f:
        # allow_nan=False: a NaN would make the file unreadable as JSON.
        json.dump({"objective": job["objective"], "results": results}, f, allow_nan=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
