"""Sections of the documents generated from their one source: the code or the bench results.

A section sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` lines; :data:`SECTIONS`
says what fills each one. ``tests/unit/project/test_generated_sections.py`` fails when a document
differs from what this gives, so the configuration table cannot drift from the Settings model and
no benchmark figure is copied by hand. Regenerate every document with ``make docs``
(``python -m scripts.generated_sections``; ``--check`` only reports).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from scripts import figures
from scripts.settings_table import settings_table

ROOT = Path(__file__).resolve().parents[1]

DOCUMENTS = (
    ROOT / "README.md",
    ROOT / "bench" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
)

SECTIONS: dict[str, Callable[[], str]] = {
    "settings-table": settings_table,
    "performance-summary": figures.summary_table,
    "bench-cold-start": partial(figures.section_table, "4", "7"),
    "turn-overhead": partial(
        figures.section_table,
        "8",
        "9",
        "10",
        "11",
        link="../bench/results/turn_overhead.md",
        source=figures.TURN_OVERHEAD,
    ),
}

MARKED = re.compile(
    r"(<!-- (?P<name>[\w-]+):start -->\n)(?P<body>.*?)(<!-- (?P=name):end -->)", re.S
)


def regenerate(text: str) -> str:
    """``text`` with every marked section rendered afresh; an unknown section name is an error."""

    def render(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in SECTIONS:
            raise KeyError(f"unknown generated section {name!r}: add it to SECTIONS")
        return match.group(1) + SECTIONS[name]().strip() + "\n" + match.group(4)

    return MARKED.sub(render, text)


def sections_in(text: str) -> list[str]:
    return [match.group("name") for match in MARKED.finditer(text)]


def stale_documents() -> list[Path]:
    return [path for path in DOCUMENTS if regenerate(text := path.read_text()) != text]


def main(argv: list[str]) -> int:
    stale = stale_documents()
    if "--check" in argv:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run make docs)")
        return 1 if stale else 0
    for path in stale:
        path.write_text(regenerate(path.read_text()))
        print(f"regenerated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
