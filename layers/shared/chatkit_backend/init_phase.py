"""The init phase of a sandbox runs with Python's cyclic garbage collector paused.

Importing a function's libraries builds a large heap of objects that live as long as the
sandbox (modules, classes, pydantic schemas) and almost no cyclic garbage. With the collector on,
young collections start every few hundred net allocations, and as the heap grows full
collections walk all of it again and again: a sizeable share of a cold start (measure it with
``python -m bench.cold_start``), spent finding nothing.

So an entry point pauses the collector first thing (:func:`pause_collector`) and, once init is
done, :func:`end_init_phase` freezes what init built (``gc.freeze``: moved to the permanent
generation, so the full collections of warm requests no longer walk it either) and resumes the
collector. The garbage init left (kilobytes) stays with the frozen objects; SnapStart's
before-snapshot hook, paid once per version, collects it (:func:`collect_before_snapshot`).

This module imports nothing heavy at load: entry points import it before anything else.
Only entry points call :func:`pause_collector` (``chat_app.__main__`` and
``conversations_app.handler``), never a module that tests or tools import for its contents, and
:func:`end_init_phase` touches a process only when :func:`pause_collector` paused it.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_paused_by_us = False
_froze_init = False


def pause_collector() -> None:
    """Pause the collector for the init phase (kept off if something else already turned it off)."""
    global _paused_by_us
    if gc.isenabled():
        gc.disable()
        _paused_by_us = True


def end_init_phase() -> None:
    """Freeze what init built and resume the collector paused by :func:`pause_collector`."""
    global _paused_by_us, _froze_init
    if _paused_by_us:
        gc.freeze()
        gc.enable()
        _paused_by_us = False
        _froze_init = True


@contextmanager
def init_phase() -> Iterator[None]:
    """The block is the init phase: the collector pauses until it ends, even if it raises."""
    pause_collector()
    try:
        yield
    finally:
        end_init_phase()


def complete_models(module_prefixes: tuple[str, ...]) -> int:
    """Build the pydantic models whose schema was deferred; returns how many were completed.

    A model whose annotations name a class defined later (``chatkit.types``, ``openai.types``,
    ``mcp_types`` have hundreds) gets a placeholder validator and builds its real one on first
    use, and a ``TypeAdapter`` over such a model regenerates its schema every time it is created.
    The chat function completes ``chatkit.types`` at init (the SDK creates a ``TypeAdapter`` of
    the request union per request, so a warm ``threads.list`` would pay the schemas every time,
    while completing them costs once); SnapStart's before-snapshot hook completes the rest (those
    a first turn uses) so that the snapshot holds them. Generic models left with open type
    parameters are skipped (they are built per use).
    """
    from pydantic import BaseModel  # here: entry points import this module before anything heavy

    completed = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(module_prefixes):
            continue
        for value in list(vars(module).values()):
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value is not BaseModel
                and not value.__pydantic_complete__
                and not getattr(value, "__pydantic_generic_metadata__", {}).get("parameters")
            ):
                value.model_rebuild(raise_errors=False)
                completed += value.__pydantic_complete__
    return completed


def collect_before_snapshot() -> None:
    """A full collection before SnapStart's snapshot (its hook is paid once per version): the
    snapshot keeps no garbage. A heap that :func:`end_init_phase` froze is collected whole and
    frozen again; any other process just gets a full collection."""
    if _froze_init:
        gc.unfreeze()
    gc.collect()
    if _froze_init:
        gc.freeze()
