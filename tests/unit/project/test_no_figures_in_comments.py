"""No docstring or comment of the shipped code quotes a timing or a size: such figures go stale.

Measured figures live in ``bench/results/`` (written by the bench) and the documents show them
through generated sections (``scripts/generated_sections.py``). Only comments and docstrings are
checked: settings defaults and real constants in code are fine.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

SHIPPED = ("functions", "layers", "dev", "scripts")

UNITS = r"ms|µs|us|ns|secs?|seconds?|minutes?|mins?|hours?|MiB|MB|KiB|KB|kB|GiB|GB|bytes?"
FIGURE = re.compile(
    rf"(?<![\w.])\d[\d,.]*(?:\s?(?:{UNITS})|\s(?:s|B))(?![\w-])"
    r"|\b(?:half a|a quarter of a|a tenth of a) second\b",
    re.IGNORECASE,
)

# Being rewritten by other branches of issue 17 (they remove these figures); the lead drops
# each entry at merge.
KNOWN_EXCEPTIONS: set[str] = set()


def comments_and_docstrings(source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every comment and every module, class and function docstring."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        # Every bare string statement: the docstring and attribute docstrings alike.
        for statement in node.body:
            if (
                isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            ):
                for offset, line in enumerate(statement.value.value.splitlines()):
                    yield statement.lineno + offset, line


def figures_in(source: str) -> list[str]:
    return [
        f"{line}: {match.group(0)!r} in {text.strip()!r}"
        for line, text in comments_and_docstrings(source)
        for match in FIGURE.finditer(text)
    ]


def shipped_files() -> list[Path]:
    return sorted(
        path
        for folder in SHIPPED
        for path in (REPO_ROOT / folder).rglob("*.py")
        if ".aws-sam" not in path.parts and "node_modules" not in path.parts
    )


@pytest.mark.parametrize(
    "source",
    [
        '"""Costs about 0.3 s of import."""',
        "x = 1  # 4.0 ms per request",
        'def f():\n    """Fast:\n\n    48 ms once."""',
        '"""Sizes: 133 MiB with both layers."""',
        'LIMIT = 5\n"""Keeps it under 4 KB."""',
        "# waits about 15 seconds",
        '"""the tracer costs half a second"""',
    ],
)
def test_the_check_finds_a_figure(source: str) -> None:
    assert figures_in(source)


@pytest.mark.parametrize(
    "source",
    [
        "TIMEOUT_SECONDS = 180.0  # the chat function's timeout in template.yaml",
        '"""HTTP 500s carry no CORS headers."""',
        '"""Python 3.12, HS256, gen 2, OAuth 2.0, 64 levels deep."""',
        'MAX_BYTES = 1_000_000\nLABEL = "100 ms"',
    ],
)
def test_the_check_leaves_code_and_non_figures_alone(source: str) -> None:
    assert figures_in(source) == []


def test_no_comment_or_docstring_of_shipped_code_quotes_a_timing_or_size() -> None:
    found = {
        relative: hits
        for path in shipped_files()
        if (relative := path.relative_to(REPO_ROOT).as_posix()) not in KNOWN_EXCEPTIONS
        and (hits := figures_in(path.read_text()))
    }
    assert found == {}, "figures go stale: say what and why, the bench measures how much"


def test_known_exceptions_still_exist() -> None:
    """An exception for a file that is gone (or clean) is dropped, not kept forever."""
    for relative in KNOWN_EXCEPTIONS:
        path = REPO_ROOT / relative
        if path.exists():
            assert figures_in(path.read_text()), f"{relative} is clean: drop its exception"
