"""Messages between the front end and its worker processes.

Each message carries a unique id; a response carries the id of its request,
which is how the dispatcher matches it to the waiting caller. Messages are
plain slotted classes because they are pickled on every request: pickle
handles slots quickly and needs no schema.
"""

from __future__ import annotations

import enum
import itertools
import os
from typing import Any

from ..settings import ModelSettings

# Ids are unique within the front-end process: a per-process prefix keeps
# them apart from ids that a worker might mint, and a counter is cheaper than
# uuid4 on the hot path.
_id_prefix = f"{os.getpid():x}-"
_id_counter = itertools.count(1)


def new_message_id() -> str:
    return _id_prefix + str(next(_id_counter))


class Message:
    __slots__ = ("id",)

    def __init__(self, id: str | None = None) -> None:
        self.id = id if id is not None else new_message_id()


class ModelRequestMessage(Message):
    """A call of one model method in a worker: `model.<method_name>(*args)`."""

    __slots__ = (
        "model_name",
        "model_version",
        "method_name",
        "method_args",
        "method_kwargs",
    )

    def __init__(
        self,
        model_name: str,
        model_version: str | None,
        method_name: str,
        method_args: tuple[Any, ...] | list[Any] = (),
        method_kwargs: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id)
        self.model_name = model_name
        self.model_version = model_version
        self.method_name = method_name
        self.method_args = method_args
        self.method_kwargs = method_kwargs or {}

    def __repr__(self) -> str:
        return (
            f"ModelRequestMessage(id={self.id!r}, model={self.model_name!r}, "
            f"version={self.model_version!r}, method={self.method_name!r})"
        )


class ExceptionInfo:
    """An exception raised in a worker, in a form that always pickles.

    `pickled` is the exception itself, pickled in the worker when that
    worked. The front end unpickles it if it can, and otherwise raises
    `ModelError` built from the class's import path and message.
    """

    __slots__ = ("type_path", "message", "pickled", "traceback")

    def __init__(
        self, type_path: str, message: str, pickled: bytes | None, traceback: str
    ) -> None:
        self.type_path = type_path
        self.message = message
        self.pickled = pickled
        self.traceback = traceback

    def __repr__(self) -> str:
        return f"ExceptionInfo({self.type_path!r}, {self.message!r})"


class ModelResponseMessage(Message):
    """The outcome of a request or update: a return value or an exception."""

    __slots__ = ("return_value", "exception")

    def __init__(
        self,
        id: str,
        return_value: Any = None,
        exception: BaseException | ExceptionInfo | None = None,
    ) -> None:
        super().__init__(id)
        self.return_value = return_value
        self.exception = exception

    def __repr__(self) -> str:
        outcome = f"exception={self.exception!r}" if self.exception else "ok"
        return f"ModelResponseMessage(id={self.id!r}, {outcome})"


class ModelUpdateType(enum.IntEnum):
    Load = 1
    Unload = 2


class ModelUpdateMessage(Message):
    """Load or unload a model in a worker."""

    __slots__ = ("update_type", "model_settings")

    def __init__(
        self,
        update_type: ModelUpdateType,
        model_settings: ModelSettings,
        id: str | None = None,
    ) -> None:
        super().__init__(id)
        self.update_type = update_type
        self.model_settings = model_settings

    def copy_with_new_id(self) -> ModelUpdateMessage:
        """Return the same update under a fresh id, for one more worker."""
        return ModelUpdateMessage(self.update_type, self.model_settings)

    def __repr__(self) -> str:
        return (
            f"ModelUpdateMessage(id={self.id!r}, {self.update_type.name}, "
            f"model={self.model_settings.name!r}, version={self.model_settings.version!r})"
        )


class WorkerReadyMessage(Message):
    """Sent once by a worker when its event loop is up and it reads messages."""

    __slots__ = ("pid",)

    def __init__(self, pid: int) -> None:
        super().__init__("ready")
        self.pid = pid


class CancelMessage(Message):
    """Ask a worker to cancel the task serving request `id`, whose caller
    gave up; the worker sends no response for it."""

    __slots__ = ()
