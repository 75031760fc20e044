from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListModelsRequest(_message.Message):
    __slots__ = ("study", "objective")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    study: str
    objective: str
    def __init__(self, study: _Optional[str] = ..., objective: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("study", "objective", "version", "status", "training_rows", "heldout_rows", "heldout_kendall_tau", "heldout_spearman_rho", "heldout_rmse", "baseline_kendall_tau", "decision", "created_at", "activated_at_unix_ms", "training_data_sha256", "feature_names", "interval_half_width", "interval_coverage", "heldout_interval_coverage")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_ROWS_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_ROWS_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_KENDALL_TAU_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_SPEARMAN_RHO_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_RMSE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_KENDALL_TAU_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_SHA256_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_HALF_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_INTERVAL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    study: str
    objective: str
    version: str
    status: str
    training_rows: int
    heldout_rows: int
    heldout_kendall_tau: float
    heldout_spearman_rho: float
    heldout_rmse: float
    baseline_kendall_tau: float
    decision: str
    created_at: str
    activated_at_unix_ms: int
    training_data_sha256: str
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    interval_half_width: float
    interval_coverage: float
    heldout_interval_coverage: float
    def __init__(self, study: _Optional[str] = ..., objective: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[str] = ..., training_rows: _Optional[int] = ..., heldout_rows: _Optional[int] = ..., heldout_kendall_tau: _Optional[float] = ..., heldout_spearman_rho: _Optional[float] = ..., heldout_rmse: _Optional[float] = ..., baseline_kendall_tau: _Optional[float] = ..., decision: _Optional[str] = ..., created_at: _Optional[str] = ..., activated_at_unix_ms: _Optional[int] = ..., training_data_sha256: _Optional[str] = ..., feature_names: _Optional[_Iterable[str]] = ..., interval_half_width: _Optional[float] = ..., interval_coverage: _Optional[float] = ..., heldout_interval_coverage: _Optional[float] = ...) -> None: ...

class TrainingAttempt(_message.Message):
    __slots__ = ("study", "objective", "outcome", "message", "updated_at_unix_ms")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    study: str
    objective: str
    outcome: str
    message: str
    updated_at_unix_ms: int
    def __init__(self, study: _Optional[str] = ..., objective: _Optional[str] = ..., outcome: _Optional[str] = ..., message: _Optional[str] = ..., updated_at_unix_ms: _Optional[int] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "last_attempts")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    last_attempts: _containers.RepeatedCompositeFieldContainer[TrainingAttempt]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., last_attempts: _Optional[_Iterable[_Union[TrainingAttempt, _Mapping]]] = ...) -> None: ...

class RetrainRequest(_message.Message):
    __slots__ = ("study", "objectives", "force")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    study: str
    objectives: _containers.RepeatedScalarFieldContainer[str]
    force: bool
    def __init__(self, study: _Optional[str] = ..., objectives: _Optional[_Iterable[str]] = ..., force: _Optional[bool] = ...) -> None: ...

class RetrainResult(_message.Message):
    __slots__ = ("study", "objective", "outcome", "version", "training_rows", "heldout_rows", "kendall_tau", "baseline_kendall_tau", "message", "seconds")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_ROWS_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_ROWS_FIELD_NUMBER: _ClassVar[int]
    KENDALL_TAU_FIELD_NUMBER: _ClassVar[int]
    BASELINE_KENDALL_TAU_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    study: str
    objective: str
    outcome: str
    version: str
    training_rows: int
    heldout_rows: int
    kendall_tau: float
    baseline_kendall_tau: float
    message: str
    seconds: float
    def __init__(self, study: _Optional[str] = ..., objective: _Optional[str] = ..., outcome: _Optional[str] = ..., version: _Optional[str] = ..., training_rows: _Optional[int] = ..., heldout_rows: _Optional[int] = ..., kendall_tau: _Optional[float] = ..., baseline_kendall_tau: _Optional[float] = ..., message: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class RetrainResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RetrainResult]
    def __init__(self, results: _Optional[_Iterable[_Union[RetrainResult, _Mapping]]] = ...) -> None: ...

class ActivateModelRequest(_message.Message):
    __slots__ = ("study", "objective", "version")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    study: str
    objective: str
    version: str
    def __init__(self, study: _Optional[str] = ..., objective: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ActivateModelResponse(_message.Message):
    __slots__ = ("replaced_version",)
    REPLACED_VERSION_FIELD_NUMBER: _ClassVar[int]
    replaced_version: str
    def __init__(self, replaced_version: _Optional[str] = ...) -> None: ...

class UnpinModelRequest(_message.Message):
    __slots__ = ("study", "objective")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    study: str
    objective: str
    def __init__(self, study: _Optional[str] = ..., objective: _Optional[str] = ...) -> None: ...

class UnpinModelResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...
