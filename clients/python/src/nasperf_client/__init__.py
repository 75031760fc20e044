"""Python client for nasperf: predictions, Pareto ranking and exactly-once
recording of true evaluations, over the service's gRPC API."""

from .client import (
    Client,
    Evaluation,
    NasperfError,
    ObjectiveInfo,
    Prediction,
    Ranking,
    RecordReport,
)

__all__ = [
    "Client",
    "Evaluation",
    "NasperfError",
    "ObjectiveInfo",
    "Prediction",
    "Ranking",
    "RecordReport",
]
