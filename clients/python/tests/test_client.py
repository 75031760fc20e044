"""The client against a real server: predict, stream, rank, record exactly
once across injected duplicates and a server restart, and the server's
errors as Python exceptions."""

import threading
import time

import grpc
import pytest

from nasperf_client import Client, Evaluation, NasperfError
from nasperf_client._pb.nasperf.v1 import store_pb2

from conftest import OBJECTIVES, wait_ready

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
WORST = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def cells(n: int, offset: int = 0) -> list[str]:
    """n distinct NB201 cells in op-code form (6 digits of 0-4)."""
    out = []
    for i in range(offset, offset + n):
        digits = []
        for _ in range(6):
            digits.append(str(i % 5))
            i //= 5
        out.append("".join(digits))
    return out


def test_predict_stream_and_rank(server):
    with Client(server.target) as client:
        p = client.predict([BEST, "333133", "421211"], objectives=OBJECTIVES)
        assert p.objectives == OBJECTIVES
        assert set(p.model_versions) == set(OBJECTIVES)
        assert len(p.values) == 3 and all(len(row) == 2 for row in p.values)
        # The best cell, spelled two ways, is one network with one value.
        assert p.canonical_keys[0] == p.canonical_keys[1] == "333133"
        assert p.values[0] == p.values[1]
        assert p.column("cifar10/val_acc_200ep")[0] > p.column("cifar10/val_acc_200ep")[2]

        batches = [cells(50, k * 50) for k in range(4)]
        streamed = list(client.stream_predict(batches, objectives=OBJECTIVES))
        assert [len(s.values) for s in streamed] == [50] * 4
        assert streamed[2].values == client.predict(batches[2], objectives=OBJECTIVES).values

        archs = cells(300)
        r = client.pareto_rank(
            archs,
            {"cifar10/val_acc_200ep": "max", "cifar10/edgegpu_latency": "min"},
            reference_point=[0.0, 100.0],
        )
        assert len(r.fronts) == 300 and min(r.fronts) == 0
        assert r.hypervolume and r.hypervolume > 0
        assert all((c is not None) == (f == 0) for c, f in zip(r.contributions, r.fronts))

        served = {o.objective: o for o in client.list_objectives()}
        assert set(served) == set(OBJECTIVES)
        # Which dataset's proxies each model reads: the accuracy model its
        # own dataset's, the latency model none.
        assert served["cifar10/val_acc_200ep"].proxy_dataset == "cifar10"
        assert served["cifar10/edgegpu_latency"].proxy_dataset == ""


def test_every_prediction_can_carry_its_interval(server):
    with Client(server.target) as client:
        served = {o.objective: o for o in client.list_objectives()}
        plain = client.predict([BEST, WORST], objectives=OBJECTIVES)
        assert plain.interval(0, OBJECTIVES[0]) is None, "not asked for"
        p = client.predict([BEST, WORST], objectives=OBJECTIVES, intervals=True)
        assert p.values == plain.values
        for objective in OBJECTIVES:
            info = served[objective]
            assert info.interval is not None, objective
            half_width, coverage = info.interval
            assert half_width > 0 and coverage == pytest.approx(0.8)
            assert p.interval_coverage[objective] == pytest.approx(0.8)
            # Measured on rows the model never trained on when it was made.
            assert 0.0 <= info.heldout_interval_coverage <= 1.0
            # No proxies were sent: a model that reads them answers from its
            # architecture-only trees, with their (wider) interval.
            expected = info.interval_half_width_without_proxies or half_width
            for i in range(2):
                low, high = p.interval(i, objective)
                value = p.values[i][p.objectives.index(objective)]
                assert low == pytest.approx(value - expected)
                assert high == pytest.approx(value + expected)


def test_errors_keep_the_servers_status_and_message(server):
    with Client(server.target) as client:
        with pytest.raises(NasperfError) as e:
            client.predict([BEST, "|conv~0|"], objectives=OBJECTIVES)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "candidates[1].arch" in e.value.details
        with pytest.raises(NasperfError) as e:
            client.predict([BEST], objectives=["cifar10/bogus"])
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        assert "objectives[0]" in e.value.details
        with pytest.raises(ValueError):
            client.pareto_rank([BEST], {"cifar10/val_acc_200ep": "up", "cifar10/edgegpu_latency": "min"})


def test_record_is_exactly_once_across_duplicates_and_a_restart(server):
    study = "py-restart"
    evaluations = [
        Evaluation(
            arch=a,
            objective="cifar10/val_acc_200ep",
            value=50.0 + i % 40,
            study=study,
            worker="py",
            idempotency_key=f"{study}:{a}",
        )
        for i, a in enumerate(cells(1500))
    ]
    # Injected duplicates: the first 100 reports sent again at the end.
    sent = evaluations + [
        Evaluation(**{**e.__dict__}) for e in evaluations[:100]
    ]
    with Client(server.target, timeout=10) as client:
        client.create_study(study)
        client.create_study(study)  # exist_ok
        report = {}

        def work():
            report["r"] = client.record(sent, chunk_size=5, backoff=0.05, max_retries=60)

        worker = threading.Thread(target=work)
        worker.start()
        # Kill once some rows are stored and most are not: polled, not a
        # fixed sleep, because how long the record takes depends on the
        # machine (it finished within 0.8 s once the server set TCP_NODELAY,
        # and the kill came too late).
        deadline = time.time() + 60
        stored = 0
        while time.time() < deadline and stored < 100:
            stored = client._store.GetStudy(store_pb2.GetStudyRequest(name=study), timeout=10).evaluations
        assert 100 <= stored < len(evaluations), f"the record was not caught mid-way ({stored} stored)"
        server.kill()  # mid-stream, without warning
        time.sleep(0.5)
        server.start()
        wait_ready(server.target)
        worker.join(timeout=120)
        assert not worker.is_alive(), "record never finished"
        r = report["r"]
        assert r.rejected == []
        assert r.retries >= 1, "the restart was seen"
        assert r.stored + r.already_stored == len(sent)
        assert r.already_stored >= 100
        stored = client.list_evaluations(study)
        keys = [e.idempotency_key for e in stored]
        assert len(keys) == len(set(keys)) == 1500, "every evaluation once"


def test_rejected_rows_are_reported_and_good_rows_kept(server):
    with Client(server.target) as client:
        r = client.record(
            [
                Evaluation(arch=BEST, objective="cifar10/val_acc_200ep", value=90.9, idempotency_key="ok"),
                Evaluation(arch="|conv~0|", objective="cifar10/val_acc_200ep", value=1.0, idempotency_key="bad"),
            ]
        )
        assert r.stored == 1
        assert len(r.rejected) == 1
        index, status, message = r.rejected[0]
        assert (index, status) == (1, "INVALID_ARGUMENT")
        assert "evaluations[1].arch" in message
