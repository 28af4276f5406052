"""The gRPC API of the control plane.

Handlers are built from the service descriptor in proto/ so that every
method gets the same treatment: token check, malformed requests answered
with INVALID_ARGUMENT, and skyloft errors mapped to gRPC status codes.
"""

from __future__ import annotations

import hmac
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from .. import __version__
from .._proto import pb
from ..cas import BlobStore
from ..exception import AlreadyExistsError, InvalidError, NotFoundError
from ..records import InputRecord, ResultRecord
from ..worker.agent import WorkerAgent
from ..worker.images import ImageBuilder, ImageBuildFailed
from .logs import LogHub
from .prune import prune
from .scheduler import Scheduler

log = logging.getLogger("skyloft.api")

API_VERSION = "v1"
_SERVICE = "skyloft.v1.Skyloft"
_CHUNK = 1 << 20
_MAX_WAIT_S = 60.0
_MAX_OUTPUTS = 10_000


class _Malformed:
    def __init__(self, error: Exception) -> None:
        self.error = error


class RemoteWorker:
    """A `skyloft worker` process as the scheduler sees it: commands go down its session stream."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.outbox: queue.Queue[pb.ServerMessage | None] = queue.Queue()

    def start_container(self, container_id: str, spec: pb.FunctionSpec) -> None:
        self.outbox.put(pb.ServerMessage(start=pb.StartContainer(container_id=container_id, spec=spec)))

    def stop_container(self, container_id: str, reason: str) -> None:
        self.outbox.put(pb.ServerMessage(stop=pb.StopContainer(container_id=container_id, reason=reason)))

    def dispatch(self, container_id: str, inputs: list[InputRecord]) -> None:
        message = pb.DispatchInputs(container_id=container_id, inputs=[item.to_proto() for item in inputs])
        self.outbox.put(pb.ServerMessage(inputs=message))


class Api:
    """One method per RPC in proto/skyloft/v1/api.proto."""

    def __init__(self, scheduler: Scheduler, blobs: BlobStore, logs: LogHub,
                 worker: WorkerAgent | None = None) -> None:
        self.scheduler = scheduler
        self.blobs = blobs
        self.logs = logs
        self.worker = worker

    def Ping(self, request: pb.Empty, context: grpc.ServicerContext) -> pb.PingResponse:
        return pb.PingResponse(server_version=__version__, api_version=API_VERSION)

    # ---- apps ----

    def AppCreate(self, request: pb.AppCreateRequest, context) -> pb.AppCreateResponse:
        if not request.name:
            raise InvalidError("an app needs a name")
        return pb.AppCreateResponse(app_id=self.scheduler.create_app(request.name))

    def AppHeartbeat(self, request: pb.AppRef, context) -> pb.Empty:
        self.scheduler.heartbeat(request.app_id)
        return pb.Empty()

    def AppStop(self, request: pb.AppStopRequest, context) -> pb.Empty:
        self.scheduler.stop_app(request.app_id, request.detach)
        return pb.Empty()

    def AppList(self, request: pb.Empty, context) -> pb.AppListResponse:
        counts: dict[str, int] = {}
        for row in self.scheduler.container_rows():
            if row.state != "stopped":
                counts[row.app_id] = counts.get(row.app_id, 0) + 1
        apps = [pb.AppInfo(app_id=a, name=n, state=s, created_at=t, n_containers=counts.get(a, 0))
                for a, n, s, t in self.scheduler.store.apps()]
        return pb.AppListResponse(apps=apps)

    def AppLogs(self, request: pb.LogsRequest, context) -> Iterator[pb.LogBatch]:
        app_id = request.id
        if not self.scheduler.app_is_open(app_id) or not request.follow:
            history = [line for line in self.logs.history(app_id) if line.seq > request.after_seq]
            if not history and not self._app_known(app_id):
                raise NotFoundError(f"app {app_id!r} not found")
            if history:
                yield pb.LogBatch(lines=history)
            if not request.follow:
                return
        for batch in self.logs.follow(app_id, request.after_seq,
                                      lambda: context.is_active() and self.scheduler.app_is_open(app_id)):
            yield pb.LogBatch(lines=batch)

    def _app_known(self, app_id: str) -> bool:
        return any(row[0] == app_id for row in self.scheduler.store.apps())

    # ---- blobs ----

    def BlobMissing(self, request: pb.BlobMissingRequest, context) -> pb.BlobMissingResponse:
        missing = [b for b in request.blob_ids if not self.blobs.has(b)]
        for blob_id in set(request.blob_ids) - set(missing):
            self.blobs.touch(blob_id)  # the caller will use it: `skyloft image prune` must not take it first
        return pb.BlobMissingResponse(blob_ids=missing)

    def BlobPut(self, request_iterator: Iterator[pb.BlobChunk], context) -> pb.BlobPutResponse:
        expected, parts = "", []
        for chunk in request_iterator:
            if isinstance(chunk, _Malformed):
                raise InvalidError(f"malformed blob chunk: {chunk.error}")
            expected = expected or chunk.blob_id
            parts.append(chunk.data)
        try:
            return pb.BlobPutResponse(blob_id=self.blobs.put(b"".join(parts), expected_id=expected or None))
        except ValueError as exc:
            raise InvalidError(str(exc)) from None

    def BlobGet(self, request: pb.BlobRef, context) -> Iterator[pb.BlobChunk]:
        try:
            data = self.blobs.get(request.blob_id)
        except ValueError as exc:
            raise InvalidError(str(exc)) from None
        except FileNotFoundError:
            raise NotFoundError(f"blob {request.blob_id} not found") from None
        for start in range(0, max(len(data), 1), _CHUNK):
            yield pb.BlobChunk(blob_id=request.blob_id if start == 0 else "", data=data[start:start + _CHUNK])

    # ---- functions ----

    def FunctionCreate(self, request: pb.FunctionCreateRequest, context) -> pb.FunctionCreateResponse:
        spec = request.spec
        if not spec.app_id or not spec.name or not (spec.module or spec.serialized_function.data):
            raise InvalidError("a function needs app_id, name, and a module or a serialized function")
        if spec.code_manifest_id and not self.blobs.has(spec.code_manifest_id):
            raise InvalidError(f"code manifest {spec.code_manifest_id} was not uploaded")
        return pb.FunctionCreateResponse(function_id=self.scheduler.create_function(spec))

    def FunctionCall(self, request: pb.FunctionCallRequest, context) -> pb.FunctionCallResponse:
        _check_inputs(request.inputs, self.blobs)
        waits = request.wait_s > 0 and not request.more_inputs
        call_id = self.scheduler.submit(request.function_id, list(request.inputs), request.more_inputs,
                                        durable=not waits)
        response = pb.FunctionCallResponse(call_id=call_id)
        if request.wait_s > 0:
            got = self.scheduler.wait_outputs(call_id, 0, min(request.wait_s, _MAX_WAIT_S), _MAX_OUTPUTS)
            response.outputs.extend(got.outputs)
        return response

    def FunctionPutInputs(self, request: pb.PutInputsRequest, context) -> pb.Empty:
        _check_inputs(request.inputs, self.blobs)
        self.scheduler.put_inputs(request.call_id, list(request.inputs), request.last)
        return pb.Empty()

    def FunctionGetOutputs(self, request: pb.GetOutputsRequest, context) -> pb.GetOutputsResponse:
        limit = min(request.max_outputs or _MAX_OUTPUTS, _MAX_OUTPUTS)
        return self.scheduler.wait_outputs(request.call_id, request.after_seq,
                                           min(max(request.timeout, 0.0), _MAX_WAIT_S), limit)

    def FunctionCallCancel(self, request: pb.CallRef, context) -> pb.Empty:
        self.scheduler.cancel(request.call_id)
        return pb.Empty()

    # ---- containers ----

    def ContainerList(self, request: pb.ContainerListRequest, context) -> pb.ContainerListResponse:
        rows = [r for r in self.scheduler.container_rows(request.app_id) if r.state != "stopped"]
        return pb.ContainerListResponse(containers=rows)

    def ContainerStop(self, request: pb.ContainerRef, context) -> pb.Empty:
        self.scheduler.stop_container(request.container_id)
        return pb.Empty()

    def ContainerLogs(self, request: pb.LogsRequest, context) -> Iterator[pb.LogBatch]:
        app_id = self.scheduler.store.container_app(request.id)
        if app_id is None:
            raise NotFoundError(f"container {request.id!r} not found")
        inner = pb.LogsRequest(id=app_id, follow=request.follow, after_seq=request.after_seq)
        for batch in self.AppLogs(inner, context):
            lines = [line for line in batch.lines if line.container_id == request.id]
            if lines:
                yield pb.LogBatch(lines=lines)

    # ---- images ----

    def _image_builder(self) -> ImageBuilder:
        if self.worker is None:
            raise InvalidError("this server has no embedded worker to build images on; "
                               "images are built by the worker that first runs a function on them")
        return self.worker.images

    def ImageBuild(self, request: pb.ImageSpec, context) -> Iterator[pb.LogBatch]:
        builder = self._image_builder()
        if not request.steps:
            raise InvalidError("an image needs at least one step")
        lines: queue.Queue[pb.LogLine | BaseException | None] = queue.Queue()

        def build() -> None:
            try:
                builder.ensure(request, lambda text: lines.put(pb.LogLine(stream=pb.LogLine.SYSTEM, text=text)))
                lines.put(None)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller below
                lines.put(exc)

        threading.Thread(target=build, name="image-build", daemon=True).start()
        while (item := lines.get()) is not None:
            if isinstance(item, ImageBuildFailed):
                raise InvalidError(f"image build failed: {item}")
            if isinstance(item, BaseException):
                raise item
            yield pb.LogBatch(lines=[item])

    def ImageList(self, request: pb.Empty, context) -> pb.ImageListResponse:
        return pb.ImageListResponse(images=self._image_builder().list_images())

    def ImagePrune(self, request: pb.ImagePruneRequest, context) -> pb.ImagePruneResponse:
        return prune(self.scheduler.store, self.blobs, self.worker, request.all)

    # ---- workers ----

    def WorkerSession(self, request_iterator: Iterator[pb.WorkerMessage], context) -> Iterator[pb.ServerMessage]:
        first = next(request_iterator, None)
        if first is None or isinstance(first, _Malformed) or first.WhichOneof("msg") != "hello":
            raise InvalidError("a worker session must open with a hello")
        worker = RemoteWorker(first.hello.worker_id)
        if worker.worker_id in self.scheduler.workers:
            raise AlreadyExistsError(f"worker {worker.worker_id} is connected already")
        log.info("worker %s joined from %s", worker.worker_id, first.hello.hostname)
        reader = threading.Thread(target=self._read_worker, args=(worker, request_iterator), daemon=True)
        reader.start()
        self.scheduler.add_worker(worker)
        try:
            while context.is_active():
                try:
                    message = worker.outbox.get(timeout=1.0)
                except queue.Empty:
                    continue
                if message is None:
                    return
                yield message
        finally:
            self.scheduler.remove_worker(worker.worker_id)
            log.info("worker %s left", worker.worker_id)

    def _read_worker(self, worker: RemoteWorker, request_iterator: Iterator[pb.WorkerMessage]) -> None:
        try:
            for message in request_iterator:
                if isinstance(message, _Malformed):
                    continue
                kind = message.WhichOneof("msg")
                if kind == "event":
                    self.scheduler.container_event(message.event)
                elif kind == "outputs":
                    self.scheduler.record_outputs(message.outputs.container_id,
                                                  [ResultRecord.from_proto(o) for o in message.outputs.outputs])
                elif kind == "log":
                    self.scheduler.container_log(message.log.container_id, message.log.stream, message.log.text)
        except grpc.RpcError:
            pass
        finally:
            worker.outbox.put(None)


def _check_inputs(inputs, blobs: BlobStore) -> None:
    seen = set()
    for item in inputs:
        if item.idx in seen:
            raise InvalidError(f"input index {item.idx} given twice")
        seen.add(item.idx)
        if item.args.blob_id and not blobs.has(item.args.blob_id):
            raise InvalidError(f"input {item.idx} refers to blob {item.args.blob_id}, which was not uploaded")


# ---- wiring the handlers ----

_STATUS = {
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    InvalidError: grpc.StatusCode.INVALID_ARGUMENT,
    AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
}


def status_of(exc: Exception) -> grpc.StatusCode:
    for kind, code in _STATUS.items():
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _lenient(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except (DecodeError, ValueError) as exc:
            return _Malformed(exc)
    return deserialize


def _guard(method: Callable, streaming_response: bool, token: str) -> Callable:
    """Check the token, reject malformed requests, map errors to status codes."""

    def check(request, context) -> None:
        metadata = dict(context.invocation_metadata())
        supplied = metadata.get("authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "invalid or missing token; set SKYLOFT_TOKEN to the server's token")
        if isinstance(request, _Malformed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {request.error}")

    def fail(context, exc: Exception) -> None:
        code = status_of(exc)
        if code == grpc.StatusCode.INTERNAL:
            log.exception("internal error in %s", method.__name__)
        context.abort(code, str(exc) or type(exc).__name__)

    if streaming_response:
        def stream_handler(request, context):
            check(request, context)
            try:
                yield from method(request, context)
            except (NotFoundError, InvalidError, AlreadyExistsError, ValueError) as exc:
                fail(context, exc)
        return stream_handler

    def unary_handler(request, context):
        check(request, context)
        try:
            return method(request, context)
        except Exception as exc:  # noqa: BLE001 - the server keeps serving
            fail(context, exc)
    return unary_handler


def generic_handler(api: Api, token: str) -> grpc.GenericRpcHandler:
    """Method handlers for every RPC of the service, from the proto descriptor."""
    service = pb.DESCRIPTOR.services_by_name["Skyloft"]
    handlers = {}
    for method in service.methods:
        request_cls = message_factory.GetMessageClass(method.input_type)
        impl = _guard(getattr(api, method.name), method.server_streaming, token)
        kind = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = kind(impl, request_deserializer=_lenient(request_cls.FromString),
                                     response_serializer=lambda m: m.SerializeToString())
    return grpc.method_handlers_generic_handler(_SERVICE, handlers)
