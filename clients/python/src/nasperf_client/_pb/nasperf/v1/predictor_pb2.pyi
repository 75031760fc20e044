from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    MAXIMIZE: _ClassVar[Direction]
    MINIMIZE: _ClassVar[Direction]
DIRECTION_UNSPECIFIED: Direction
MAXIMIZE: Direction
MINIMIZE: Direction

class RankedObjective(_message.Message):
    __slots__ = ("objective", "direction")
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    objective: str
    direction: Direction
    def __init__(self, objective: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ...) -> None: ...

class ParetoRankRequest(_message.Message):
    __slots__ = ("candidates", "dataset", "objectives", "study", "reference_point")
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    STUDY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_POINT_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    dataset: str
    objectives: _containers.RepeatedCompositeFieldContainer[RankedObjective]
    study: str
    reference_point: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., dataset: _Optional[str] = ..., objectives: _Optional[_Iterable[_Union[RankedObjective, _Mapping]]] = ..., study: _Optional[str] = ..., reference_point: _Optional[_Iterable[float]] = ...) -> None: ...

class RankedCandidate(_message.Message):
    __slots__ = ("values", "front", "crowding_distance", "hypervolume_contribution", "canonical_key", "measured")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    FRONT_FIELD_NUMBER: _ClassVar[int]
    CROWDING_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    HYPERVOLUME_CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_KEY_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    front: int
    crowding_distance: float
    hypervolume_contribution: float
    canonical_key: str
    measured: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, values: _Optional[_Iterable[float]] = ..., front: _Optional[int] = ..., crowding_distance: _Optional[float] = ..., hypervolume_contribution: _Optional[float] = ..., canonical_key: _Optional[str] = ..., measured: _Optional[_Iterable[bool]] = ...) -> None: ...

class ParetoRankResponse(_message.Message):
    __slots__ = ("objectives", "candidates", "hypervolume", "measurements_unavailable")
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    HYPERVOLUME_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    objectives: _containers.RepeatedCompositeFieldContainer[ObjectiveModel]
    candidates: _containers.RepeatedCompositeFieldContainer[RankedCandidate]
    hypervolume: float
    measurements_unavailable: bool
    def __init__(self, objectives: _Optional[_Iterable[_Union[ObjectiveModel, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[RankedCandidate, _Mapping]]] = ..., hypervolume: _Optional[float] = ..., measurements_unavailable: _Optional[bool] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("search_space", "arch", "proxies")
    class ProxiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    PROXIES_FIELD_NUMBER: _ClassVar[int]
    search_space: str
    arch: str
    proxies: _containers.ScalarMap[str, float]
    def __init__(self, search_space: _Optional[str] = ..., arch: _Optional[str] = ..., proxies: _Optional[_Mapping[str, float]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("candidates", "dataset", "objectives", "request_id", "study", "intervals")
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STUDY_FIELD_NUMBER: _ClassVar[int]
    INTERVALS_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    dataset: str
    objectives: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    study: str
    intervals: bool
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., dataset: _Optional[str] = ..., objectives: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., study: _Optional[str] = ..., intervals: _Optional[bool] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("objectives", "predictions", "request_id", "measurements_unavailable")
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    objectives: _containers.RepeatedCompositeFieldContainer[ObjectiveModel]
    predictions: _containers.RepeatedCompositeFieldContainer[CandidatePrediction]
    request_id: str
    measurements_unavailable: bool
    def __init__(self, objectives: _Optional[_Iterable[_Union[ObjectiveModel, _Mapping]]] = ..., predictions: _Optional[_Iterable[_Union[CandidatePrediction, _Mapping]]] = ..., request_id: _Optional[str] = ..., measurements_unavailable: _Optional[bool] = ...) -> None: ...

class ObjectiveModel(_message.Message):
    __slots__ = ("objective", "model_version", "model_study", "interval_coverage")
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_STUDY_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    objective: str
    model_version: str
    model_study: str
    interval_coverage: float
    def __init__(self, objective: _Optional[str] = ..., model_version: _Optional[str] = ..., model_study: _Optional[str] = ..., interval_coverage: _Optional[float] = ...) -> None: ...

class CandidatePrediction(_message.Message):
    __slots__ = ("values", "canonical_key", "measured", "interval_half_widths")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_KEY_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_HALF_WIDTHS_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    canonical_key: str
    measured: _containers.RepeatedScalarFieldContainer[bool]
    interval_half_widths: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ..., canonical_key: _Optional[str] = ..., measured: _Optional[_Iterable[bool]] = ..., interval_half_widths: _Optional[_Iterable[float]] = ...) -> None: ...

class ListObjectivesRequest(_message.Message):
    __slots__ = ("study",)
    STUDY_FIELD_NUMBER: _ClassVar[int]
    study: str
    def __init__(self, study: _Optional[str] = ...) -> None: ...

class ListObjectivesResponse(_message.Message):
    __slots__ = ("objectives",)
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    objectives: _containers.RepeatedCompositeFieldContainer[ObjectiveInfo]
    def __init__(self, objectives: _Optional[_Iterable[_Union[ObjectiveInfo, _Mapping]]] = ...) -> None: ...

class ObjectiveInfo(_message.Message):
    __slots__ = ("objective", "dataset", "search_space", "unit", "model_version", "training_rows", "feature_names", "heldout_kendall_tau", "heldout_spearman_rho", "heldout_rmse", "heldout_rows", "created_at", "training_data_sha256", "load_error", "model_study", "interval_half_width", "interval_coverage", "heldout_interval_coverage", "interval_half_width_without_proxies", "proxy_dataset")
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_ROWS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_KENDALL_TAU_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_SPEARMAN_RHO_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_RMSE_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_ROWS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_SHA256_FIELD_NUMBER: _ClassVar[int]
    LOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_STUDY_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_HALF_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_INTERVAL_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_HALF_WIDTH_WITHOUT_PROXIES_FIELD_NUMBER: _ClassVar[int]
    PROXY_DATASET_FIELD_NUMBER: _ClassVar[int]
    objective: str
    dataset: str
    search_space: str
    unit: str
    model_version: str
    training_rows: int
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    heldout_kendall_tau: float
    heldout_spearman_rho: float
    heldout_rmse: float
    heldout_rows: int
    created_at: str
    training_data_sha256: str
    load_error: str
    model_study: str
    interval_half_width: float
    interval_coverage: float
    heldout_interval_coverage: float
    interval_half_width_without_proxies: float
    proxy_dataset: str
    def __init__(self, objective: _Optional[str] = ..., dataset: _Optional[str] = ..., search_space: _Optional[str] = ..., unit: _Optional[str] = ..., model_version: _Optional[str] = ..., training_rows: _Optional[int] = ..., feature_names: _Optional[_Iterable[str]] = ..., heldout_kendall_tau: _Optional[float] = ..., heldout_spearman_rho: _Optional[float] = ..., heldout_rmse: _Optional[float] = ..., heldout_rows: _Optional[int] = ..., created_at: _Optional[str] = ..., training_data_sha256: _Optional[str] = ..., load_error: _Optional[str] = ..., model_study: _Optional[str] = ..., interval_half_width: _Optional[float] = ..., interval_coverage: _Optional[float] = ..., heldout_interval_coverage: _Optional[float] = ..., interval_half_width_without_proxies: _Optional[float] = ..., proxy_dataset: _Optional[str] = ...) -> None: ...
