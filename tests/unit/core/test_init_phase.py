"""The init phase's garbage-collector policy (:mod:`chatkit_backend.init_phase`).

The collector is process-wide, so every test restores it: enabled as before, its own freezing
undone. Counts are relative to ``frozen_before``: CPython 3.12 keeps a few hundred objects of its
own in the permanent generation (immortal ones, moved there by a full collection).
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from chatkit_backend import init_phase


@pytest.fixture(autouse=True)
def frozen_before() -> Iterator[int]:
    """The permanent generation's size before the test (restored to at most that after it)."""
    enabled = gc.isenabled()
    gc.collect()  # CPython's own objects settle in the permanent generation first
    before = gc.get_freeze_count()
    yield before
    init_phase._paused_by_us = init_phase._froze_init = False
    if gc.get_freeze_count() > before:
        gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


class Cycle:
    """An object that only the cyclic collector can free."""

    def __init__(self) -> None:
        self.me = self


def test_pause_then_end_freezes_what_init_built_and_resumes(frozen_before: int) -> None:
    gc.enable()
    init_phase.pause_collector()
    assert not gc.isenabled()
    built = [Cycle() for _ in range(1_000)]  # what imports and init create
    init_phase.end_init_phase()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(built)
    assert all(not gc.is_finalized(obj) for obj in built)


def test_end_without_a_pause_leaves_the_process_alone(frozen_before: int) -> None:
    gc.enable()
    init_phase.end_init_phase()  # a test or the dev server: nobody paused
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen_before


def test_a_collector_turned_off_by_someone_else_stays_off(frozen_before: int) -> None:
    gc.disable()
    init_phase.pause_collector()
    init_phase.end_init_phase()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == frozen_before


def test_the_collector_resumes_when_init_raises(frozen_before: int) -> None:
    gc.enable()
    paused_inside = []

    def failing_init() -> None:
        with init_phase.init_phase():
            paused_inside.append(not gc.isenabled())
            raise RuntimeError("no JWT settings")

    with pytest.raises(RuntimeError, match="no JWT settings"):
        failing_init()
    assert paused_inside == [True]
    assert gc.isenabled()


def test_snapshot_collection_frees_frozen_garbage_and_freezes_again(frozen_before: int) -> None:
    gc.enable()
    init_phase.pause_collector()
    survivor = Cycle()
    garbage = weakref.ref(Cycle())  # what init left: unreachable, only the collector frees it
    init_phase.end_init_phase()
    gc.collect()  # an ordinary collection does not look at frozen objects
    assert garbage() is not None

    init_phase.collect_before_snapshot()
    assert garbage() is None
    assert gc.get_freeze_count() > frozen_before  # the live heap is frozen again
    assert survivor.me is survivor


def test_collect_before_snapshot_in_a_process_that_froze_nothing(frozen_before: int) -> None:
    gc.enable()
    garbage = weakref.ref(Cycle())
    init_phase.collect_before_snapshot()
    assert garbage() is None
    assert gc.get_freeze_count() == frozen_before
