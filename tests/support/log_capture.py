"""The Powertools logger's output during a block, as text.

Its handler holds the stdout of the moment it was created, so the stream is swapped rather than
captured by pytest.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from chatkit_backend.observability import get_logger


@contextmanager
def captured_log() -> Iterator[io.StringIO]:
    """What the logger writes until the block ends (JSON lines)."""
    handler = get_logger().registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)
