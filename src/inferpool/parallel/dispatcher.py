"""The dispatcher: hands requests to workers and matches their responses.

Design notes
------------
`AsyncResponses` keeps one future per outstanding message id and, per worker,
the set of ids in flight on it. The set's size is the worker's load, so
least-loaded dispatch costs one `len()` per worker, and a worker's death
fails exactly the requests in its set.

`Dispatcher` keeps three groups of workers:

- attached: started, reading messages; every load and unload reaches them.
- ready: attached and holding every model; they receive requests. The order
  of this list drives round robin and breaks ties in least-loaded dispatch.
- neither: stopped; they are forgotten.

A model may have at most `max_concurrency` requests in flight on one worker.
A request that finds no worker below that limit waits in a per-model FIFO
queue of at most `max_queue_size` entries, and past it fails at once with
`ServerOverloaded`. A finished request hands its slot to the oldest waiter of
the same model directly, so a queued request cannot be overtaken by one that
arrives later.

Requests in the queue were never sent anywhere, so a worker's death does not
touch them: they go to the next worker with room. Only requests written to
the dead worker's socket fail, with `WorkerStop`.

Choices not taken: a shared queue that idle workers pull from would balance
perfectly, but it costs an extra round trip per request. Plain round robin
(as in MLServer) ignores that one worker may be stuck on a slow request, so
it is kept only as an option.

A request whose caller gave up (timeout, disconnect) keeps its slot until
the worker answers the cancellation: an async model stops at once and the
worker acknowledges it, but a blocking model keeps its worker busy. Until
it answers, the worker gets no new request; past `stuck_worker_timeout`
the pool kills and replaces it, since a model blocked forever would
otherwise hold its worker forever.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import (
    InferpoolError,
    ModelError,
    ModelLoadError,
    ModelNotFound,
    ServerOverloaded,
)
from ..settings import ModelSettings
from .errors import PoolClosed, WorkerStop
from .messages import (
    CancelMessage,
    ExceptionInfo,
    Message,
    ModelRequestMessage,
    ModelResponseMessage,
    ModelUpdateMessage,
    ModelUpdateType,
)
from .transport import ConnectionClosed

if TYPE_CHECKING:
    from .pool import Worker

logger = logging.getLogger(__name__)

DispatchPolicy = Literal["least_loaded", "round_robin"]


def rebuild_exception(info: ExceptionInfo) -> BaseException:
    """Turn a worker's `ExceptionInfo` back into an exception to raise.

    The original exception when it unpickles here and is an `Exception`,
    otherwise `ModelError` with the class's import path and message, so that
    a model raising SystemExit or KeyboardInterrupt fails only its request.
    """
    if info.pickled is not None:
        try:
            exc = pickle.loads(info.pickled)
        except Exception:
            pass
        else:
            if isinstance(exc, Exception):
                return exc
    return ModelError(info.type_path, info.message)


class AsyncResponses:
    """Futures of the messages in flight, by message id and by worker."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[ModelResponseMessage]] = {}
        self._in_flight: dict[int, set[str]] = {}

    def __len__(self) -> int:
        return len(self._futures)

    def in_flight(self, worker_pid: int) -> int:
        ids = self._in_flight.get(worker_pid)
        return len(ids) if ids else 0

    async def schedule_and_wait(
        self, message: Message, worker: Worker
    ) -> ModelResponseMessage:
        """Record `message` as in flight on `worker` and wait for its response.

        Returns the response, or raises the exception it carries, or
        `WorkerStop` if the worker dies first. The entry is removed however
        the wait ends, cancellation included, so a late response for it is
        dropped by `resolve`.
        """
        return await self.send_and_wait(message, worker, send=False)

    async def send_and_wait(
        self,
        message: Message,
        worker: Worker,
        timeout: float | None = None,
        send: bool = True,
    ) -> ModelResponseMessage:
        """Record `message` as in flight on `worker`, send it, and wait for
        its response as `schedule_and_wait` does.

        The entry exists before the message is written, so a response cannot
        arrive ahead of its waiter. Raises `TimeoutError` after `timeout`
        seconds, and whatever `worker.send` raises (nothing was sent then).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ModelResponseMessage] = loop.create_future()
        message_id = message.id
        pid = worker.pid
        self._futures[message_id] = future
        ids = self._in_flight.get(pid)
        if ids is None:
            ids = self._in_flight[pid] = set()
        ids.add(message_id)
        try:
            if send:
                worker.send(message)
            if timeout is None:
                return await future
            return await asyncio.wait_for(future, timeout)
        finally:
            del self._futures[message_id]
            ids.discard(message_id)

    def resolve(self, response: ModelResponseMessage) -> None:
        """Complete the future waiting for `response`, with its return value
        or its exception.

        A response without a waiting caller (it timed out or was cancelled)
        is logged at debug level and dropped.
        """
        future = self._futures.get(response.id)
        if future is None or future.done():
            logger.debug(
                "Dropping response %r: no caller is waiting for it", response.id
            )
            return
        exception = response.exception
        if exception is None:
            future.set_result(response)
        elif isinstance(exception, ExceptionInfo):
            future.set_exception(rebuild_exception(exception))
        else:
            future.set_exception(exception)

    def fail(self, message_id: str, exc: BaseException) -> None:
        """Fail one waiting message, if it is still waited for."""
        future = self._futures.get(message_id)
        if future is not None and not future.done():
            future.set_exception(exc)

    def cancel(self, worker: Worker, exit_code: int | None) -> None:
        """Fail every message in flight on `worker` with `WorkerStop`, e.g.
        because it died unexpectedly."""
        ids = self._in_flight.pop(worker.pid, None)
        if not ids:
            return
        for message_id in list(ids):
            self.fail(message_id, WorkerStop(worker.pid, exit_code))

    def cancel_all(self, exc: BaseException) -> None:
        for future in self._futures.values():
            if not future.done():
                future.set_exception(exc)


@dataclass(frozen=True)
class DispatcherStatistics:
    """A snapshot of the dispatcher, for metrics, logs and tests."""

    workers: int
    ready_workers: int
    in_flight: dict[int, int]
    queued: dict[str, int]
    outstanding: int
    # Requests whose caller gave up and whose worker has not replied yet.
    overdue: int


@dataclass
class _ModelLimits:
    max_concurrency: int
    max_queue_size: int


class Dispatcher:
    """Sends requests to the ready workers and updates to all workers.

    `policy` is "least_loaded" (fewest requests in flight, round robin among
    ties) or "round_robin". `max_concurrency` and `max_queue_size` are the
    defaults for models whose settings do not set them.
    """

    def __init__(
        self,
        workers: list[Worker] | None = None,
        *,
        policy: DispatchPolicy = "least_loaded",
        max_concurrency: int = 8,
        max_queue_size: int = 1024,
        no_worker_timeout: float = 10.0,
        stuck_worker_timeout: float = 5.0,
    ) -> None:
        if policy not in ("least_loaded", "round_robin"):
            raise ValueError(
                f"Unknown dispatch policy {policy!r}: expected 'least_loaded' or 'round_robin'"
            )
        self._policy = policy
        self._default_limits = _ModelLimits(max_concurrency, max_queue_size)
        self._no_worker_timeout = no_worker_timeout
        self._stuck_worker_timeout = stuck_worker_timeout
        # Requests whose caller gave up, by message id: the worker, the
        # model whose slot the request keeps (None for an update) and the
        # loop time by which the worker must have replied.
        self._overdue: dict[str, tuple[Worker, str | None, float]] = {}
        self._overdue_count: dict[int, int] = {}
        self._limits: dict[str, _ModelLimits] = {}

        self._attached: dict[int, Worker] = {}
        self._ready: list[Worker] = []
        self._next = 0
        self._model_in_flight: dict[tuple[int, str], int] = {}
        self._queues: dict[str, deque[asyncio.Future[Worker]]] = {}
        self._responses = AsyncResponses()
        self._closed: BaseException | None = None

        # Held by `dispatch_update` and by the pool while a started worker
        # loads every model, so no worker misses a load or an unload.
        self.update_lock = asyncio.Lock()

        for worker in workers or ():
            self.on_worker_start(worker)
            self.on_worker_ready(worker)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Accept requests; responses are fed in through `resolve`."""
        self._closed = None

    async def stop(self) -> None:
        """Stop accepting requests and fail those still waiting with
        `PoolClosed`. In-flight requests should be drained by the caller
        before, with `wait_idle`."""
        self._closed = PoolClosed("The inference pool is closed")
        self._responses.cancel_all(self._closed)
        for queue in self._queues.values():
            for waiter in queue:
                if not waiter.done():
                    waiter.set_exception(self._closed)
            queue.clear()

    def resolve(self, response: ModelResponseMessage) -> None:
        """Feed a worker's response to the caller waiting for it."""
        if self._overdue:
            self._clear_overdue(response.id)
        self._responses.resolve(response)

    # -- requests whose caller gave up -------------------------------------------

    def _mark_overdue(
        self, worker: Worker, message_id: str, model_name: str | None
    ) -> None:
        """Expect the worker to reply to `message_id`, whose caller gave
        up, within `stuck_worker_timeout` seconds, or `overdue_workers`
        reports it. A request keeps its concurrency slot until then."""
        deadline = asyncio.get_running_loop().time() + self._stuck_worker_timeout
        if model_name is None:
            deadline = 0.0  # an update that timed out: the worker is stuck now
        self._overdue[message_id] = (worker, model_name, deadline)
        self._overdue_count[worker.pid] = self._overdue_count.get(worker.pid, 0) + 1

    def _clear_overdue(self, message_id: str) -> None:
        entry = self._overdue.pop(message_id, None)
        if entry is None:
            return
        worker, model_name, _ = entry
        remaining = self._overdue_count.get(worker.pid, 1) - 1
        if remaining:
            self._overdue_count[worker.pid] = remaining
        else:
            self._overdue_count.pop(worker.pid, None)
        if model_name is not None:
            self._release(worker, model_name)
        if not remaining:
            for queued_model in list(self._queues):
                self._wake(queued_model)

    def overdue_workers(self, now: float) -> list[Worker]:
        """Return the workers that left a cancelled request or a timed-out
        update unanswered past its deadline: they are stuck."""
        return list(
            {
                worker.pid: worker
                for worker, _, deadline in self._overdue.values()
                if deadline <= now and worker.pid in self._attached
            }.values()
        )

    def fail(self, message_id: str, exc: BaseException) -> None:
        """Fail the request `message_id` (its response could not be read)."""
        self._responses.fail(message_id, exc)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is queued or in flight; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._responses) or any(self._queues.values()):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- workers ---------------------------------------------------------------

    def on_worker_start(self, worker: Worker) -> None:
        """Attach a started worker: it receives every update from now on,
        but no request until `on_worker_ready`.

        Call it with `update_lock` held and keep holding it while the worker
        loads every registered model, as a restarted worker must."""
        self._attached[worker.pid] = worker

    def on_worker_ready(self, worker: Worker) -> None:
        """Put a worker that has loaded every model into the rotation and
        hand it queued requests."""
        if worker.pid not in self._attached or worker in self._ready:
            return
        self._ready.append(worker)
        for model_name in list(self._queues):
            self._wake(model_name)

    def on_worker_stop(self, worker: Worker, exit_code: int | None) -> None:
        """Remove a worker that stopped unexpectedly from the rotation and
        fail its in-flight requests with `WorkerStop`. Queued requests wait
        for another worker."""
        self._attached.pop(worker.pid, None)
        if worker in self._ready:
            self._ready.remove(worker)
        self._responses.cancel(worker, exit_code)
        for message_id, (owner, _, _) in list(self._overdue.items()):
            if owner.pid == worker.pid:
                self._clear_overdue(message_id)

    @property
    def ready_workers(self) -> list[Worker]:
        return list(self._ready)

    @property
    def workers(self) -> list[Worker]:
        return list(self._attached.values())

    # -- requests --------------------------------------------------------------

    async def dispatch_request(
        self, request_message: ModelRequestMessage
    ) -> ModelResponseMessage:
        """Send a request to a worker and wait for its response.

        Waits in the model's queue while every worker is at the model's
        concurrency limit. Raises `ServerOverloaded` when that queue is full,
        `PoolClosed` after `stop`, `WorkerStop` if the worker dies with the
        request in flight, or the exception the model raised.
        """
        if self._closed is not None:
            raise self._closed
        model_name = request_message.model_name
        while True:
            worker = None
            if not self._queues.get(model_name):
                worker = self._acquire(model_name)
            if worker is None:
                worker = await self._wait_for_worker(model_name)
            try:
                response = await self._responses.send_and_wait(request_message, worker)
            except ConnectionClosed:
                # The worker's socket closed before its exit was noticed:
                # nothing was sent, so take it out and try another worker.
                self._release(worker, model_name)
                if worker in self._ready:
                    self._ready.remove(worker)
                continue
            except asyncio.CancelledError:
                if worker.pid in self._attached:
                    # The worker may still be computing, so its slot stays
                    # taken until it replies to the cancellation.
                    self._send_cancel(worker, request_message.id)
                    self._mark_overdue(worker, request_message.id, model_name)
                else:
                    self._release(worker, model_name)
                raise
            except BaseException:
                self._release(worker, model_name)
                raise
            self._release(worker, model_name)
            return response

    def _send_cancel(self, worker: Worker, message_id: str) -> None:
        try:
            worker.send(CancelMessage(message_id))
        except Exception:
            pass

    def _limits_for(self, model_name: str) -> _ModelLimits:
        return self._limits.get(model_name, self._default_limits)

    def _acquire(self, model_name: str) -> Worker | None:
        """Take a slot of `model_name` on the worker the policy picks, or
        return None when every ready worker is at the model's limit."""
        ready = self._ready
        count = len(ready)
        if not count:
            return None

        limit = self._limits_for(model_name).max_concurrency
        in_flight = self._model_in_flight
        # A worker that has not answered a cancelled request may be stuck:
        # it gets nothing new until it answers or is replaced.
        suspect = self._overdue_count
        start = self._next % count
        chosen = -1

        if self._policy == "least_loaded":
            best_load = -1
            for offset in range(count):
                index = (start + offset) % count
                worker = ready[index]
                pid = worker.pid
                if in_flight.get((pid, model_name), 0) >= limit or pid in suspect:
                    continue
                load = self._responses.in_flight(pid)
                if chosen < 0 or load < best_load:
                    chosen, best_load = index, load
                    if load == 0:
                        break
        else:
            for offset in range(count):
                index = (start + offset) % count
                pid = ready[index].pid
                if in_flight.get((pid, model_name), 0) < limit and pid not in suspect:
                    chosen = index
                    break

        if chosen < 0:
            return None
        self._next = chosen + 1
        worker = ready[chosen]
        key = (worker.pid, model_name)
        in_flight[key] = in_flight.get(key, 0) + 1
        return worker

    def _release(self, worker: Worker, model_name: str) -> None:
        key = (worker.pid, model_name)
        remaining = self._model_in_flight.get(key, 0) - 1
        if remaining > 0:
            self._model_in_flight[key] = remaining
        else:
            self._model_in_flight.pop(key, None)
        if self._queues.get(model_name):
            self._wake(model_name)

    async def _wait_for_worker(self, model_name: str) -> Worker:
        queue = self._queues.get(model_name)
        if queue is None:
            queue = self._queues[model_name] = deque()
        limit = self._limits_for(model_name).max_queue_size
        if len(queue) >= limit:
            raise ServerOverloaded(
                f"Model {model_name!r} is overloaded: {len(queue)} requests are "
                f"queued, the limit is {limit}; retry later"
            )
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Worker] = loop.create_future()
        queue.append(waiter)
        timer = None
        if not self._ready:
            # No worker can serve (all are starting or restarting): wait for
            # one, but not without bound.
            timer = loop.call_later(
                self._no_worker_timeout, self._expire, waiter, model_name
            )
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # A worker was handed over just as the caller gave up.
                self._release(waiter.result(), model_name)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            handed_over = (
                waiter.done() and not waiter.cancelled() and waiter.exception() is None
            )
            if not handed_over:
                # `_wake` pops the waiters it hands a worker to; any other
                # outcome (cancelled, expired) leaves this one queued.
                try:
                    queue.remove(waiter)
                except ValueError:
                    pass
            if not queue and self._queues.get(model_name) is queue:
                del self._queues[model_name]

    def _expire(self, waiter: asyncio.Future[Worker], model_name: str) -> None:
        if not waiter.done() and not self._ready:
            waiter.set_exception(
                ServerOverloaded(
                    f"No worker is ready to serve model {model_name!r} after "
                    f"{self._no_worker_timeout:g}s; retry later"
                )
            )

    def _wake(self, model_name: str) -> None:
        queue = self._queues.get(model_name)
        while queue:
            waiter = queue[0]
            if waiter.done():
                queue.popleft()
                continue
            worker = self._acquire(model_name)
            if worker is None:
                return
            queue.popleft()
            waiter.set_result(worker)

    # -- updates ---------------------------------------------------------------

    async def dispatch_update(
        self,
        model_update: ModelUpdateMessage,
        timeout: float | None = None,
        previous: ModelSettings | None = None,
    ) -> list[ModelResponseMessage]:
        """Send a load or unload to every attached worker and wait for all.

        Each worker gets a copy with a fresh id. A load that fails on any
        worker, or takes longer than `timeout` seconds there, is rolled back
        on the workers where it succeeded, and `ModelLoadError` names the
        worker and the cause: a model is loaded on all workers or none. For
        a reload, `previous` are the settings that were serving: the rollback
        loads them again instead of unloading, so the model keeps serving.
        A failed unload raises the first error once every worker has replied.
        """
        async with self.update_lock:
            workers = list(self._attached.values())
            updates = [model_update.copy_with_new_id() for _ in workers]
            results = await asyncio.gather(
                *(
                    self._send_update(worker, update, timeout)
                    for worker, update in zip(workers, updates)
                ),
                return_exceptions=True,
            )

            failures = [
                (worker, result)
                for worker, result in zip(workers, results)
                if isinstance(result, BaseException)
            ]
            settings = model_update.model_settings
            if model_update.update_type == ModelUpdateType.Load:
                if failures:
                    await self._roll_back_load(model_update, workers, results, previous)
                    worker, cause = failures[0]
                    outcome = (
                        "the previous version keeps serving"
                        if previous is not None
                        else "it was unloaded from the other workers"
                    )
                    raise ModelLoadError(
                        f"Model {settings.name!r} failed to load on worker {worker.pid}: "
                        f"{_describe(cause)}; {outcome}"
                    ) from cause
                self._limits[settings.name] = _ModelLimits(
                    settings.max_concurrency or self._default_limits.max_concurrency,
                    settings.max_queue_size
                    if settings.max_queue_size is not None
                    else self._default_limits.max_queue_size,
                )
            else:
                self._forget_model(settings.name)
                if failures:
                    raise failures[0][1]
            return [r for r in results if isinstance(r, ModelResponseMessage)]

    async def dispatch_update_to_worker(
        self,
        worker: Worker,
        model_update: ModelUpdateMessage,
        timeout: float | None = None,
    ) -> ModelResponseMessage:
        """Send one update to one worker, under a fresh id, and wait for it.

        Raises what the worker raised, `WorkerStop` if it dies, or
        `TimeoutError` after `timeout` seconds.
        """
        return await self._send_update(worker, model_update.copy_with_new_id(), timeout)

    async def _send_update(
        self, worker: Worker, update: ModelUpdateMessage, timeout: float | None
    ) -> ModelResponseMessage:
        try:
            return await self._responses.send_and_wait(update, worker, timeout)
        except asyncio.TimeoutError:
            self._mark_overdue(worker, update.id, None)
            raise TimeoutError(
                f"{update.update_type.name} of model {update.model_settings.name!r} "
                f"timed out after {timeout}s on worker {worker.pid}"
            ) from None

    async def _roll_back_load(
        self,
        model_update: ModelUpdateMessage,
        workers: list[Worker],
        results: list[Any],
        previous: ModelSettings | None = None,
    ) -> None:
        if previous is not None:
            undo = ModelUpdateMessage(ModelUpdateType.Load, previous)
        else:
            undo = ModelUpdateMessage(
                ModelUpdateType.Unload, model_update.model_settings
            )
        succeeded = [
            w for w, r in zip(workers, results) if not isinstance(r, BaseException)
        ]
        outcomes = await asyncio.gather(
            *(self.dispatch_update_to_worker(w, undo, timeout=30.0) for w in succeeded),
            return_exceptions=True,
        )
        for worker, outcome in zip(succeeded, outcomes):
            if isinstance(outcome, BaseException):
                logger.error(
                    "Rolling back the load of model %r failed on worker %d: %s",
                    model_update.model_settings.name,
                    worker.pid,
                    _describe(outcome),
                )

    def _forget_model(self, model_name: str) -> None:
        self._limits.pop(model_name, None)
        queue = self._queues.pop(model_name, None)
        for waiter in queue or ():
            if not waiter.done():
                waiter.set_exception(ModelNotFound(model_name))

    # -- introspection ---------------------------------------------------------

    def statistics(self) -> DispatcherStatistics:
        return DispatcherStatistics(
            workers=len(self._attached),
            ready_workers=len(self._ready),
            in_flight={pid: self._responses.in_flight(pid) for pid in self._attached},
            queued={name: len(q) for name, q in self._queues.items() if q},
            outstanding=len(self._responses),
            overdue=len(self._overdue),
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InferpoolError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
