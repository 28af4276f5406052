"""`FunctionCall`: a handle on a spawned call, valid across processes by its id."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._aio import twin, with_aio
from .exception import TimeoutError

if TYPE_CHECKING:
    from ._proto import pb


class FunctionCall:
    """Returned by `Function.spawn()`; fetch the result with `.get()`."""

    def __init__(self, call_id: str, client: Any = None, follower: Any = None,
                 local_files: dict[str, str] | None = None) -> None:
        self.object_id = call_id
        self._client = client
        self._follower = follower
        self._local_files = local_files

    def __repr__(self) -> str:
        return f"FunctionCall({self.object_id!r})"

    def _connection(self) -> Any:
        if self._client is None:
            from ._client.connection import get_client

            self._client = get_client()
        return self._client

    @staticmethod
    def from_id(function_call_id: str) -> FunctionCall:
        """Rebuild a handle from `call.object_id`, in this or another process."""
        return FunctionCall(function_call_id)

    def _outputs(self, timeout: float | None) -> tuple[list[pb.Output], bool]:
        """All outputs of the call once it is finished, and whether it is a map; or TimeoutError."""
        from ._proto import pb

        client = self._connection()
        deadline = None if timeout is None else time.monotonic() + timeout
        outputs: list[pb.Output] = []
        after = 0
        while True:
            wait = 50.0 if deadline is None else max(0.0, deadline - time.monotonic())
            response = client.call("FunctionGetOutputs", pb.GetOutputsRequest(
                call_id=self.object_id, after_seq=after, timeout=wait), retry=True)
            for out in response.outputs:
                after = out.seq
                outputs.append(out)
            finals = sum(1 for o in outputs if o.status != pb.GEN_ITEM)
            if response.inputs_closed and finals >= response.n_inputs:
                if self._follower is not None and outputs:
                    self._follower.wait_for(outputs[-1].log_seq)
                return outputs, response.is_map
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"function call {self.object_id} did not finish within {timeout}s")

    @twin
    def get(self, timeout: float | None = None) -> Any:
        """The call's result; raises what the function raised. For a `spawn_map` call, the list of results."""
        from ._invocation import output_value
        from ._proto import pb

        outputs, is_map = self._outputs(timeout)
        finals = [o for o in outputs if o.status != pb.GEN_ITEM]
        if not is_map:
            return output_value(self._client, finals[0], self._local_files)
        return [output_value(self._client, o, self._local_files) for o in sorted(finals, key=lambda o: o.idx)]

    @twin
    def cancel(self, terminate_containers: bool = False) -> None:
        """Stop the call: queued inputs are dropped, running ones are stopped."""
        from ._proto import pb

        self._connection().call("FunctionCallCancel", pb.CallRef(call_id=self.object_id))

    @staticmethod
    @with_aio
    def gather(*function_calls: FunctionCall) -> list[Any]:
        """Wait for several calls; their results in the order given."""
        return [call.get() for call in function_calls]
