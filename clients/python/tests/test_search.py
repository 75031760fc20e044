"""A two-worker screened search against a server that starts with no true
values and learns from what the search reports."""

import io
import itertools
import json
import math
import os
import pathlib
import random
import sys
import time

import pytest

from nasperf_client import Client, NasperfError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
import search  # noqa: E402

BENCH = pathlib.Path(
    os.environ.get(
        "NASPERF_BENCHDATA",
        str(pathlib.Path(__file__).resolve().parents[4] / "shared" / "benchdata"),
    )
)
STUDY = "py-search"


def wait_for_study_models(target: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with Client(target) as client:
        while True:
            served = {o.objective: o.model_study for o in client.list_objectives(STUDY)}
            if served.get(search.ACC) == STUDY and served.get(search.LAT) == STUDY:
                return
            assert time.monotonic() < deadline, f"no models for the study: {served}"
            time.sleep(0.2)


def retrain(client, study, objectives, force=False, timeout=60.0):
    """Client.retrain, again while the server's own loop holds the trainer
    lock (ABORTED)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.retrain(study, objectives, force=force)
        except NasperfError as e:
            if e.code.name != "ABORTED" or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_two_workers_search_and_the_service_learns(learning_server):
    # No true values yet: the first generations cannot be screened. (80
    # networks: a fifth held out must reach the 10 rows the gate needs.)
    log = io.StringIO()
    # Generations of 20, each waiting for the service's retraining attempt
    # (it retrains after 20 new evaluations), so an attempt sees each
    # 20: without waiting, a tick between two reports could leave fewer
    # than 20 new at the end and no attempt on all 80.
    first = search.search(learning_server, BENCH, STUDY, "screened", budget=80, workers=2, seed=1,
                          per_generation=20, wait=True, log=log)
    assert first[-1]["evaluations"] == 80
    assert first[0]["shares_screened"] == 0
    assert len(log.getvalue().splitlines()) == len(first)
    assert json.loads(log.getvalue().splitlines()[-1])["evaluations"] == 80
    # The service retrains on what was reported...
    wait_for_study_models(learning_server)
    # ...and the resumed search's next generations are screened by its
    # predictions.
    second = search.search(learning_server, BENCH, STUDY, "screened", budget=140, workers=2, seed=2)
    assert second[0]["evaluations"] > 80, "resumed from the study"
    assert second[-1]["evaluations"] == 140
    assert sum(h["shares_screened"] for h in second) > 0
    hv = [h["hypervolume"] for h in second]
    assert hv == sorted(hv) and hv[-1] > 0, "the front found only improves"
    with Client(learning_server) as client:
        stored = client.list_evaluations(STUDY)
        keys = [e.idempotency_key for e in stored]
        assert len(keys) == len(set(keys)) == 2 * 140, "each trained network once per objective"


def test_three_objective_hypervolume_matches_brute_force():
    # Every cell of the grid the points' coordinates span, counted if some
    # point dominates it: exact for any set.
    rng = random.Random(7)
    wanted = search.goals(robustness=True)
    for _ in range(100):
        points = [(rng.choice([10, 50, 80, 90.5]), rng.choice([5, 20, 35, 45]), rng.choice([0, 10, 30, 60]))
                  for _ in range(rng.randrange(1, 9))]
        losses = search._minimised(points, wanted)
        axes = [sorted({0.0} | {p[d] for p in losses}) for d in range(3)]
        brute = 0.0
        for cell in itertools.product(*(range(len(a) - 1) for a in axes)):
            corner = [axes[d][cell[d]] for d in range(3)]
            if any(all(p[d] <= corner[d] for d in range(3)) for p in losses):
                brute += math.prod(axes[d][cell[d] + 1] - axes[d][cell[d]] for d in range(3))
        assert search.hypervolume(points, wanted) == pytest.approx(brute, rel=1e-9, abs=1e-9), points


def test_three_objectives_with_proxies_waiting_for_the_services_retraining(learning_server):
    # Robustness as a third objective; every screened or trained network's
    # proxies are sent and their GPU cost counted; each generation waits
    # for the service's own retraining attempt.
    study = "py-three"
    # 20 per generation: the fixture's server retrains after 20 new
    # evaluations of an objective.
    history = search.search(learning_server, BENCH, study, "screened", budget=100, workers=2, seed=3,
                            per_generation=20, robustness=True, proxies=True, wait=True,
                            log=io.StringIO())
    assert history[-1]["evaluations"] == 100
    assert sum(h["shares_screened"] for h in history) > 0, "screened once the study's models served"
    assert history[-1]["proxy_gpu_hours"] >= 100 * search.PROXY_GPU_SECONDS / 3600
    with Client(learning_server) as client:
        stored = client.list_evaluations(study)
        assert sorted({e.objective for e in stored}) == sorted([search.ACC, search.LAT, search.PGD])
        assert len(stored) == 3 * 100
        versions, attempts = client.list_models(study)
        served = {v.objective for v in versions if v.status in ("active", "pinned")}
        assert served == {search.ACC, search.LAT, search.PGD}
        assert {a.objective for a in attempts} == served
        # An explicit retraining through the Models service (the last
        # generation's data may not have been trained yet); then the data
        # did not change, so nothing is trained unless forced.
        retrain(client, study, [search.PGD])
        results = retrain(client, study, [search.PGD])
        assert [(r.objective, r.outcome) for r in results] == [(search.PGD, "unchanged")]
        forced = retrain(client, study, [search.PGD], force=True)
        assert forced[0].outcome in ("promoted", "candidate") and forced[0].kendall_tau is not None
