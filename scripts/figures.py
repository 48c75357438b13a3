"""Benchmark figures for the documents, rendered from ``bench/results/latest.json`` only.

The bench writes its results there (``python -m bench``); the documents never copy a figure by
hand: they hold sections that :mod:`scripts.generated_sections` fills from these functions, and a
test fails when a section differs from what the committed results give.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import Row, figure

ROOT = Path(__file__).resolve().parents[1]
LATEST = ROOT / "bench" / "results" / "latest.json"
TURN_OVERHEAD = ROOT / "bench" / "results" / "turn_overhead.json"
"""Issue 23's record: the turn's own cost, this code next to the code before it and a bare relay
(``python -m bench.turn_report``)."""

SUMMARY = (
    ("1.", "first-delta delay p50"),
    ("2b.", "list, first page (20): p50"),
    ("2.", "20,000 conversations: page 1000, cursor"),
    ("3.", "SQL statements, 2,000-token answer"),
    ("4.", "chat: import + init + 1st request"),
    ("4.", "conversations: import + init + 1st request"),
    ("7.", "chat: after-restore hook + 1st request"),
    ("5.", "Chat"),
    ("6.", "wall time, all at once"),
)
"""The key figures of the README's summary: (section number, measure) of rows of the results."""


TURN_SUMMARY = ("8.", "request -> model request p50, 50 messages")
"""The README summary's row from :data:`TURN_OVERHEAD` (its own run, linked)."""


def latest(source: Path | None = None) -> dict[str, Any]:
    """The results in ``source`` (default: :data:`LATEST`)."""
    return json.loads((source or LATEST).read_text())


def rows(results: dict[str, Any]) -> list[Row]:
    fields = Row.__dataclass_fields__
    return [
        Row(**{key: value for key, value in row.items() if key in fields})
        for row in results["rows"]
    ]


def pick(results: dict[str, Any], number: str, measure: str) -> Row:
    for row in rows(results):
        if row.section.startswith(number + " ") and row.measure == measure:
            return row
    raise LookupError(f"no row {number} {measure!r} in the results: update scripts/figures.py")


def provenance(results: dict[str, Any], link: str) -> str:
    machine = results["machine"]
    return (
        f"Latest full run (`{results['command']}`, {results['started']}, {machine['cpu']}, "
        f"{machine['cores']} cores, Python {machine['python']}, PostgreSQL "
        f"{machine['postgresql'].split()[0]}); every figure, with the machine's load, in "
        f"[latest.md]({link})."
    )


def summary_table(link: str = "bench/results/latest.md") -> str:
    """The README's performance summary: a handful of figures, each next to its baseline."""
    results = latest()
    lines = ["| benchmark | figure | value | baseline |", "|---|---|---:|---|"]
    for number, measure in SUMMARY:
        row = pick(results, number, measure)
        lines.append(
            f"| {row.section} | {row.measure} | {figure(row.value, row.unit)} | "
            f"{row.baseline_name}: {figure(row.baseline, row.unit)} |"
        )
    turn = pick(latest(TURN_OVERHEAD), *TURN_SUMMARY)
    record = "[turn_overhead.md](bench/results/turn_overhead.md)"
    lines.append(
        f"| {turn.section} | {turn.measure} ({record}) | {figure(turn.value, turn.unit)} | "
        f"{turn.baseline_name}: {figure(turn.baseline, turn.unit)} |"
    )
    return "\n".join([provenance(results, link), "", *lines])


def section_table(
    *numbers: str, link: str = "results/latest.md", source: Path | None = None
) -> str:
    """The rows of the given sections of the results, with their baselines and notes."""
    results = latest(source)
    lines = ["| benchmark | figure | value | baseline | notes |", "|---|---|---:|---|---|"]
    for row in rows(results):
        if row.section.split(" ", 1)[0].rstrip(".") in numbers:
            lines.append(
                f"| {row.section} | {row.measure} | {figure(row.value, row.unit)} | "
                f"{row.baseline_name}: {figure(row.baseline, row.unit)} | {row.note} |"
            )
    return "\n".join([provenance(results, link), "", *lines])
