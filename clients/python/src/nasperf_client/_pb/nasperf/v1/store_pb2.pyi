from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExcludeEvaluationsRequest(_message.Message):
    __slots__ = ("study", "worker", "since_unix_ms", "until_unix_ms")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    SINCE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    study: str
    worker: str
    since_unix_ms: int
    until_unix_ms: int
    def __init__(self, study: _Optional[str] = ..., worker: _Optional[str] = ..., since_unix_ms: _Optional[int] = ..., until_unix_ms: _Optional[int] = ...) -> None: ...

class ExcludeEvaluationsResponse(_message.Message):
    __slots__ = ("excluded",)
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    excluded: int
    def __init__(self, excluded: _Optional[int] = ...) -> None: ...

class Study(_message.Message):
    __slots__ = ("name", "description", "created_at_unix_ms", "evaluations")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    created_at_unix_ms: int
    evaluations: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., created_at_unix_ms: _Optional[int] = ..., evaluations: _Optional[int] = ...) -> None: ...

class CreateStudyRequest(_message.Message):
    __slots__ = ("name", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListStudiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStudiesResponse(_message.Message):
    __slots__ = ("studies",)
    STUDIES_FIELD_NUMBER: _ClassVar[int]
    studies: _containers.RepeatedCompositeFieldContainer[Study]
    def __init__(self, studies: _Optional[_Iterable[_Union[Study, _Mapping]]] = ...) -> None: ...

class GetStudyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("study", "search_space", "arch", "objective", "value", "budget", "worker", "idempotency_key", "dataset", "proxies")
    class ProxiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STUDY_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PROXIES_FIELD_NUMBER: _ClassVar[int]
    study: str
    search_space: str
    arch: str
    objective: str
    value: float
    budget: float
    worker: str
    idempotency_key: str
    dataset: str
    proxies: _containers.ScalarMap[str, float]
    def __init__(self, study: _Optional[str] = ..., search_space: _Optional[str] = ..., arch: _Optional[str] = ..., objective: _Optional[str] = ..., value: _Optional[float] = ..., budget: _Optional[float] = ..., worker: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., dataset: _Optional[str] = ..., proxies: _Optional[_Mapping[str, float]] = ...) -> None: ...

class RecordEvaluationsRequest(_message.Message):
    __slots__ = ("evaluations",)
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ...) -> None: ...

class RecordResult(_message.Message):
    __slots__ = ("index", "idempotency_key", "outcome", "code", "message")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[RecordResult.Outcome]
        STORED: _ClassVar[RecordResult.Outcome]
        ALREADY_STORED: _ClassVar[RecordResult.Outcome]
        REJECTED: _ClassVar[RecordResult.Outcome]
    OUTCOME_UNSPECIFIED: RecordResult.Outcome
    STORED: RecordResult.Outcome
    ALREADY_STORED: RecordResult.Outcome
    REJECTED: RecordResult.Outcome
    INDEX_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    idempotency_key: str
    outcome: RecordResult.Outcome
    code: int
    message: str
    def __init__(self, index: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., outcome: _Optional[_Union[RecordResult.Outcome, str]] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class RecordEvaluationsResponse(_message.Message):
    __slots__ = ("results", "stored", "already_stored", "rejected")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_STORED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RecordResult]
    stored: int
    already_stored: int
    rejected: int
    def __init__(self, results: _Optional[_Iterable[_Union[RecordResult, _Mapping]]] = ..., stored: _Optional[int] = ..., already_stored: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("studies", "objective", "worker", "search_space", "arch", "since_unix_ms", "until_unix_ms", "page_size", "page_token")
    STUDIES_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    SINCE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    studies: _containers.RepeatedScalarFieldContainer[str]
    objective: str
    worker: str
    search_space: str
    arch: str
    since_unix_ms: int
    until_unix_ms: int
    page_size: int
    page_token: str
    def __init__(self, studies: _Optional[_Iterable[str]] = ..., objective: _Optional[str] = ..., worker: _Optional[str] = ..., search_space: _Optional[str] = ..., arch: _Optional[str] = ..., since_unix_ms: _Optional[int] = ..., until_unix_ms: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class StoredEvaluation(_message.Message):
    __slots__ = ("id", "study", "search_space", "encoding", "canonical_key", "objective", "value", "budget", "worker", "recorded_at_unix_ms", "idempotency_key")
    ID_FIELD_NUMBER: _ClassVar[int]
    STUDY_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_KEY_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    id: int
    study: str
    search_space: str
    encoding: str
    canonical_key: str
    objective: str
    value: float
    budget: float
    worker: str
    recorded_at_unix_ms: int
    idempotency_key: str
    def __init__(self, id: _Optional[int] = ..., study: _Optional[str] = ..., search_space: _Optional[str] = ..., encoding: _Optional[str] = ..., canonical_key: _Optional[str] = ..., objective: _Optional[str] = ..., value: _Optional[float] = ..., budget: _Optional[float] = ..., worker: _Optional[str] = ..., recorded_at_unix_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations", "next_page_token")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[StoredEvaluation]
    next_page_token: str
    def __init__(self, evaluations: _Optional[_Iterable[_Union[StoredEvaluation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
