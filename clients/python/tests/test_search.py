"""A two-worker screened search against a server that starts with no true
values and learns from what the search reports."""

import io
import json
import os
import pathlib
import sys
import time

from nasperf_client import Client

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


def test_two_workers_search_and_the_service_learns(learning_server):
    # No true values yet: the first generations cannot be screened. (80
    # networks: a fifth held out must reach the 10 rows the gate needs.)
    log = io.StringIO()
    first = search.search(learning_server, BENCH, STUDY, "screened", budget=80, workers=2, seed=1, log=log)
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
