"""The state store's expected failure, as the face shows it: one line naming the stage and the kind of error."""

from __future__ import annotations


class StoreError(Exception):
    """A database error during stage ``stage`` of a pass, or while opening the store (``kind``: the error's class,
    e.g. ``OperationalError``).

    The message carries neither the statement nor its parameters (those can hold buyers' emails); the original error
    is the ``__cause__``, logged with its traceback at debug level.
    """

    def __init__(self, stage: str, kind: str) -> None:
        self.stage = stage
        self.kind = kind
        super().__init__(f"state store error during {stage}: {kind}")
