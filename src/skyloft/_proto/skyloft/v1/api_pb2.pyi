from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutputStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUCCESS: _ClassVar[OutputStatus]
    FAILURE: _ClassVar[OutputStatus]
    TIMEOUT: _ClassVar[OutputStatus]
    CRASHED: _ClassVar[OutputStatus]
    CANCELLED: _ClassVar[OutputStatus]
    INTERNAL: _ClassVar[OutputStatus]
    GEN_ITEM: _ClassVar[OutputStatus]
    BUILD_FAILED: _ClassVar[OutputStatus]
SUCCESS: OutputStatus
FAILURE: OutputStatus
TIMEOUT: OutputStatus
CRASHED: OutputStatus
CANCELLED: OutputStatus
INTERNAL: OutputStatus
GEN_ITEM: OutputStatus
BUILD_FAILED: OutputStatus

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("server_version", "api_version")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    api_version: str
    def __init__(self, server_version: _Optional[str] = ..., api_version: _Optional[str] = ...) -> None: ...

class AppRef(_message.Message):
    __slots__ = ("app_id",)
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    def __init__(self, app_id: _Optional[str] = ...) -> None: ...

class AppCreateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class AppCreateResponse(_message.Message):
    __slots__ = ("app_id",)
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    def __init__(self, app_id: _Optional[str] = ...) -> None: ...

class AppStopRequest(_message.Message):
    __slots__ = ("app_id", "detach")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    detach: bool
    def __init__(self, app_id: _Optional[str] = ..., detach: _Optional[bool] = ...) -> None: ...

class AppInfo(_message.Message):
    __slots__ = ("app_id", "name", "state", "created_at", "n_containers")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    N_CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    name: str
    state: str
    created_at: float
    n_containers: int
    def __init__(self, app_id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[str] = ..., created_at: _Optional[float] = ..., n_containers: _Optional[int] = ...) -> None: ...

class AppListResponse(_message.Message):
    __slots__ = ("apps",)
    APPS_FIELD_NUMBER: _ClassVar[int]
    apps: _containers.RepeatedCompositeFieldContainer[AppInfo]
    def __init__(self, apps: _Optional[_Iterable[_Union[AppInfo, _Mapping]]] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("id", "follow", "after_seq")
    ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    id: str
    follow: bool
    after_seq: int
    def __init__(self, id: _Optional[str] = ..., follow: _Optional[bool] = ..., after_seq: _Optional[int] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("seq", "container_id", "function_name", "stream", "text")
    class Stream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STDOUT: _ClassVar[LogLine.Stream]
        STDERR: _ClassVar[LogLine.Stream]
        SYSTEM: _ClassVar[LogLine.Stream]
    STDOUT: LogLine.Stream
    STDERR: LogLine.Stream
    SYSTEM: LogLine.Stream
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    container_id: str
    function_name: str
    stream: LogLine.Stream
    text: str
    def __init__(self, seq: _Optional[int] = ..., container_id: _Optional[str] = ..., function_name: _Optional[str] = ..., stream: _Optional[_Union[LogLine.Stream, str]] = ..., text: _Optional[str] = ...) -> None: ...

class LogBatch(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ...) -> None: ...

class BlobMissingRequest(_message.Message):
    __slots__ = ("blob_ids",)
    BLOB_IDS_FIELD_NUMBER: _ClassVar[int]
    blob_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, blob_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BlobMissingResponse(_message.Message):
    __slots__ = ("blob_ids",)
    BLOB_IDS_FIELD_NUMBER: _ClassVar[int]
    blob_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, blob_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BlobChunk(_message.Message):
    __slots__ = ("blob_id", "data")
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    data: bytes
    def __init__(self, blob_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class BlobPutResponse(_message.Message):
    __slots__ = ("blob_id",)
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    def __init__(self, blob_id: _Optional[str] = ...) -> None: ...

class BlobRef(_message.Message):
    __slots__ = ("blob_id",)
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    def __init__(self, blob_id: _Optional[str] = ...) -> None: ...

class Payload(_message.Message):
    __slots__ = ("data", "blob_id")
    DATA_FIELD_NUMBER: _ClassVar[int]
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    blob_id: str
    def __init__(self, data: _Optional[bytes] = ..., blob_id: _Optional[str] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("max_retries", "backoff_coefficient", "initial_delay", "max_delay")
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_COEFFICIENT_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DELAY_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_FIELD_NUMBER: _ClassVar[int]
    max_retries: int
    backoff_coefficient: float
    initial_delay: float
    max_delay: float
    def __init__(self, max_retries: _Optional[int] = ..., backoff_coefficient: _Optional[float] = ..., initial_delay: _Optional[float] = ..., max_delay: _Optional[float] = ...) -> None: ...

class FunctionSpec(_message.Message):
    __slots__ = ("function_id", "app_id", "app_name", "name", "module", "qualname", "code_manifest_id", "serialized_function", "is_generator", "timeout", "retries", "min_containers", "max_containers", "buffer_containers", "scaledown_window", "env", "cpu", "memory_mb", "image")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    QUALNAME_FIELD_NUMBER: _ClassVar[int]
    CODE_MANIFEST_ID_FIELD_NUMBER: _ClassVar[int]
    SERIALIZED_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    IS_GENERATOR_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    MIN_CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    BUFFER_CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    SCALEDOWN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    app_id: str
    app_name: str
    name: str
    module: str
    qualname: str
    code_manifest_id: str
    serialized_function: Payload
    is_generator: bool
    timeout: float
    retries: RetryPolicy
    min_containers: int
    max_containers: int
    buffer_containers: int
    scaledown_window: float
    env: _containers.ScalarMap[str, str]
    cpu: float
    memory_mb: int
    image: ImageSpec
    def __init__(self, function_id: _Optional[str] = ..., app_id: _Optional[str] = ..., app_name: _Optional[str] = ..., name: _Optional[str] = ..., module: _Optional[str] = ..., qualname: _Optional[str] = ..., code_manifest_id: _Optional[str] = ..., serialized_function: _Optional[_Union[Payload, _Mapping]] = ..., is_generator: _Optional[bool] = ..., timeout: _Optional[float] = ..., retries: _Optional[_Union[RetryPolicy, _Mapping]] = ..., min_containers: _Optional[int] = ..., max_containers: _Optional[int] = ..., buffer_containers: _Optional[int] = ..., scaledown_window: _Optional[float] = ..., env: _Optional[_Mapping[str, str]] = ..., cpu: _Optional[float] = ..., memory_mb: _Optional[int] = ..., image: _Optional[_Union[ImageSpec, _Mapping]] = ...) -> None: ...

class ImageStep(_message.Message):
    __slots__ = ("kind", "args", "env")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    kind: str
    args: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.ScalarMap[str, str]
    def __init__(self, kind: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ImageSpec(_message.Message):
    __slots__ = ("image_id", "steps", "implicit")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    IMPLICIT_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    steps: _containers.RepeatedCompositeFieldContainer[ImageStep]
    implicit: bool
    def __init__(self, image_id: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[ImageStep, _Mapping]]] = ..., implicit: _Optional[bool] = ...) -> None: ...

class ImageInfo(_message.Message):
    __slots__ = ("image_id", "n_layers", "size_bytes", "built_at")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    N_LAYERS_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    BUILT_AT_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    n_layers: int
    size_bytes: int
    built_at: float
    def __init__(self, image_id: _Optional[str] = ..., n_layers: _Optional[int] = ..., size_bytes: _Optional[int] = ..., built_at: _Optional[float] = ...) -> None: ...

class ImageListResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ImageInfo]
    def __init__(self, images: _Optional[_Iterable[_Union[ImageInfo, _Mapping]]] = ...) -> None: ...

class ImagePruneRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class ImagePruneResponse(_message.Message):
    __slots__ = ("images_removed", "files_removed", "bytes_freed")
    IMAGES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    FILES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    images_removed: int
    files_removed: int
    bytes_freed: int
    def __init__(self, images_removed: _Optional[int] = ..., files_removed: _Optional[int] = ..., bytes_freed: _Optional[int] = ...) -> None: ...

class FunctionCreateRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: FunctionSpec
    def __init__(self, spec: _Optional[_Union[FunctionSpec, _Mapping]] = ...) -> None: ...

class FunctionCreateResponse(_message.Message):
    __slots__ = ("function_id",)
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    def __init__(self, function_id: _Optional[str] = ...) -> None: ...

class Input(_message.Message):
    __slots__ = ("idx", "args")
    IDX_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    idx: int
    args: Payload
    def __init__(self, idx: _Optional[int] = ..., args: _Optional[_Union[Payload, _Mapping]] = ...) -> None: ...

class FunctionCallRequest(_message.Message):
    __slots__ = ("function_id", "inputs", "wait_s", "more_inputs")
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    MORE_INPUTS_FIELD_NUMBER: _ClassVar[int]
    function_id: str
    inputs: _containers.RepeatedCompositeFieldContainer[Input]
    wait_s: float
    more_inputs: bool
    def __init__(self, function_id: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[Input, _Mapping]]] = ..., wait_s: _Optional[float] = ..., more_inputs: _Optional[bool] = ...) -> None: ...

class FunctionCallResponse(_message.Message):
    __slots__ = ("call_id", "outputs", "log_seq")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    outputs: _containers.RepeatedCompositeFieldContainer[Output]
    log_seq: int
    def __init__(self, call_id: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[Output, _Mapping]]] = ..., log_seq: _Optional[int] = ...) -> None: ...

class PutInputsRequest(_message.Message):
    __slots__ = ("call_id", "inputs", "last")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    inputs: _containers.RepeatedCompositeFieldContainer[Input]
    last: bool
    def __init__(self, call_id: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[Input, _Mapping]]] = ..., last: _Optional[bool] = ...) -> None: ...

class GetOutputsRequest(_message.Message):
    __slots__ = ("call_id", "after_seq", "timeout", "max_outputs")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    after_seq: int
    timeout: float
    max_outputs: int
    def __init__(self, call_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., timeout: _Optional[float] = ..., max_outputs: _Optional[int] = ...) -> None: ...

class GetOutputsResponse(_message.Message):
    __slots__ = ("outputs", "log_seq", "n_inputs", "inputs_closed", "is_map")
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    N_INPUTS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_CLOSED_FIELD_NUMBER: _ClassVar[int]
    IS_MAP_FIELD_NUMBER: _ClassVar[int]
    outputs: _containers.RepeatedCompositeFieldContainer[Output]
    log_seq: int
    n_inputs: int
    inputs_closed: bool
    is_map: bool
    def __init__(self, outputs: _Optional[_Iterable[_Union[Output, _Mapping]]] = ..., log_seq: _Optional[int] = ..., n_inputs: _Optional[int] = ..., inputs_closed: _Optional[bool] = ..., is_map: _Optional[bool] = ...) -> None: ...

class CallRef(_message.Message):
    __slots__ = ("call_id",)
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class Output(_message.Message):
    __slots__ = ("seq", "idx", "status", "data", "message", "traceback", "log_seq")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    IDX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    idx: int
    status: OutputStatus
    data: Payload
    message: str
    traceback: str
    log_seq: int
    def __init__(self, seq: _Optional[int] = ..., idx: _Optional[int] = ..., status: _Optional[_Union[OutputStatus, str]] = ..., data: _Optional[_Union[Payload, _Mapping]] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ..., log_seq: _Optional[int] = ...) -> None: ...

class ContainerListRequest(_message.Message):
    __slots__ = ("app_id",)
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    def __init__(self, app_id: _Optional[str] = ...) -> None: ...

class ContainerInfo(_message.Message):
    __slots__ = ("container_id", "app_id", "function_name", "worker_id", "state", "started_at", "pid", "n_inputs")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    N_INPUTS_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    app_id: str
    function_name: str
    worker_id: str
    state: str
    started_at: float
    pid: int
    n_inputs: int
    def __init__(self, container_id: _Optional[str] = ..., app_id: _Optional[str] = ..., function_name: _Optional[str] = ..., worker_id: _Optional[str] = ..., state: _Optional[str] = ..., started_at: _Optional[float] = ..., pid: _Optional[int] = ..., n_inputs: _Optional[int] = ...) -> None: ...

class ContainerListResponse(_message.Message):
    __slots__ = ("containers",)
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedCompositeFieldContainer[ContainerInfo]
    def __init__(self, containers: _Optional[_Iterable[_Union[ContainerInfo, _Mapping]]] = ...) -> None: ...

class ContainerRef(_message.Message):
    __slots__ = ("container_id",)
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    def __init__(self, container_id: _Optional[str] = ...) -> None: ...

class WorkerHello(_message.Message):
    __slots__ = ("worker_id", "hostname", "cpu", "memory_mb", "runtime")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    hostname: str
    cpu: float
    memory_mb: int
    runtime: str
    def __init__(self, worker_id: _Optional[str] = ..., hostname: _Optional[str] = ..., cpu: _Optional[float] = ..., memory_mb: _Optional[int] = ..., runtime: _Optional[str] = ...) -> None: ...

class ContainerInput(_message.Message):
    __slots__ = ("input_id", "call_id", "idx", "args")
    INPUT_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    IDX_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    input_id: str
    call_id: str
    idx: int
    args: Payload
    def __init__(self, input_id: _Optional[str] = ..., call_id: _Optional[str] = ..., idx: _Optional[int] = ..., args: _Optional[_Union[Payload, _Mapping]] = ...) -> None: ...

class StartContainer(_message.Message):
    __slots__ = ("container_id", "spec")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    spec: FunctionSpec
    def __init__(self, container_id: _Optional[str] = ..., spec: _Optional[_Union[FunctionSpec, _Mapping]] = ...) -> None: ...

class StopContainer(_message.Message):
    __slots__ = ("container_id", "reason")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    reason: str
    def __init__(self, container_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DispatchInputs(_message.Message):
    __slots__ = ("container_id", "inputs")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    inputs: _containers.RepeatedCompositeFieldContainer[ContainerInput]
    def __init__(self, container_id: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[ContainerInput, _Mapping]]] = ...) -> None: ...

class ContainerOutput(_message.Message):
    __slots__ = ("input_id", "status", "data", "message", "traceback", "duration_s")
    INPUT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    input_id: str
    status: OutputStatus
    data: Payload
    message: str
    traceback: str
    duration_s: float
    def __init__(self, input_id: _Optional[str] = ..., status: _Optional[_Union[OutputStatus, str]] = ..., data: _Optional[_Union[Payload, _Mapping]] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ..., duration_s: _Optional[float] = ...) -> None: ...

class ContainerOutputs(_message.Message):
    __slots__ = ("container_id", "outputs")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    outputs: _containers.RepeatedCompositeFieldContainer[ContainerOutput]
    def __init__(self, container_id: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[ContainerOutput, _Mapping]]] = ...) -> None: ...

class ContainerLog(_message.Message):
    __slots__ = ("container_id", "stream", "text")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    stream: LogLine.Stream
    text: str
    def __init__(self, container_id: _Optional[str] = ..., stream: _Optional[_Union[LogLine.Stream, str]] = ..., text: _Optional[str] = ...) -> None: ...

class ContainerEvent(_message.Message):
    __slots__ = ("container_id", "kind", "pid", "exit_code", "reason", "input_id")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STARTED: _ClassVar[ContainerEvent.Kind]
        EXITED: _ClassVar[ContainerEvent.Kind]
    STARTED: ContainerEvent.Kind
    EXITED: ContainerEvent.Kind
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INPUT_ID_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    kind: ContainerEvent.Kind
    pid: int
    exit_code: int
    reason: str
    input_id: str
    def __init__(self, container_id: _Optional[str] = ..., kind: _Optional[_Union[ContainerEvent.Kind, str]] = ..., pid: _Optional[int] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., input_id: _Optional[str] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ("hello", "event", "outputs", "log")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    hello: WorkerHello
    event: ContainerEvent
    outputs: ContainerOutputs
    log: ContainerLog
    def __init__(self, hello: _Optional[_Union[WorkerHello, _Mapping]] = ..., event: _Optional[_Union[ContainerEvent, _Mapping]] = ..., outputs: _Optional[_Union[ContainerOutputs, _Mapping]] = ..., log: _Optional[_Union[ContainerLog, _Mapping]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("start", "stop", "inputs")
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    start: StartContainer
    stop: StopContainer
    inputs: DispatchInputs
    def __init__(self, start: _Optional[_Union[StartContainer, _Mapping]] = ..., stop: _Optional[_Union[StopContainer, _Mapping]] = ..., inputs: _Optional[_Union[DispatchInputs, _Mapping]] = ...) -> None: ...
