"""The model's answer made into a title: one line, unwrapped, bounded; nothing usable is None."""

from __future__ import annotations

import pytest
from chat_app.titling import GENERATED_TITLE_MAX_CHARS, clean_title


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ("Garden party plans", "Garden party plans"),
        ('  "Garden party plans."\n', "Garden party plans"),
        ("Title: **Garden   party**\nSecond line", "Garden party"),
        ("\u201cQuoted\u201d!", "Quoted"),
        ("", None),
        ('  ""  ', None),
    ],
)
def test_answers_become_titles(answer: str, title: str | None) -> None:
    assert clean_title(answer) == title


def test_a_long_answer_is_cut_at_a_word() -> None:
    title = clean_title("word " * 40)
    assert title is not None
    assert title.endswith("…")
    assert len(title) <= GENERATED_TITLE_MAX_CHARS + 1
    assert "wor…" not in title
