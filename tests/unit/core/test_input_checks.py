"""The one-pass scan of request bodies: what it refuses, what it lets through, and its cost."""

import json
import time

import pytest
from chatkit_backend.input_checks import (
    ENCODING_MESSAGE,
    MAX_JSON_DEPTH,
    NESTING_MESSAGE,
    NUL_MESSAGE,
    SURROGATE_MESSAGE,
    body_problem,
)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"message": "hi"}', None),
        (b'{"message": "a\\u0000b"}', NUL_MESSAGE),
        (b'{"message": "a\\\\u0000b"}', None),  # an escaped backslash, then plain text
        (b'{"message": "a\\\\\\u0000b"}', NUL_MESSAGE),
        (b'{"message": "\x00"}', NUL_MESSAGE),
        (b'{"message": "\\ud800"}', SURROGATE_MESSAGE),
        (b'{"message": "\\uDBFF!"}', SURROGATE_MESSAGE),
        (b'{"message": "\\udc00"}', SURROGATE_MESSAGE),
        (b'{"message": "\\ud83d\\ude00"}', None),
        (b'{"message": "\\uD83D\\uDE00 then \\uDE00"}', SURROGATE_MESSAGE),
        (b'{"message": "\\\\ud800"}', None),
        (b'{"m": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', None),
        (b'{"a": "\\"[[[["}', None),
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, None),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), NESTING_MESSAGE),
        (b'{"a": ' * (MAX_JSON_DEPTH + 1), NESTING_MESSAGE),
        (b"\xff", ENCODING_MESSAGE),
        (b'"\xed\xa0\x80"', ENCODING_MESSAGE),  # a surrogate encoded as UTF-8 bytes
    ],
)
def test_body_problem(body: bytes, problem: str | None) -> None:
    assert body_problem(body) == problem


def test_a_problem_free_body_parses() -> None:
    body = json.dumps({"items": [[{"a": [1, 2]}] for _ in range(100)], "s": "\\u0041"}).encode()
    assert body_problem(body) is None
    json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"m": [[] for _ in range(150_000)], "s": "x" * 400_000}).encode(),
        b"[" * 1_000_000,
        b'"' + b"\\\\" * 400_000 + b'"',
        b'"' + b"\\ud83d\\ude00" * 80_000 + b'"',
    ],
    ids=["many-arrays", "deep", "backslashes", "escapes"],
)
def test_a_megabyte_is_scanned_in_linear_time(body: bytes) -> None:
    """A bound, not a benchmark: quadratic behaviour would take minutes here."""
    started = time.perf_counter()
    body_problem(body)
    assert time.perf_counter() - started < 5
