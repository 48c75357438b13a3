"""The documents hold together: their links resolve, the paths they name exist, and no
benchmark figure is copied by hand (figures live in ``bench/results/`` and reach a document
only through a generated section)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from scripts.generated_sections import DOCUMENTS, MARKED
from tests.support.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
FRONT_DOOR_LINES = 350
"""The README is a front door: runbooks go to docs/, the benchmark narrative to bench/README.md."""

LINK = re.compile(r"\]\((?!https?:|mailto:)(?P<target>[^)\s]+)\)")
FIGURE = re.compile(r"(?<![\w.$])\d[\d,.]*\s?(?:ms|µs|s|seconds?|minutes?|min|MiB|MB|GiB|GB)\b")
GOALS_AND_LIMITS = {
    "250 MiB",  # Lambda's unzipped size limit
    "150 MiB",  # the size goal
    "250 ms",  # the quick bench's SnapStart failure threshold
    "50 ms",  # the SnapStart restore path goal
    "1.8 s",  # the chat cold start goal
    "0.65 s",  # the conversations cold start goal
    "300 s",  # the migration function's timeout
    "512 MB",  # SnapStart's ephemeral storage limit
    "2 GB",  # the chat function's memory
    "15 min",  # how long the database stack takes to create
    "15 s",  # Aurora's resume after a pause
}
"""Numbers with units that are not measurements of this code: goals, limits, AWS facts."""

REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:tests|scripts|layers|functions|bench|dev|docs|infra|migrations|events|examples)"
    r"/[\w./-]*\w\.(?:py|md|sh|json|yaml|toml|txt|png))\b"
)
OUTPUTS = ("bench/out/",)
"""Paths the tools write (ignored by git), named in the documents on purpose."""


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    return {
        slug(line.lstrip("#")) for line in document.read_text().splitlines() if line.startswith("#")
    }


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_local_link_resolves(document: Path) -> None:
    broken = []
    for match in LINK.finditer(document.read_text()):
        target, _, anchor = match.group("target").partition("#")
        path = (document.parent / target).resolve() if target else document
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(match.group("target"))
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_no_figure_is_copied_by_hand(document: Path) -> None:
    text = MARKED.sub("", document.read_text())
    copied = {match.group(0) for match in FIGURE.finditer(text)} - GOALS_AND_LIMITS
    assert copied == set(), "show figures through a generated section (scripts/figures.py)"


def test_the_readme_is_a_front_door_linking_the_rest() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= FRONT_DOOR_LINES, "move the detail to docs/ or bench/README.md"
    for target in (
        "docs/deploy.md",
        "docs/operations.md",
        "bench/README.md",
        "bench/results/latest.md",
    ):
        assert f"]({target}" in text


def test_every_repository_path_named_in_docs_and_code_exists() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.yaml", "*.toml", "*.sh", "Makefile"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    missing = [
        f"{name}:{number}: {match.group(1)}"
        for name in tracked
        if (REPO_ROOT / name).is_file()
        for number, line in enumerate((REPO_ROOT / name).read_text().splitlines(), 1)
        for match in REPO_PATH.finditer(line)
        if not match.group(1).startswith(OUTPUTS) and not (REPO_ROOT / match.group(1)).exists()
    ]
    assert missing == []
