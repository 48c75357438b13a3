"""Gap 7: **``DeletionPolicy: RetainExceptOnCreate`` is unknown**.

Upstream, moto keeps only ``Retain`` resources when a stack is deleted, so it deletes
``RetainExceptOnCreate`` ones (the template's log groups). Here such resources are kept by a
stack delete and by an update that drops them, and deleted when the create that made them rolls
back. moto's ``ResourceMap`` methods are replaced whole by gaps 8 and 9, which ask
:func:`kept_policies` what to keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

KEPT = frozenset({"Retain", "RetainExceptOnCreate"})
"""What a stack delete or an update's cleanup keeps."""
KEPT_BY_CREATE_ROLLBACK = frozenset({"Retain"})


def kept_policies(resource_map: Any) -> frozenset[str]:
    """The ``DeletionPolicy`` values whose resources the current delete of ``resource_map``
    keeps."""
    rolling_back = getattr(resource_map, "emulated_create_rollback", False)
    return KEPT_BY_CREATE_ROLLBACK if rolling_back else KEPT


@contextmanager
def create_rolling_back(resource_map: Any) -> Iterator[None]:
    """Deletes of ``resource_map`` in the block undo its stack's failed create."""
    resource_map.emulated_create_rollback = True
    try:
        yield
    finally:
        resource_map.emulated_create_rollback = False
