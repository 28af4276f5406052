"""Calling a registered function over the wire: one input, many inputs, or a
generator's stream of values; and turning outputs back into values or the
exceptions they carry."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ._client.blobs import download_blob, upload_blob
from ._proto import pb
from .cas import MAX_INLINE_BYTES
from .exception import (
    ContainerCrashError,
    Error,
    FunctionTimeoutError,
    ImageBuildError,
    InputCancellation,
    InternalError,
)
from .serialization import deserialize, deserialize_exception, serialize

_POLL_S = 50.0
_FIRST_WAIT_S = 30.0
_FIRST_CHUNK = 256
_CHUNK = 2048


class Target:
    """A registered function as the wire sees it."""

    def __init__(self, client: Any, function_id: str, follower: Any | None, name: str,
                 local_files: dict[str, str] | None = None) -> None:
        self.client = client
        self.local_files = local_files
        self.function_id = function_id
        self.follower = follower
        self.name = name

    def show_logs_until(self, seq: int) -> None:
        if self.follower is not None and seq:
            self.follower.wait_for(seq)


def encode_args(client: Any, args: tuple, kwargs: dict) -> pb.Payload:
    """Pickle the arguments; large ones go up as a blob first."""
    data = serialize((args, kwargs))
    if len(data) > MAX_INLINE_BYTES:
        return pb.Payload(blob_id=upload_blob(client, data))
    return pb.Payload(data=data)


def _output_bytes(client: Any, out: pb.Output) -> bytes:
    return download_blob(client, out.data.blob_id) if out.data.blob_id else out.data.data


def output_error(client: Any, out: pb.Output, local_files: dict[str, str] | None = None) -> BaseException | None:
    """The exception an output carries, or None for a success."""
    if out.status in (pb.SUCCESS, pb.GEN_ITEM):
        return None
    if out.status == pb.FAILURE:
        return deserialize_exception(_output_bytes(client, out), out.message, out.traceback, local_files)
    kind = {pb.TIMEOUT: FunctionTimeoutError, pb.CRASHED: ContainerCrashError,
            pb.CANCELLED: InputCancellation, pb.BUILD_FAILED: ImageBuildError}.get(out.status, InternalError)
    return kind(out.message or pb.OutputStatus.Name(out.status))


def output_value(client: Any, out: pb.Output, local_files: dict[str, str] | None = None) -> Any:
    """The value an output carries; raises the remote exception for a failure."""
    error = output_error(client, out, local_files)
    if error is not None:
        raise error
    data = _output_bytes(client, out)
    return deserialize(data) if data else None


def call_outputs(client: Any, call_id: str, first: Iterable[pb.Output] = ()) -> Iterator[pb.Output]:
    """Every output of a call, in order, long-polling the server; rides out restarts."""
    after = 0
    for out in first:
        after = out.seq
        yield out
    while True:
        request = pb.GetOutputsRequest(call_id=call_id, after_seq=after, timeout=_POLL_S)
        response = client.call("FunctionGetOutputs", request, retry=True)
        for out in response.outputs:
            after = out.seq
            yield out


def final_output(target: Target, call_id: str, first: Iterable[pb.Output] = ()) -> pb.Output:
    for out in call_outputs(target.client, call_id, first):
        if out.status != pb.GEN_ITEM:
            target.show_logs_until(out.log_seq)
            return out
    raise InternalError("the output stream ended without a result")


def call_one(target: Target, args: tuple, kwargs: dict) -> Any:
    """`.remote()`: one round trip when the function is quick."""
    payload = encode_args(target.client, args, kwargs)
    response = target.client.call("FunctionCall", pb.FunctionCallRequest(
        function_id=target.function_id, inputs=[pb.Input(idx=0, args=payload)], wait_s=_FIRST_WAIT_S))
    return output_value(target.client, final_output(target, response.call_id, response.outputs), target.local_files)


def spawn_one(target: Target, args: tuple, kwargs: dict) -> str:
    payload = encode_args(target.client, args, kwargs)
    response = target.client.call("FunctionCall", pb.FunctionCallRequest(
        function_id=target.function_id, inputs=[pb.Input(idx=0, args=payload)]))
    return response.call_id


def stream_generator(target: Target, args: tuple, kwargs: dict) -> Iterator[Any]:
    """`.remote_gen()`: values as the container yields them."""
    payload = encode_args(target.client, args, kwargs)
    response = target.client.call("FunctionCall", pb.FunctionCallRequest(
        function_id=target.function_id, inputs=[pb.Input(idx=0, args=payload)]))
    for out in call_outputs(target.client, response.call_id):
        target.show_logs_until(out.log_seq)
        if out.status == pb.GEN_ITEM:
            yield output_value(target.client, out)
        else:
            output_value(target.client, out, target.local_files)
            return


def _chunks(client: Any, arg_tuples: Iterator[tuple], kwargs: dict) -> Iterator[list[pb.Input]]:
    counter = itertools.count()
    size = _FIRST_CHUNK
    while True:
        chunk = [pb.Input(idx=next(counter), args=encode_args(client, args, kwargs))
                 for args in itertools.islice(arg_tuples, size)]
        if not chunk:
            return
        yield chunk
        size = _CHUNK


class _Feeder(threading.Thread):
    """Sends the inputs after the first chunk while the caller reads outputs."""

    def __init__(self, client: Any, call_id: str, chunks: Iterator[list[pb.Input]], sent: int) -> None:
        super().__init__(name="skyloft-map-inputs", daemon=True)
        self.client, self.call_id, self.chunks = client, call_id, chunks
        self.total = sent
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            for chunk in self.chunks:
                self.client.call("FunctionPutInputs", pb.PutInputsRequest(call_id=self.call_id, inputs=chunk))
                self.total += len(chunk)
            self.client.call("FunctionPutInputs", pb.PutInputsRequest(call_id=self.call_id, last=True))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = exc
        finally:
            self.finished.set()


def start_map(target: Target, arg_tuples: Iterable[tuple], kwargs: dict) -> tuple[str, _Feeder] | None:
    """Create the call with the first inputs and start feeding the rest; None if there are none."""
    chunks = _chunks(target.client, iter(arg_tuples), kwargs)
    first = next(chunks, None)
    if first is None:
        return None
    response = target.client.call("FunctionCall", pb.FunctionCallRequest(
        function_id=target.function_id, inputs=first, more_inputs=True))
    feeder = _Feeder(target.client, response.call_id, chunks, len(first))
    feeder.start()
    return response.call_id, feeder


def map_outputs(target: Target, arg_tuples: Iterable[tuple], kwargs: dict, order_outputs: bool,
                return_exceptions: bool) -> Iterator[Any]:
    """`.map()` / `.starmap()`: results as they come, or in input order."""
    started = start_map(target, arg_tuples, kwargs)
    if started is None:
        return
    call_id, feeder = started
    finished = False
    try:
        yield from _collect(target, call_id, feeder, order_outputs, return_exceptions)
        finished = True
    finally:
        if not finished:
            _cancel_quietly(target.client, call_id)


def _collect(target: Target, call_id: str, feeder: _Feeder, order_outputs: bool,
             return_exceptions: bool) -> Iterator[Any]:
    pending: dict[int, pb.Output] = {}
    next_idx = done = after = 0
    while not (feeder.finished.is_set() and feeder.error is None and done >= feeder.total):
        if feeder.error is not None:
            raise feeder.error
        request = pb.GetOutputsRequest(call_id=call_id, after_seq=after, timeout=1.0)
        response = target.client.call("FunctionGetOutputs", request, retry=True)
        finals = [out for out in response.outputs if out.status != pb.GEN_ITEM]
        if response.outputs:
            after = response.outputs[-1].seq
        if not finals:
            continue
        done += len(finals)
        target.show_logs_until(finals[-1].log_seq)
        if not order_outputs:
            for out in finals:
                yield _result(target, out, return_exceptions)
            continue
        for out in finals:
            pending[out.idx] = out
        while next_idx in pending:
            yield _result(target, pending.pop(next_idx), return_exceptions)
            next_idx += 1


def _result(target: Target, out: pb.Output, return_exceptions: bool) -> Any:
    if return_exceptions:
        error = output_error(target.client, out, target.local_files)
        if error is not None:
            return error
    return output_value(target.client, out, target.local_files)


def _cancel_quietly(client: Any, call_id: str) -> None:
    try:
        client.call("FunctionCallCancel", pb.CallRef(call_id=call_id), timeout=5)
    except Error:
        pass
