"""Plain records for the hot path inside one process.

An input handed to a container and a result coming back pass through the
scheduler and the worker agent many thousand times a second; as tuples they
cost a fraction of protobuf messages. They become protobuf only where they
cross a process boundary (the API, a remote worker's session).
"""

from __future__ import annotations

from typing import NamedTuple

from ._proto import pb


class InputRecord(NamedTuple):
    """One input on its way to a container."""

    input_id: str
    call_id: str
    args: bytes
    args_blob: str

    def to_proto(self) -> pb.ContainerInput:
        return pb.ContainerInput(input_id=self.input_id, call_id=self.call_id,
                                 args=pb.Payload(data=self.args, blob_id=self.args_blob))

    @classmethod
    def from_proto(cls, item: pb.ContainerInput) -> InputRecord:
        return cls(item.input_id, item.call_id, item.args.data, item.args.blob_id)


class ResultRecord(NamedTuple):
    """What a container reported for one input (a final result or a generator item)."""

    input_id: str
    status: int
    data: bytes
    data_blob: str
    message: str
    traceback: str
    duration_s: float

    def to_proto(self) -> pb.ContainerOutput:
        return pb.ContainerOutput(input_id=self.input_id, status=self.status,
                                  data=pb.Payload(data=self.data, blob_id=self.data_blob),
                                  message=self.message, traceback=self.traceback, duration_s=self.duration_s)

    @classmethod
    def from_proto(cls, out: pb.ContainerOutput) -> ResultRecord:
        return cls(out.input_id, out.status, out.data.data, out.data.blob_id, out.message, out.traceback,
                   out.duration_s)


class OutputRecord(NamedTuple):
    """An output of a function call, numbered, as stored and as sent to callers."""

    seq: int
    call_id: str
    idx: int
    status: int
    data: bytes
    data_blob: str
    message: str
    traceback: str
    log_seq: int

    def to_proto(self) -> pb.Output:
        return pb.Output(seq=self.seq, idx=self.idx, status=self.status,
                         data=pb.Payload(data=self.data, blob_id=self.data_blob), message=self.message,
                         traceback=self.traceback, log_seq=self.log_seq)
