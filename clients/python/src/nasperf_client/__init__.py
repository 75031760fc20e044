"""Python client for nasperf: predictions, Pareto ranking and exactly-once
recording of true evaluations, over the service's gRPC API."""

from .client import (
    Client,
    Evaluation,
    ModelVersion,
    NasperfError,
    ObjectiveInfo,
    Prediction,
    Ranking,
    RecordReport,
    RetrainResult,
    TrainingAttempt,
)

__all__ = [
    "Client",
    "Evaluation",
    "ModelVersion",
    "NasperfError",
    "ObjectiveInfo",
    "Prediction",
    "Ranking",
    "RecordReport",
    "RetrainResult",
    "TrainingAttempt",
]
