#!/usr/bin/env python3
"""Would a change to the proxy default's models rank the test networks better?

A study for the recipe's levers (docs/quality.md, the lever table), not part of the product.
On the protocol's splits it compares the test Kendall tau-b of `base`, a stand-in for the
recipe's default on tables with zero-cost proxies, with variants of it. `base` is the mean of
the standardised predictions of three LightGBM models shaped as in `src/train/recipe/candidate.rs`: the
random-forest mode on every feature (`forest`), the same on the 13 proxies alone
(`proxies_forest`) and the small booster (`boosted_small`). The ranker, the fourth member of the
recipe's default, is left out: the figures are differences between variants, not the recipe's.

Variants (a number after the name is its setting):

- `monoT`: monotone constraints on every proxy whose Spearman rho with the target on the
  training networks is at least T in size, in its sign, in all three models;
- `pcaK`: the first K principal components of the proxies, rank-transformed by the training
  networks, added as features; `plsr`: the one direction of the rank-transformed proxies that
  covaries most with the target's ranks, added likewise;
- `psmV`: LightGBM's `path_smooth` V in all three models; `psbV`: in the small booster only;
- `dart`: the small booster with DART (drop rate 0.1); `l1`: the small booster with L1 1 and L2 5;
- `oh4`: a fourth member, the forest on the proxies and the op one-hot of the cell; `ohpf`: that
  forest in place of the proxy forest; `ohall`: the one-hot added to the forest's and the
  booster's features;
- `xt`: LightGBM's `extra_trees` (a random threshold per feature) in the two forests; `xtall`: in
  all three models;
- `gam`: a fourth member, boosted stumps (two leaves per tree) on the proxies, an additive model
  of them; `gamall`: the same on every feature; `gamsm`: stumps in place of the small booster;
- `lin`: the small booster with `linear_tree` (a linear model of the leaf's split features in
  each leaf, `linear_lambda` 1);
- `xtnT`, `xtbfF`, `xtffF`: `xt` (the recipe's forests in session 30) with T trees, a bagging
  fraction F or a feature fraction F in both forests; `xtbf1.0`, no rows drawn, is the recipe's
  since session 31;
- `cur`: the recipe's forests since session 31 (`xtbf1.0`), the baseline of the variants below,
  each on top of it: `curmdlK` / `curnlK` leaves of at least K rows / at most K leaves in both
  forests; `curohpf` the proxy forest on the proxies and the op one-hot; `curoh4` that forest as
  a fourth member; `curwf2` the forest on every feature counted twice in the mean; `curnosm`
  without the small booster.

`--family` instead compares `own` with the mean of the target's `base` and those of related
objectives, each trained on that objective's values of the same training networks.

Its input is the job files `nasperf eval` writes for the reference runner (`<out>/reference/`).
Make them with one quick reference model:

    nasperf eval --bench ../shared/benchdata --train-sizes 32,128 \\
        --objective cifar10/val_acc_200ep --objective cifar10/fgsm_eps1 ... \\
        --reference-models lightgbm --reference-feature-sets graph+proxies,onehot --out lever-study
    python scripts/lever_study.py lever-study/reference 32 base,mono0.5,pca3 \\
        cifar10__val_acc_200ep cifar10__fgsm_eps1
    python scripts/lever_study.py lever-study/reference 32 --family \\
        cifar10__val_acc_200ep cifar10__test_acc_200ep,cifar10__val_acc_12ep

It needs numpy, scipy, scikit-learn and lightgbm (scripts/reference-requirements.txt); it
scores a tau as scripts/related_objectives_study.py does, and imports it from there.
"""

import json
import re
import sys
from concurrent.futures import ProcessPoolExecutor

import lightgbm as lgb
import numpy as np
from scipy import stats

# Kendall tau-b, 0 for a constant prediction, as `nasperf eval` scores it.
from related_objectives_study import tau

# The variants of the docstring: a name, or a name and its setting.
VARIANT = re.compile(
    r"(base|plsr|dart|l1|oh4|ohpf|ohall|xt|xtall|gam|gamall|gamsm|lin"
    r"|cur|curohpf|curoh4|curwf2|curnosm)|(mono|pca|psm|psb|xtn|xtbf|xtff|curmdl|curnl)[0-9.]+")

# The recipe's forests since session 31: random thresholds, every row in every tree.
CURRENT_FORESTS = dict(extra_trees=True, bagging_fraction=1.0)

PROXY_PREFIX = "zc."
DATASET = dict(feature_pre_filter=False, min_data_in_bin=1, max_bin=63, verbosity=-1)


def forest_params(seed):
    return dict(objective="regression", boosting="rf", num_iterations=300, num_leaves=256,
                min_data_in_leaf=1, bagging_fraction=0.632, bagging_freq=1, feature_fraction=0.6,
                seed=seed, deterministic=True, num_threads=1, verbosity=-1)


def small_params(seed):
    return dict(objective="regression", num_iterations=300, learning_rate=0.05, num_leaves=8,
                min_data_in_leaf=2, feature_fraction=0.5, bagging_fraction=0.7, bagging_freq=1,
                lambda_l2=1.0, seed=seed, deterministic=True, num_threads=1, verbosity=-1)


def stump_params(seed):
    return dict(objective="regression", num_iterations=300, learning_rate=0.05, num_leaves=2,
                min_data_in_leaf=2, bagging_fraction=0.7, bagging_freq=1, lambda_l2=1.0,
                seed=seed, deterministic=True, num_threads=1, verbosity=-1)


def fit_predict(params, x, y, x_test, extra=None):
    params = dict(params, **(extra or {}))
    data = lgb.Dataset(x, y, params=dict(DATASET, min_data_in_leaf=min(5, max(1, len(y) // 8))))
    return lgb.train(params, data).predict(x_test)


def standardised(v):
    s = v.std()
    return (v - v.mean()) / s if s > 0 else v * 0


def rank_transformed(train, test):
    """Each column as the training networks' empirical distribution function."""
    out_train, out_test = np.empty_like(train), np.empty_like(test)
    for j in range(train.shape[1]):
        col = np.sort(train[:, j])
        out_train[:, j] = np.searchsorted(col, train[:, j], side="right") / len(col)
        out_test[:, j] = np.searchsorted(col, test[:, j], side="right") / len(col)
    return out_train, out_test


TABLES = {}


def table(path):
    """The job's values, its graph+proxies rows, the proxies' columns and its one-hot rows."""
    if path not in TABLES:
        job = json.load(open(path))
        sets = job["feature_sets"]
        gp = sets["graph+proxies"]
        # A proxy the tables lack is null in JSON, NaN here.
        x = np.asarray(gp["rows"], dtype=np.float64)
        proxies = [i for i, n in enumerate(gp["names"]) if n.startswith(PROXY_PREFIX)]
        onehot = np.asarray(sets["onehot"]["rows"], dtype=np.float64) if "onehot" in sets else None
        TABLES[path] = (job, np.array(job["targets"], float), x, proxies, onehot)
    return TABLES[path]


def base_mean(x, proxies, y, train, test, seed, variant="base", onehot=None):
    x_train, x_test = x[train], x[test]
    p_train, p_test = x[train][:, proxies], x[test][:, proxies]
    y_train = y[train]
    extra_all = extra_proxies = extra_small = None
    if variant in ("oh4", "ohpf", "ohall", "curohpf", "curoh4") and onehot is None:
        sys.exit(f"{variant} needs the onehot feature set in the job (--reference-feature-sets)")
    if variant.startswith("mono"):
        threshold = float(variant[4:])
        rho = [stats.spearmanr(p_train[:, j], y_train)[0] if p_train[:, j].std() > 0 else 0.0
               for j in range(p_train.shape[1])]
        signs = [int(np.sign(r)) if abs(r) >= threshold else 0 for r in np.nan_to_num(rho)]
        everywhere = [0] * x.shape[1]
        for k, j in enumerate(proxies):
            everywhere[j] = signs[k]
        method = dict(monotone_constraints_method="advanced")
        extra_proxies = dict(monotone_constraints=signs, **method)
        extra_all = extra_small = dict(monotone_constraints=everywhere, **method)
    elif variant.startswith("psm"):
        extra_all = extra_proxies = extra_small = dict(path_smooth=float(variant[3:]))
    elif variant.startswith("psb"):
        extra_small = dict(path_smooth=float(variant[3:]))
    elif variant == "dart":
        extra_small = dict(boosting="dart", drop_rate=0.1)
    elif variant == "xt":
        extra_all = extra_proxies = dict(extra_trees=True)
    elif variant.startswith(("xtn", "xtbf", "xtff")):
        setting = re.match(r"xt(n|bf|ff)([0-9.]+)", variant)
        key = dict(n="num_iterations", bf="bagging_fraction", ff="feature_fraction")[setting[1]]
        value = float(setting[2])
        extra_all = extra_proxies = dict(extra_trees=True, **{key: int(value) if key == "num_iterations" else value})
    elif variant.startswith("cur"):
        extra_all = dict(CURRENT_FORESTS)
        setting = re.match(r"cur(mdl|nl)([0-9]+)", variant)
        if setting:
            key = dict(mdl="min_data_in_leaf", nl="num_leaves")[setting[1]]
            extra_all[key] = int(setting[2])
        extra_proxies = dict(extra_all)
    elif variant == "xtall":
        extra_all = extra_proxies = extra_small = dict(extra_trees=True)
    elif variant == "lin":
        extra_small = dict(linear_tree=True, linear_lambda=1.0)
    elif variant == "l1":
        extra_small = dict(lambda_l1=1.0, lambda_l2=5.0)
    elif variant.startswith("pca") or variant == "plsr":
        r_train, r_test = rank_transformed(p_train, p_test)
        centre = r_train.mean(0)
        if variant == "plsr":
            ranks = stats.rankdata(y_train) / len(y_train)
            loadings = ((r_train - centre).T @ (ranks - ranks.mean()))[:, None]
        else:
            loadings = np.linalg.svd(r_train - centre, full_matrices=False)[2][: int(variant[3:])].T
        z_train, z_test = (r_train - centre) @ loadings, (r_test - centre) @ loadings
        x_train, x_test = np.hstack([x_train, z_train]), np.hstack([x_test, z_test])
        p_train, p_test = np.hstack([p_train, z_train]), np.hstack([p_test, z_test])
    elif variant == "ohall":
        x_train, x_test = np.hstack([x_train, onehot[train]]), np.hstack([x_test, onehot[test]])
    if variant in ("ohpf", "curohpf"):
        p_train, p_test = np.hstack([p_train, onehot[train]]), np.hstack([p_test, onehot[test]])
    forest = fit_predict(forest_params(seed), x_train, y_train, x_test, extra_all)
    proxy_forest = fit_predict(forest_params(seed), p_train, y_train, p_test, extra_proxies)
    members = [forest, proxy_forest]
    if variant == "gamsm":
        members.append(fit_predict(stump_params(seed), x_train, y_train, x_test))
    elif variant != "curnosm":
        members.append(fit_predict(small_params(seed), x_train, y_train, x_test, extra_small))
    if variant == "curwf2":
        members.append(forest)
    if variant == "gam":
        members.append(fit_predict(stump_params(seed), p_train, y_train, p_test))
    elif variant == "gamall":
        members.append(fit_predict(stump_params(seed), x_train, y_train, x_test))
    if variant in ("oh4", "curoh4"):
        # A fourth forest on the proxies and the one-hot, shaped as the other forests
        # (`extra_all` is None for `oh4`: the forests of `base`).
        po_train, po_test = np.hstack([p_train, onehot[train]]), np.hstack([p_test, onehot[test]])
        members.append(fit_predict(forest_params(seed), po_train, y_train, po_test, extra_all))
    return sum(standardised(m) for m in members)


def split_rows(n, split):
    train = np.array(split["train"])
    held = np.ones(n, bool)
    held[train] = False
    return train, np.nonzero(held)[0]


def variant_tau(task):
    path, variant, split = task
    _, y, x, proxies, onehot = table(path)
    train, test = split_rows(len(y), split)
    pred = base_mean(x, proxies, y, train, test, split["seed"], variant, onehot)
    return tau(pred, y[test])


def family_taus(task):
    target, related, split = task
    _, y, x, proxies, _ = table(target)
    train, test = split_rows(len(y), split)
    own = standardised(base_mean(x, proxies, y, train, test, split["seed"]))
    out = {"own": tau(own, y[test])}
    family = [own]
    for path in related:
        # The related objective's values of the same training networks, on the target's
        # features: the job files list the same 9,445 networks in the same order.
        values = table(path)[1]
        family.append(standardised(base_mean(x, proxies, values, train, test, split["seed"])))
        out["own+" + path.rsplit("/", 1)[-1].removesuffix(".job.json")] = tau(own + family[-1], y[test])
    out["all"] = tau(sum(family), y[test])
    return out


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    folder, size = sys.argv[1], int(sys.argv[2])
    job = lambda stem: f"{folder}/{stem}.job.json"
    with ProcessPoolExecutor(2) as pool:
        if sys.argv[3] == "--family":
            target, related = job(sys.argv[4]), [job(s) for s in sys.argv[5].split(",")]
            splits = [s for s in table(target)[0]["splits"] if s["train_size"] == size]
            results = list(pool.map(family_taus, [(target, related, s) for s in splits]))
            for key in results[0]:
                v = np.array([r[key] for r in results])
                gain = v.mean() - np.mean([r["own"] for r in results])
                print(f"{sys.argv[4]} {size} {key:48s} {v.mean():.3f} ± {v.std(ddof=1):.3f} {gain:+.3f}")
            return
        variants = sys.argv[3].split(",")
        # A misspelt variant would otherwise be fitted as `base` under its name.
        unknown = [v for v in variants if not VARIANT.fullmatch(v)]
        if unknown:
            sys.exit(f"unknown variants {unknown}; the docstring lists them")
        for stem in sys.argv[4:]:
            splits = [s for s in table(job(stem))[0]["splits"] if s["train_size"] == size]
            tasks = [(job(stem), v, s) for v in variants for s in splits]
            taus = np.array(list(pool.map(variant_tau, tasks))).reshape(len(variants), -1)
            means = taus.mean(axis=1)
            print(f"{stem:34s} {size:5d} " + " ".join(
                f"{v}:{m:.3f}({m - means[0]:+.3f})" for v, m in zip(variants, means)), flush=True)


if __name__ == "__main__":
    main()
