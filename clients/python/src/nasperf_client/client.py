"""The client over the generated stubs.

Results are plain Python (lists of floats, dicts), ready for numpy:
``numpy.asarray(prediction.values)`` is an (n candidates x n objectives)
array. Errors keep the server's status code and message, which name the
field and the candidate (``candidates[2].arch: ...``).
"""

from __future__ import annotations

import collections
import math
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Optional, Sequence, Union

import grpc

from ._pb.nasperf.v1 import (
    models_pb2,
    models_pb2_grpc,
    predictor_pb2,
    predictor_pb2_grpc,
    store_pb2,
    store_pb2_grpc,
)

ProxyMap = Mapping[str, float]


class NasperfError(Exception):
    """A call the server refused or could not answer.

    ``code`` is the gRPC status (``grpc.StatusCode``), ``details`` the
    server's message, e.g. ``candidates[0].arch: unknown op "conv"``.
    """

    def __init__(self, method: str, code: grpc.StatusCode, details: str):
        super().__init__(f"{method}: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details


def _wrap(method: str, error: grpc.RpcError) -> NasperfError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return NasperfError(method, code, details or "")


@dataclass(frozen=True)
class Prediction:
    """Values per candidate, in ``objectives`` order."""

    objectives: list[str]
    #: objective -> the model version that answered it
    model_versions: dict[str, str]
    #: objective -> the study whose model answered ("default" as a fallback)
    model_studies: dict[str, str]
    #: one row per candidate, one value per objective
    values: list[list[float]]
    canonical_keys: list[str]
    #: per candidate and objective: measured by the study rather than predicted
    measured: list[list[bool]]
    measurements_unavailable: bool = False
    #: per candidate and objective, when asked for (``intervals=True``): the
    #: half-width of the value's interval, 0 for a measured value
    interval_half_widths: list[list[float]] = field(default_factory=list)
    #: objective -> the nominal coverage of its intervals (e.g. 0.8)
    interval_coverage: dict[str, float] = field(default_factory=dict)

    def column(self, objective: str) -> list[float]:
        """Every candidate's value of one objective."""
        j = self.objectives.index(objective)
        return [row[j] for row in self.values]

    def interval(self, candidate: int, objective: str) -> Optional[tuple[float, float]]:
        """``(low, high)``: where the true value of one candidate lies with
        the model's nominal coverage (``interval_coverage``). ``None`` when
        intervals were not asked for, the model has none, or the value was
        measured rather than predicted."""
        j = self.objectives.index(objective)
        if not self.interval_half_widths or self.measured[candidate][j]:
            return None
        half_width = self.interval_half_widths[candidate][j]
        if half_width <= 0:
            return None
        value = self.values[candidate][j]
        return (value - half_width, value + half_width)


@dataclass(frozen=True)
class Ranking:
    """``ParetoRank``'s answer, per candidate in request order."""

    objectives: list[str]
    values: list[list[float]]
    fronts: list[int]
    crowding: list[float]
    #: exclusive hypervolume contribution, for front-0 candidates
    contributions: list[Optional[float]]
    hypervolume: Optional[float]
    canonical_keys: list[str]


@dataclass
class Evaluation:
    """A true measurement to record. Without ``idempotency_key`` the
    client picks one (a UUID) once, before the first attempt, so retries
    reuse it."""

    arch: str
    objective: str
    value: float
    study: str = ""
    search_space: str = "nb201"
    budget: Optional[float] = None
    worker: str = ""
    idempotency_key: str = ""
    dataset: str = ""
    proxies: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordReport:
    stored: int
    already_stored: int
    #: (index into the evaluations given, status name, message)
    rejected: list[tuple[int, str, str]]
    #: how many attempts hit UNAVAILABLE and were retried
    retries: int


@dataclass(frozen=True)
class ObjectiveInfo:
    objective: str
    unit: str
    model_version: str
    model_study: str
    heldout_kendall_tau: float
    training_rows: int
    load_error: str
    #: (half-width, nominal coverage) of the model's interval, if it has one
    #: (for a model that reads proxies: of a candidate with every proxy)
    interval: Optional[tuple[float, float]] = None
    #: for a model that reads proxies: the half-width for a candidate without
    #: every proxy (answered by trees trained on the architecture alone)
    interval_half_width_without_proxies: Optional[float] = None
    #: how often the true value fell inside it on held-out rows
    heldout_interval_coverage: Optional[float] = None
    #: for a model that reads proxies, the dataset they must be computed on
    #: (``dataset=`` of ``predict``): its own, or a stand-in where its
    #: training data had none of its own; ``""`` for a model without proxies
    proxy_dataset: str = ""


@dataclass(frozen=True)
class ModelVersion:
    """One trained version of a study's model of an objective."""

    study: str
    objective: str
    version: str
    #: "candidate", "active", "pinned" or "retired"
    status: str
    training_rows: int
    heldout_rows: int
    heldout_kendall_tau: float
    #: the version serving at training time, on the same held-out rows
    baseline_kendall_tau: Optional[float]
    #: why it was or was not promoted
    decision: str
    created_at: str


@dataclass(frozen=True)
class TrainingAttempt:
    """The last retraining attempt of a study and objective."""

    study: str
    objective: str
    #: "promoted", "candidate", "too_little_data", "unchanged" or "failed"
    outcome: str
    message: str
    updated_at_unix_ms: int


@dataclass(frozen=True)
class RetrainResult:
    study: str
    objective: str
    outcome: str
    version: str
    kendall_tau: Optional[float]
    baseline_kendall_tau: Optional[float]
    message: str
    seconds: float


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ["method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"]
    ),
    grpc.ClientCallDetails,
):
    pass


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer TOKEN`` to every call."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            list(details.metadata or []) + [self._header],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


def _pem(source: Optional[Union[str, os.PathLike, bytes]]) -> Optional[bytes]:
    """PEM bytes as given, or read from a path."""
    if source is None or isinstance(source, bytes):
        return source
    with open(source, "rb") as f:
        return f.read()


def _candidates(
    archs: Sequence[str],
    proxies: Optional[Sequence[Optional[ProxyMap]]],
    search_space: str,
) -> list[predictor_pb2.Candidate]:
    if proxies is not None and len(proxies) != len(archs):
        raise ValueError(f"proxies: {len(proxies)} maps for {len(archs)} architectures")
    return [
        predictor_pb2.Candidate(
            search_space=search_space,
            arch=arch,
            proxies=dict(proxies[i] or {}) if proxies is not None else {},
        )
        for i, arch in enumerate(archs)
    ]


class Client:
    """A connection to one nasperf server, or to several.

    gRPC keeps one long-lived HTTP/2 connection, so behind a plain
    Kubernetes Service every call of a worker goes to the same pod. With
    ``round_robin=True`` and a target that resolves to every replica --
    ``dns:///nasperf.nasperf.svc.cluster.local:50051`` for the headless
    Service in ``deploy/``, or ``ipv4:10.0.0.1:50051,10.0.0.2:50051`` --
    the channel connects to all of them and spreads calls over the ready
    ones; a replica that goes away is dropped and DNS changes are followed.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = 30.0,
        channel: Optional[grpc.Channel] = None,
        options: Sequence[tuple[str, object]] = (),
        round_robin: bool = False,
        token: Optional[str] = None,
        tls_ca: Optional[Union[str, os.PathLike, bytes]] = None,
        tls_cert: Optional[Union[str, os.PathLike, bytes]] = None,
        tls_key: Optional[Union[str, os.PathLike, bytes]] = None,
    ):
        opts = list(options)
        if round_robin:
            opts.append(("grpc.lb_policy_name", "round_robin"))
        scheme, _, addresses = target.partition(":")
        if scheme in ("ipv4", "ipv6") and "," in addresses and not any(
            k == "grpc.default_authority" for k, _ in opts
        ):
            # gRPC would send the whole list as :authority, which is not a
            # valid authority; the server resets every stream.
            opts.append(("grpc.default_authority", addresses.split(",")[0]))
        if channel is not None:
            self._channel = channel
        elif tls_ca is not None or tls_cert is not None:
            # TLS: trust `tls_ca` (PEM; the system's roots when None) and,
            # for mutual TLS, present `tls_cert` with `tls_key`.
            if (tls_cert is None) != (tls_key is None):
                raise ValueError("tls_cert and tls_key: give both or neither")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(tls_ca), private_key=_pem(tls_key), certificate_chain=_pem(tls_cert)
            )
            self._channel = grpc.secure_channel(target, credentials, options=opts)
        else:
            self._channel = grpc.insecure_channel(target, options=opts)
        # A bearer token (or NASPERF_TOKEN) for servers that require one.
        token = token if token is not None else os.environ.get("NASPERF_TOKEN")
        if token:
            self._channel = grpc.intercept_channel(self._channel, _BearerToken(token))
        self._timeout = timeout
        self._predictor = predictor_pb2_grpc.PredictorStub(self._channel)
        self._store = store_pb2_grpc.StoreStub(self._channel)
        self._models = models_pb2_grpc.ModelsStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- predictions ---

    def predict(
        self,
        archs: Sequence[str],
        proxies: Optional[Sequence[Optional[ProxyMap]]] = None,
        objectives: Optional[Sequence[str]] = None,
        dataset: str = "",
        *,
        study: str = "",
        search_space: str = "nb201",
        intervals: bool = False,
    ) -> Prediction:
        """Predicts ``objectives`` (all served ones when None) for each
        architecture; ``proxies[i]``, if given, were computed on ``dataset``.
        With ``intervals``, each value also carries its interval
        (``Prediction.interval``)."""
        request = predictor_pb2.PredictRequest(
            candidates=_candidates(archs, proxies, search_space),
            dataset=dataset,
            objectives=list(objectives or []),
            study=study,
            intervals=intervals,
        )
        try:
            response = self._predictor.Predict(request, timeout=self._timeout)
        except grpc.RpcError as e:
            raise _wrap("Predict", e) from None
        return _prediction(response)

    def stream_predict(
        self,
        batches: Iterable[Sequence[str]],
        objectives: Optional[Sequence[str]] = None,
        *,
        study: str = "",
        search_space: str = "nb201",
    ) -> Iterator[Prediction]:
        """Predicts batches over one stream, yielding one Prediction per
        batch, in order. For many batches without per-call overhead."""
        wanted = list(objectives or [])

        def requests() -> Iterator[predictor_pb2.PredictRequest]:
            for i, archs in enumerate(batches):
                yield predictor_pb2.PredictRequest(
                    candidates=_candidates(archs, None, search_space),
                    objectives=wanted,
                    study=study,
                    request_id=str(i),
                )

        try:
            for response in self._predictor.PredictStream(requests()):
                yield _prediction(response)
        except grpc.RpcError as e:
            raise _wrap("PredictStream", e) from None

    def pareto_rank(
        self,
        archs: Sequence[str],
        objectives: Union[Mapping[str, str], Sequence[tuple[str, str]]],
        reference_point: Optional[Sequence[float]] = None,
        proxies: Optional[Sequence[Optional[ProxyMap]]] = None,
        dataset: str = "",
        *,
        study: str = "",
        search_space: str = "nb201",
    ) -> Ranking:
        """Ranks candidates on objectives given as ``{"cifar10/val_acc_200ep":
        "max", "cifar10/edgegpu_latency": "min"}`` (order kept)."""
        items = list(objectives.items()) if isinstance(objectives, Mapping) else list(objectives)
        ranked = []
        for name, direction in items:
            d = {"max": predictor_pb2.MAXIMIZE, "min": predictor_pb2.MINIMIZE}.get(direction.lower()[:3])
            if d is None:
                raise ValueError(f"objectives[{name!r}]: direction {direction!r} is not 'max' or 'min'")
            ranked.append(predictor_pb2.RankedObjective(objective=name, direction=d))
        request = predictor_pb2.ParetoRankRequest(
            candidates=_candidates(archs, proxies, search_space),
            dataset=dataset,
            objectives=ranked,
            study=study,
            reference_point=list(reference_point or []),
        )
        try:
            r = self._predictor.ParetoRank(request, timeout=self._timeout)
        except grpc.RpcError as e:
            raise _wrap("ParetoRank", e) from None
        return Ranking(
            objectives=[o.objective for o in r.objectives],
            values=[list(c.values) for c in r.candidates],
            fronts=[c.front for c in r.candidates],
            crowding=[c.crowding_distance for c in r.candidates],
            contributions=[
                c.hypervolume_contribution if c.HasField("hypervolume_contribution") else None
                for c in r.candidates
            ],
            hypervolume=r.hypervolume if r.HasField("hypervolume") else None,
            canonical_keys=[c.canonical_key for c in r.candidates],
        )

    def list_objectives(self, study: str = "") -> list[ObjectiveInfo]:
        try:
            r = self._predictor.ListObjectives(
                predictor_pb2.ListObjectivesRequest(study=study), timeout=self._timeout
            )
        except grpc.RpcError as e:
            raise _wrap("ListObjectives", e) from None
        return [
            ObjectiveInfo(
                objective=o.objective,
                unit=o.unit,
                model_version=o.model_version,
                model_study=o.model_study,
                heldout_kendall_tau=o.heldout_kendall_tau,
                training_rows=o.training_rows,
                load_error=o.load_error,
                interval=(o.interval_half_width, o.interval_coverage) if o.interval_coverage > 0 else None,
                interval_half_width_without_proxies=(
                    o.interval_half_width_without_proxies
                    if o.HasField("interval_half_width_without_proxies")
                    else None
                ),
                heldout_interval_coverage=(
                    o.heldout_interval_coverage if o.HasField("heldout_interval_coverage") else None
                ),
                proxy_dataset=o.proxy_dataset,
            )
            for o in r.objectives
        ]

    # --- the store ---

    def create_study(self, name: str, description: str = "", *, exist_ok: bool = True) -> None:
        try:
            self._store.CreateStudy(
                store_pb2.CreateStudyRequest(name=name, description=description),
                timeout=self._timeout,
            )
        except grpc.RpcError as e:
            if exist_ok and e.code() == grpc.StatusCode.ALREADY_EXISTS:
                return
            raise _wrap("CreateStudy", e) from None

    def record(
        self,
        evaluations: Sequence[Union[Evaluation, Mapping[str, object]]],
        *,
        chunk_size: int = 500,
        max_retries: int = 10,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> RecordReport:
        """Records evaluations in chunks, exactly once: a chunk that hits
        UNAVAILABLE (the server or its database is away) is sent again with
        the same idempotency keys after an exponential, jittered backoff.
        Rows the server rejects are reported, not raised; other errors raise
        NasperfError after the chunks before them were stored."""
        rows = [e if isinstance(e, Evaluation) else Evaluation(**e) for e in evaluations]
        for e in rows:
            if not e.idempotency_key:
                e.idempotency_key = str(uuid.uuid4())
        stored = already = retries = 0
        rejected: list[tuple[int, str, str]] = []
        for start in range(0, len(rows), max(1, chunk_size)):
            chunk = rows[start : start + chunk_size]
            request = store_pb2.RecordEvaluationsRequest(evaluations=[_evaluation(e) for e in chunk])
            attempt = 0
            while True:
                try:
                    response = self._store.RecordEvaluationBatch(request, timeout=self._timeout)
                    break
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE or attempt >= max_retries:
                        raise _wrap("RecordEvaluationBatch", e) from None
                    delay = min(max_backoff, backoff * 2**attempt) * (0.5 + random.random())
                    attempt += 1
                    retries += 1
                    time.sleep(delay)
            # Every row sent has exactly one result; anything else means the
            # request was not seen whole, and nothing may be counted as stored.
            if sorted(r.index for r in response.results) != list(range(len(chunk))):
                raise NasperfError(
                    "RecordEvaluationBatch",
                    grpc.StatusCode.DATA_LOSS,
                    f"{len(response.results)} results for {len(chunk)} evaluations sent",
                )
            for result in response.results:
                if result.outcome == store_pb2.RecordResult.STORED:
                    stored += 1
                elif result.outcome == store_pb2.RecordResult.ALREADY_STORED:
                    already += 1
                else:
                    rejected.append((start + result.index, _status_name(result.code), result.message))
        return RecordReport(stored=stored, already_stored=already, rejected=rejected, retries=retries)

    def list_evaluations(self, study: str = "", objective: str = "") -> list[store_pb2.StoredEvaluation]:
        """Every evaluation of a study (all pages)."""
        out = []
        token = ""
        while True:
            try:
                r = self._store.ListEvaluations(
                    store_pb2.ListEvaluationsRequest(
                        studies=[study] if study else [],
                        objective=objective,
                        page_size=10_000,
                        page_token=token,
                    ),
                    timeout=self._timeout,
                )
            except grpc.RpcError as e:
                raise _wrap("ListEvaluations", e) from None
            out.extend(r.evaluations)
            token = r.next_page_token
            if not token:
                return out


    # --- models ---

    def list_models(
        self, study: str = "", objective: str = ""
    ) -> tuple[list[ModelVersion], list[TrainingAttempt]]:
        """Every model version (newest first per study and objective) and
        the last retraining attempt of each study and objective."""
        try:
            r = self._models.ListModels(
                models_pb2.ListModelsRequest(study=study, objective=objective),
                timeout=self._timeout,
            )
        except grpc.RpcError as e:
            raise _wrap("ListModels", e) from None
        versions = [
            ModelVersion(
                study=m.study,
                objective=m.objective,
                version=m.version,
                status=m.status,
                training_rows=m.training_rows,
                heldout_rows=m.heldout_rows,
                heldout_kendall_tau=m.heldout_kendall_tau,
                baseline_kendall_tau=m.baseline_kendall_tau if m.HasField("baseline_kendall_tau") else None,
                decision=m.decision,
                created_at=m.created_at,
            )
            for m in r.models
        ]
        attempts = [
            TrainingAttempt(
                study=a.study,
                objective=a.objective,
                outcome=a.outcome,
                message=a.message,
                updated_at_unix_ms=a.updated_at_unix_ms,
            )
            for a in r.last_attempts
        ]
        return versions, attempts

    def retrain(
        self, study: str = "", objectives: Sequence[str] = (), *, force: bool = False
    ) -> list[RetrainResult]:
        """Retrains now, through the quality gate, and waits for it (an
        admin call; the server also retrains on its own schedule)."""
        try:
            r = self._models.Retrain(
                models_pb2.RetrainRequest(study=study, objectives=list(objectives), force=force),
                timeout=max(self._timeout, 120.0),
            )
        except grpc.RpcError as e:
            raise _wrap("Retrain", e) from None
        return [
            RetrainResult(
                study=x.study,
                objective=x.objective,
                outcome=x.outcome,
                version=x.version,
                kendall_tau=x.kendall_tau if x.HasField("kendall_tau") else None,
                baseline_kendall_tau=x.baseline_kendall_tau if x.HasField("baseline_kendall_tau") else None,
                message=x.message,
                seconds=x.seconds,
            )
            for x in r.results
        ]


def _status_name(code: int) -> str:
    for c in grpc.StatusCode:
        if c.value[0] == code:
            return c.name
    return str(code)


def _evaluation(e: Evaluation) -> store_pb2.Evaluation:
    if not math.isfinite(e.value):
        # The server would refuse it too; failing here names the row sooner.
        raise ValueError(f"evaluation {e.idempotency_key}: value {e.value} is not finite")
    msg = store_pb2.Evaluation(
        study=e.study,
        search_space=e.search_space,
        arch=e.arch,
        objective=e.objective,
        value=e.value,
        worker=e.worker,
        idempotency_key=e.idempotency_key,
        dataset=e.dataset,
        proxies=dict(e.proxies),
    )
    if e.budget is not None:
        msg.budget = e.budget
    return msg


def _prediction(r: predictor_pb2.PredictResponse) -> Prediction:
    names = [o.objective for o in r.objectives]
    return Prediction(
        objectives=names,
        model_versions={o.objective: o.model_version for o in r.objectives},
        model_studies={o.objective: o.model_study for o in r.objectives},
        values=[list(p.values) for p in r.predictions],
        canonical_keys=[p.canonical_key for p in r.predictions],
        measured=[list(p.measured) or [False] * len(names) for p in r.predictions],
        measurements_unavailable=r.measurements_unavailable,
        interval_half_widths=[list(p.interval_half_widths) for p in r.predictions if p.interval_half_widths],
        interval_coverage={o.objective: o.interval_coverage for o in r.objectives if o.interval_coverage > 0},
    )
