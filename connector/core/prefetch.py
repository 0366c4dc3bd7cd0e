"""Read ahead: fetch the next page from the shop while the current one is being stored.

The shop's answer time and the state store's write time overlap instead of adding up. Pages are still handed over,
and their cursors committed, strictly in order; a crash loses at most the page read ahead, which was never committed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``pages`` in a worker thread, at most ``depth`` pages ahead; errors surface in the caller's thread."""
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        buffer.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as error:
            buffer.put(error)

    worker = threading.Thread(target=work, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)
