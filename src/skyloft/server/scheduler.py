"""The scheduler: per-function input queues, dispatch to containers, retries,
cancellation, and the autoscaling loop.

All state changes happen under one lock. Inputs are written to the store
before they are queued, and outputs before they are handed to callers, so a
restart rebuilds the queues from the store (`recover`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from .. import ids
from .._proto import pb
from ..exception import InvalidError, NotFoundError
from ..records import InputRecord, OutputRecord, ResultRecord
from .autoscaler import Limits, Load, desired_containers
from .logs import LogHub
from .store import Store, StoreWriter

log = logging.getLogger("skyloft.scheduler")

_TICK_S = 0.05
_HEARTBEAT_TIMEOUT_S = 60.0
_CALL_RETENTION_S = 300.0
_BATCH_WORK_S = 0.005
_MAX_BATCH = 1000
_RETRIABLE = (pb.FAILURE, pb.TIMEOUT, pb.CRASHED)
_MAX_FAILED_STARTS = 3


class WorkerHandle(Protocol):
    """What the scheduler needs of a worker, local (in-process) or remote (gRPC)."""

    worker_id: str

    def start_container(self, container_id: str, spec: pb.FunctionSpec) -> None: ...
    def stop_container(self, container_id: str, reason: str) -> None: ...
    def dispatch(self, container_id: str, inputs: list[InputRecord]) -> None: ...


class QueuedInput:
    """An accepted input waiting for (or running in) a container."""

    __slots__ = ("call_id", "idx", "args", "args_blob", "attempts", "input_id")

    def __init__(self, call_id: str, idx: int, args: bytes, args_blob: str, attempts: int = 0) -> None:
        self.call_id, self.idx, self.args, self.args_blob = call_id, idx, args, args_blob
        self.attempts = attempts
        self.input_id = ids.input_id(call_id, idx)

    def record(self) -> InputRecord:
        return InputRecord(self.input_id, self.call_id, self.args, self.args_blob)


# An input's fate: (input, status, data, data blob, message, traceback).
Settled = tuple[QueuedInput, int, bytes, str, str, str]


@dataclass
class ContainerState:
    container_id: str
    function_id: str
    worker: WorkerHandle
    state: str = "starting"
    pid: int = 0
    inflight: deque[QueuedInput] = field(default_factory=deque)
    busy_since: float = 0.0
    idle_since: float = field(default_factory=time.monotonic)
    stop_reason: str = ""
    n_inputs: int = 0
    started_at: float = field(default_factory=time.time)


@dataclass
class FunctionState:
    spec: pb.FunctionSpec
    queue: deque[QueuedInput] = field(default_factory=deque)
    containers: dict[str, ContainerState] = field(default_factory=dict)
    ema_duration_s: float | None = None
    failed_starts: int = 0

    def live_containers(self) -> list[ContainerState]:
        return [c for c in self.containers.values() if not c.stop_reason]


@dataclass
class CallState:
    call_id: str
    function_id: str
    cond: threading.Condition
    n_inputs: int = 0
    inputs_closed: bool = False
    cancelled: bool = False
    is_map: bool = False
    n_final: int = 0
    outputs: list[OutputRecord] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.inputs_closed and self.n_final >= self.n_inputs


@dataclass
class AppState:
    app_id: str
    name: str
    state: str
    last_heartbeat: float = field(default_factory=time.monotonic)
    function_ids: list[str] = field(default_factory=list)


class Scheduler:
    def __init__(self, store: Store, logs: LogHub) -> None:
        self.store = store
        self._logs = logs
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.apps: dict[str, AppState] = {}
        self.functions: dict[str, FunctionState] = {}
        self.calls: dict[str, CallState] = {}
        self.containers: dict[str, ContainerState] = {}
        self.workers: dict[str, WorkerHandle] = {}
        self._delayed: list[tuple[float, int, str, QueuedInput]] = []
        self._done_calls: deque[tuple[float, str]] = deque()
        self._output_seq = store.next_output_seq()
        self._writer = StoreWriter(store)
        self._delay_counter = itertools.count()
        self._loop = threading.Thread(target=self._run_loop, name="skyloft-autoscaler", daemon=True)

    def start(self) -> None:
        self._loop.start()

    def shutdown(self) -> None:
        self._stopped.set()
        self._wake.set()
        with self._lock:
            for c in list(self.containers.values()):
                self._stop_container(c, "server shutting down")
        self._writer.close()

    # ---- apps ----

    def create_app(self, name: str) -> str:
        """A running app; it becomes `detached` when its client leaves with `--detach`."""
        app_id = ids.new_id("ap")
        self.store.add_app(app_id, name, "running")
        with self._lock:
            self.apps[app_id] = AppState(app_id, name, "running")
        return app_id

    def heartbeat(self, app_id: str) -> None:
        with self._lock:
            self._app(app_id).last_heartbeat = time.monotonic()

    def stop_app(self, app_id: str, detach: bool = False) -> None:
        """Stop an app now, or (`detach`) once its accepted inputs are done."""
        with self._lock:
            app = self._app(app_id)
            if app.state == "stopped":
                return
            if detach:
                app.state = "detached"
                self.store.set_app_state(app_id, "detached")
                return
            app.state = "stopped"
            for call in list(self.calls.values()):
                if call.function_id in app.function_ids and not call.done:
                    self._cancel_locked(call, "the app was stopped")
            for fid in app.function_ids:
                for c in list(self.functions[fid].containers.values()):
                    self._stop_container(c, "app stopped")
        self.store.set_app_state(app_id, "stopped")
        self._logs.close_app(app_id)

    def app_is_open(self, app_id: str) -> bool:
        with self._lock:
            app = self.apps.get(app_id)
            return app is not None and app.state != "stopped"

    def _app(self, app_id: str) -> AppState:
        app = self.apps.get(app_id)
        if app is None:
            raise NotFoundError(f"app {app_id!r} not found")
        return app

    # ---- functions and calls ----

    def create_function(self, spec: pb.FunctionSpec) -> str:
        with self._lock:
            app = self._app(spec.app_id)
            if app.state == "stopped":
                raise InvalidError(f"app {spec.app_id} is stopped")
        spec.function_id = ids.new_id("fu")
        spec.app_name = app.name
        self.store.add_function(spec)
        with self._lock:
            self.functions[spec.function_id] = FunctionState(spec)
            app.function_ids.append(spec.function_id)
        return spec.function_id

    def submit(self, function_id: str, inputs: list[pb.Input], more_inputs: bool, durable: bool = True) -> str:
        """Accept a new call: durable first, then queued.

        A caller that waits for the result itself (`.remote()`) passes
        `durable=False`: its acknowledgement is the result, so the call is
        written while it runs instead of before.
        """
        with self._lock:
            fs = self._function(function_id)
        call_id = ids.new_id("fc")
        self._writer.add_call(call_id, function_id, inputs, closed=not more_inputs, wait=durable)
        with self._lock:
            call = self.calls[call_id] = CallState(call_id, function_id, threading.Condition(self._lock))
            call.n_inputs, call.inputs_closed, call.is_map = len(inputs), not more_inputs, more_inputs
            self._enqueue(fs, _queued(call_id, inputs))
        return call_id

    def put_inputs(self, call_id: str, inputs: list[pb.Input], last: bool) -> None:
        with self._lock:
            call = self._call(call_id)
            if call.inputs_closed:
                raise InvalidError(f"function call {call_id} takes no more inputs")
            if call.cancelled:
                raise InvalidError(f"function call {call_id} was cancelled")
            fs = self._function(call.function_id)
        self._writer.add_inputs(call_id, inputs, closed=last)
        with self._lock:
            call.n_inputs += len(inputs)
            call.inputs_closed = last
            self._enqueue(fs, _queued(call_id, inputs))
            call.cond.notify_all()

    def wait_outputs(self, call_id: str, after_seq: int, timeout: float, limit: int) -> pb.GetOutputsResponse:
        """Outputs of a call past `after_seq`, waiting up to `timeout` for the first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            call = self.calls.get(call_id)
            if call is None:
                return self._stored_outputs(call_id, after_seq, limit)
            while True:
                outputs = _outputs_after(call.outputs, after_seq, limit)
                remaining = deadline - time.monotonic()
                if outputs or call.done or remaining <= 0:
                    return _response(outputs, call.n_inputs, call.inputs_closed, call.is_map)
                call.cond.wait(remaining)

    def _stored_outputs(self, call_id: str, after_seq: int, limit: int) -> pb.GetOutputsResponse:
        stored = self.store.get_call(call_id)
        if stored is None:
            raise NotFoundError(f"function call {call_id!r} not found")
        return _response(self.store.outputs_after(call_id, after_seq, limit), stored.n_inputs,
                         stored.inputs_closed, stored.is_map)

    def cancel(self, call_id: str) -> None:
        with self._lock:
            call = self.calls.get(call_id)
            if call is None:
                if self.store.get_call(call_id) is None:
                    raise NotFoundError(f"function call {call_id!r} not found")
                return
            self._cancel_locked(call, "the function call was cancelled")

    def _cancel_locked(self, call: CallState, why: str) -> None:
        """Drop queued inputs of the call and stop the containers running its others."""
        if call.cancelled or call.done:
            return
        call.cancelled = True
        self.store.cancel_call(call.call_id)
        fs = self.functions[call.function_id]
        dropped = [q for q in fs.queue if q.call_id == call.call_id]
        fs.queue = deque(q for q in fs.queue if q.call_id != call.call_id)
        dropped += [entry[3] for entry in self._delayed if entry[3].call_id == call.call_id]
        self._delayed = [entry for entry in self._delayed if entry[3].call_id != call.call_id]
        heapq.heapify(self._delayed)
        self._finish(call.function_id, [(q, pb.CANCELLED, b"", "", why, "") for q in dropped])
        for c in fs.live_containers():
            if any(q.call_id == call.call_id for q in c.inflight):
                self._stop_container(c, "its function call was cancelled")
        call.inputs_closed = True
        call.cond.notify_all()

    def _call(self, call_id: str) -> CallState:
        call = self.calls.get(call_id)
        if call is None:
            raise NotFoundError(f"function call {call_id!r} not found or already finished")
        return call

    def _function(self, function_id: str) -> FunctionState:
        fs = self.functions.get(function_id)
        if fs is None:
            raise NotFoundError(f"function {function_id!r} not found; is its app still running?")
        app = self.apps.get(fs.spec.app_id)
        if app is None or app.state == "stopped":
            raise InvalidError(f"the app of function {fs.spec.name!r} is stopped")
        return fs

    # ---- queueing and dispatch ----

    def _enqueue(self, fs: FunctionState, items: list[QueuedInput], front: bool = False) -> None:
        if front:
            fs.queue.extendleft(reversed(items))
        else:
            fs.queue.extend(items)
        self._dispatch(fs)
        if fs.queue:
            self._wake.set()

    def _batch_size(self, fs: FunctionState, n_ready: int) -> int:
        """Hand out about `_BATCH_WORK_S` of work at a time to amortise messaging."""
        if fs.ema_duration_s is None:
            return 1
        by_time = max(1, int(_BATCH_WORK_S / max(fs.ema_duration_s, 1e-6)))
        fair_share = math.ceil(len(fs.queue) / max(1, n_ready))
        return max(1, min(by_time, fair_share, _MAX_BATCH))

    def _dispatch(self, fs: FunctionState) -> None:
        ready = [c for c in fs.live_containers() if c.state == "running"]
        if not ready or not fs.queue:
            return
        batch = self._batch_size(fs, len(ready))
        # Two batches in flight keep a fast container busy while outputs travel back.
        limit = 1 if batch == 1 else 2 * batch
        ready.sort(key=lambda c: len(c.inflight))
        for c in ready:
            if not fs.queue:
                break
            room = min(limit - len(c.inflight), batch)
            if room <= 0:
                continue
            taken = [fs.queue.popleft() for _ in range(min(room, len(fs.queue)))]
            if not c.inflight:
                c.busy_since = time.monotonic()
            c.inflight.extend(taken)
            c.n_inputs += len(taken)
            c.worker.dispatch(c.container_id, [q.record() for q in taken])

    # ---- events from workers ----

    def record_outputs(self, container_id: str, results: list[ResultRecord]) -> None:
        with self._lock:
            c = self.containers.get(container_id)
            if c is None:
                return
            fs = self.functions[c.function_id]
            finished: list[Settled] = []
            items: list[tuple] = []
            for out in results:
                if out.status == pb.GEN_ITEM:
                    call_id, idx = ids.parse_input_id(out.input_id)
                    items.append((call_id, idx, pb.GEN_ITEM, out.data, out.data_blob, "", ""))
                    continue
                q = _pop_inflight(c, out.input_id)
                if q is None:
                    continue
                fs.ema_duration_s = out.duration_s if fs.ema_duration_s is None else (
                    0.8 * fs.ema_duration_s + 0.2 * out.duration_s)
                finished.append((q, out.status, out.data, out.data_blob, out.message, out.traceback))
            if items:
                self._publish(fs.spec.app_id, items)
            now = time.monotonic()
            if c.inflight:
                c.busy_since = now
            else:
                c.idle_since = now
            self._finish(c.function_id, finished)
            self._dispatch(fs)

    def container_event(self, event: pb.ContainerEvent) -> None:
        with self._lock:
            c = self.containers.get(event.container_id)
            if c is None:
                return
            if event.kind == pb.ContainerEvent.STARTED:
                self.functions[c.function_id].failed_starts = 0
                c.state, c.pid = "running", event.pid
                c.idle_since = time.monotonic()
                self.store.set_container_state(c.container_id, "running", pid=event.pid)
                self._dispatch(self.functions[c.function_id])
                return
            self._container_exited(c, event.reason or f"exit code {event.exit_code}", event.input_id)

    def _container_exited(self, c: ContainerState, reason: str, running: str = "") -> None:
        """Settle the inputs a container held when it went away.

        The input it was running (`running`, else the oldest it held) is
        blamed; the others go back to the queue. Those it had finished but not
        yet reported run again: at least once, never lost.
        """
        fs = self.functions[c.function_id]
        del fs.containers[c.container_id]
        self.containers.pop(c.container_id, None)
        self.store.set_container_state(c.container_id, "stopped", reason=c.stop_reason or reason)
        inflight = list(c.inflight)
        c.inflight.clear()
        requeue: list[QueuedInput] = []
        finished = []
        culprit = running if any(q.input_id == running for q in inflight) else (
            inflight[0].input_id if inflight else "")
        for q in inflight:
            call = self.calls.get(q.call_id)
            if call is not None and call.cancelled:
                finished.append((q, pb.CANCELLED, b"", "", "the function call was cancelled", ""))
            elif q.input_id == culprit and not c.stop_reason:
                status = pb.TIMEOUT if reason.startswith("timeout") else pb.CRASHED
                finished.append((q, status, b"", "", _crash_message(fs.spec, reason), ""))
            else:
                requeue.append(q)
        self._finish(c.function_id, finished)
        if requeue:
            self._enqueue(fs, requeue, front=True)
        if c.state == "starting" and not c.stop_reason:
            self._note_failed_start(fs, reason)
        self._wake.set()

    def _note_failed_start(self, fs: FunctionState, reason: str) -> None:
        """After several containers in a row die before starting (or at once, when the image
        cannot be built), fail the waiting inputs rather than starting containers forever."""
        fs.failed_starts += 1
        build_failed = reason.startswith("image build failed")
        if not build_failed and (fs.failed_starts < _MAX_FAILED_STARTS
                                 or any(c.state == "running" for c in fs.live_containers())):
            return
        if build_failed:
            status, message = pb.BUILD_FAILED, reason
        else:
            status = pb.CRASHED
            message = (f"containers for function {fs.spec.name!r} failed to start {fs.failed_starts} times "
                       f"in a row (last: {reason}); see `skyloft app logs {fs.spec.app_id}`")
        waiting, fs.queue = list(fs.queue), deque()
        fs.failed_starts = 0
        self._publish(fs.spec.app_id, [(q.call_id, q.idx, status, b"", "", message, "") for q in waiting])

    def container_log(self, container_id: str, stream: int, text: str) -> None:
        with self._lock:
            c = self.containers.get(container_id)
            if c is None:
                return
            spec = self.functions[c.function_id].spec
        self._logs.append(spec.app_id, container_id, spec.name, stream, text)

    # ---- settling inputs ----

    def _finish(self, function_id: str, results: list[Settled]) -> None:
        """Retry what the policy allows; record the rest as final outputs."""
        if not results:
            return
        spec = self.functions[function_id].spec
        finals: list[tuple] = []
        for q, status, data, data_blob, message, tb in results:
            call = self.calls.get(q.call_id)
            retriable = status in _RETRIABLE and not (call and call.cancelled)
            if retriable and q.attempts < spec.retries.max_retries:
                q.attempts += 1
                self.store.set_attempts(q.call_id, q.idx, q.attempts)
                self._schedule_retry(function_id, q, spec.retries)
                continue
            finals.append((q.call_id, q.idx, status, data, data_blob, message, tb))
        self._publish(spec.app_id, finals)

    def _publish(self, app_id: str, outputs: list[tuple]) -> None:
        """Number outputs, hand them to callers, and queue them for the store.

        Each output is (call id, index, status, data, data blob, message, traceback).
        """
        if not outputs:
            return
        log_seq = self._logs.last_seq(app_id)
        first = self._output_seq + 1
        self._output_seq += len(outputs)
        records = [OutputRecord(seq, *out, log_seq) for seq, out in enumerate(outputs, first)]
        self._writer.add_outputs(records)
        touched = {}
        for out in records:
            call_id = out.call_id
            call = self.calls.get(call_id)
            if call is None:
                continue
            call.outputs.append(out)
            if out.status != pb.GEN_ITEM:
                call.n_final += 1
                if call.done:
                    self._done_calls.append((time.monotonic(), call_id))
            touched[call_id] = call
        for call in touched.values():
            call.cond.notify_all()

    def _schedule_retry(self, function_id: str, q: QueuedInput, policy: pb.RetryPolicy) -> None:
        delay = policy.initial_delay * (policy.backoff_coefficient ** (q.attempts - 1))
        delay = min(delay, policy.max_delay) if policy.max_delay else delay
        heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._delay_counter), function_id, q))
        self._wake.set()

    # ---- workers and containers ----

    def add_worker(self, worker: WorkerHandle) -> None:
        with self._lock:
            self.workers[worker.worker_id] = worker
        self._wake.set()

    def remove_worker(self, worker_id: str) -> None:
        with self._lock:
            self.workers.pop(worker_id, None)
            for c in [c for c in self.containers.values() if c.worker.worker_id == worker_id]:
                c.stop_reason = c.stop_reason or "its worker disconnected"
                self._container_exited(c, "worker disconnected")

    def stop_container(self, container_id: str) -> None:
        with self._lock:
            c = self.containers.get(container_id)
            if c is None:
                raise NotFoundError(f"container {container_id!r} not found or already stopped")
            self._stop_container(c, "stopped by the user")

    def _stop_container(self, c: ContainerState, reason: str) -> None:
        if c.stop_reason:
            return
        c.stop_reason = reason
        self.store.set_container_state(c.container_id, "stopping", reason=reason)
        c.worker.stop_container(c.container_id, reason)

    def _start_container(self, fs: FunctionState) -> bool:
        if not self.workers:
            return False
        worker = min(self.workers.values(),
                     key=lambda w: sum(1 for c in self.containers.values() if c.worker is w))
        container_id = ids.new_id("ta")
        c = ContainerState(container_id, fs.spec.function_id, worker)
        fs.containers[container_id] = c
        self.containers[container_id] = c
        self.store.add_container(container_id, fs.spec.app_id, fs.spec.function_id, fs.spec.name,
                                  worker.worker_id)
        worker.start_container(container_id, fs.spec)
        return True

    # ---- the loop: retries due, autoscaling, timeouts of idle state ----

    def _run_loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(_TICK_S)
            self._wake.clear()
            try:
                with self._lock:
                    self._release_due_retries()
                    self._expire_apps()
                    for fs in list(self.functions.values()):
                        self._autoscale(fs)
                    self._forget_old_calls()
            except Exception:
                log.exception("scheduler loop failed; continuing")

    def _release_due_retries(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, function_id, q = heapq.heappop(self._delayed)
            fs = self.functions.get(function_id)
            if fs is not None:
                self._enqueue(fs, [q])

    def _expire_apps(self) -> None:
        """Stop ephemeral apps whose client vanished, and detached apps with no work left."""
        now = time.monotonic()
        for app in list(self.apps.values()):
            if app.state == "running" and now - app.last_heartbeat > _HEARTBEAT_TIMEOUT_S:
                log.info("app %s lost its client; stopping it", app.app_id)
                self.stop_app(app.app_id)
            elif app.state == "detached" and not self._app_has_work(app):
                self.stop_app(app.app_id)

    def _app_has_work(self, app: AppState) -> bool:
        for fid in app.function_ids:
            fs = self.functions[fid]
            if fs.queue or any(c.inflight for c in fs.containers.values()):
                return True
        if any(entry[2] in app.function_ids for entry in self._delayed):
            return True
        return any(not call.done for call in self.calls.values() if call.function_id in app.function_ids)

    def _autoscale(self, fs: FunctionState) -> None:
        app = self.apps.get(fs.spec.app_id)
        if app is None or app.state == "stopped":
            if not fs.containers:
                del self.functions[fs.spec.function_id]
            return
        live = fs.live_containers()
        now = time.monotonic()
        busy = [c for c in live if c.inflight]
        oldest = max((now - c.busy_since for c in busy), default=0.0)
        # Until an input has finished, the oldest running one bounds how long inputs take.
        estimate = oldest if fs.ema_duration_s is None else fs.ema_duration_s
        load = Load(queued=len(fs.queue), busy=len(busy), est_duration_s=estimate)
        spec = fs.spec
        limits = Limits(spec.min_containers, spec.max_containers, spec.buffer_containers)
        want = desired_containers(load, limits, current=len(live))
        for _ in range(want - len(live)):
            if not self._start_container(fs):
                break
        idle = sorted((c for c in live if c.state == "running" and not c.inflight), key=lambda c: c.idle_since)
        surplus = len(live) - want
        for c in idle[:max(0, surplus)]:
            if now - c.idle_since >= spec.scaledown_window:
                self._stop_container(c, "scaled down after being idle")

    def _forget_old_calls(self) -> None:
        """Finished calls stay in memory for a while; later reads come from the store."""
        horizon = time.monotonic() - _CALL_RETENTION_S
        while self._done_calls and self._done_calls[0][0] < horizon:
            self.calls.pop(self._done_calls.popleft()[1], None)

    # ---- restart ----

    def recover(self) -> int:
        """Rebuild apps, functions and queues from the store; returns inputs requeued."""
        self.store.mark_all_containers_stopped("server restarted")
        with self._lock:
            for app_id, name, state, _ in self.store.apps():
                if state != "stopped":
                    self.apps[app_id] = AppState(app_id, name, state)
            for spec in self.store.live_functions():
                self.functions[spec.function_id] = FunctionState(spec)
                self.apps[spec.app_id].function_ids.append(spec.function_id)
            count = 0
            for function_id, stored in self.store.unfinished_inputs():
                fs = self.functions.get(function_id)
                if fs is None:
                    continue
                call = self.calls.get(stored.call_id)
                if call is None:
                    call = self._load_call(stored.call_id)
                fs.queue.append(QueuedInput(stored.call_id, stored.idx, stored.args, stored.args_blob,
                                            stored.attempts))
                count += 1
            self._wake.set()
            return count

    def _load_call(self, call_id: str) -> CallState:
        stored = self.store.get_call(call_id)
        assert stored is not None
        call = self.calls[call_id] = CallState(call_id, stored.function_id, threading.Condition(self._lock))
        call.n_inputs, call.inputs_closed, call.is_map = stored.n_inputs, stored.inputs_closed, stored.is_map
        call.outputs = self.store.outputs_after(call_id, 0, 1 << 30)
        call.n_final = sum(1 for o in call.outputs if o.status != pb.GEN_ITEM)
        return call

    # ---- views ----

    def container_rows(self, app_id: str = "") -> list[pb.ContainerInfo]:
        with self._lock:
            live = dict(self.containers)
        rows = []
        for cid, a_id, fname, worker_id, state, started_at, pid in self.store.containers(app_id):
            c = live.get(cid)
            if c is None and state != "stopped":
                continue
            rows.append(pb.ContainerInfo(
                container_id=cid, app_id=a_id, function_name=fname, worker_id=worker_id,
                state=("stopping" if c and c.stop_reason else c.state) if c else state,
                started_at=started_at, pid=(c.pid if c else pid) or 0, n_inputs=c.n_inputs if c else 0))
        return rows


def _queued(call_id: str, inputs: list[pb.Input]) -> list[QueuedInput]:
    return [QueuedInput(call_id, i.idx, i.args.data, i.args.blob_id) for i in inputs]


def _response(outputs: list[OutputRecord], n_inputs: int, inputs_closed: bool,
              is_map: bool) -> pb.GetOutputsResponse:
    response = pb.GetOutputsResponse(n_inputs=n_inputs, inputs_closed=inputs_closed, is_map=is_map)
    add = response.outputs.add
    for out in outputs:
        message = add(seq=out.seq, idx=out.idx, status=out.status, message=out.message,
                      traceback=out.traceback, log_seq=out.log_seq)
        if out.data_blob:
            message.data.blob_id = out.data_blob
        else:
            message.data.data = out.data
    return response


def _outputs_after(outputs: list[OutputRecord], after_seq: int, limit: int) -> list[OutputRecord]:
    if not outputs or outputs[-1].seq <= after_seq:
        return []
    lo, hi = 0, len(outputs)
    while lo < hi:
        mid = (lo + hi) // 2
        if outputs[mid].seq <= after_seq:
            lo = mid + 1
        else:
            hi = mid
    return outputs[lo:lo + limit]


def _pop_inflight(c: ContainerState, input_id: str) -> QueuedInput | None:
    if c.inflight and c.inflight[0].input_id == input_id:
        return c.inflight.popleft()
    for q in c.inflight:
        if q.input_id == input_id:
            c.inflight.remove(q)
            return q
    return None


def _crash_message(spec: pb.FunctionSpec, reason: str) -> str:
    if reason.startswith("timeout"):
        return f"function {spec.name!r} ran past its timeout of {spec.timeout:g}s; the container was stopped"
    return (f"the container running function {spec.name!r} died: {reason}. "
            "Set `retries=` on the function to retry inputs after a crash.")

