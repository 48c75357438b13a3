"""Client input no entry point may accept: NUL, lone surrogates, deep nesting, non-UTF-8.

PostgreSQL cannot store NUL (``\\u0000``) and no UTF-8 codec can encode a lone surrogate
(``\\ud800``): left alone, either fails deep inside a write after a thread was created. Deeply
nested JSON makes every recursive walk (``json.loads`` included) raise ``RecursionError``. So
each request body is scanned once, as text and without recursion, before anything parses it
(``chatkit_backend.web.InputGuardMiddleware``); titles also pass :func:`reject_nul`.
"""

from __future__ import annotations

import re
from itertools import accumulate

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted; real requests stay under 10."""

NUL_MESSAGE = "Text must not contain NUL (\\u0000) characters"
SURROGATE_MESSAGE = "Text must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)"
NESTING_MESSAGE = f"JSON must not be nested deeper than {MAX_JSON_DEPTH} levels"
ENCODING_MESSAGE = "Request must be valid UTF-8"

# An escape counts only after an even number of backslashes (``\\\\u0000`` is text, not NUL).
_ESCAPE = r"(?<!\\)(?:\\\\)*\\u"
_NUL_ESCAPE = re.compile(_ESCAPE + "0000")
_SURROGATE_ESCAPES = re.compile(
    _ESCAPE + r"(?P<high>d[89ab][0-9a-f]{2})(?:\\u(?P<low>d[c-f][0-9a-f]{2}))?"
    "|" + _ESCAPE + r"(?P<lone_low>d[c-f][0-9a-f]{2})",
    re.IGNORECASE,
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def body_problem(body: bytes) -> str | None:
    """Why a request body (JSON text) is refused, or None. Linear time, no recursion."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ENCODING_MESSAGE
    return text_problem(text)


def text_problem(text: str) -> str | None:
    """:func:`body_problem` for decoded JSON text."""
    if "\x00" in text:
        return NUL_MESSAGE
    if "\\u" in text:  # the escape checks only for text that has escapes at all
        if _NUL_ESCAPE.search(text):
            return NUL_MESSAGE
        if any(m["lone_low"] or not m["low"] for m in _SURROGATE_ESCAPES.finditer(text)):
            return SURROGATE_MESSAGE
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return None
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    if brackets and max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))) > MAX_JSON_DEPTH:
        return NESTING_MESSAGE
    return None


def reject_nul(value: str) -> str:
    """A pydantic ``AfterValidator``: the value unchanged, or a ValueError naming the problem."""
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value
