"""ToolCallRecord: the stored shape of a tool call and the result clients read."""

from __future__ import annotations

from typing import Any

import pytest
from chatkit_backend.tool_calls import ToolCallRecord


def record(output: Any) -> ToolCallRecord:
    return ToolCallRecord(call_id="c1", name="list_tasks", output=output)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            [{"type": "input_text", "text": '{"id": 1, "title": "milk"}'}],
            {"id": 1, "title": "milk"},
        ),
        ([{"type": "input_text", "text": "[1, "}, {"type": "input_text", "text": "2]"}], [1, 2]),
        ([{"type": "input_text", "text": "plain words"}], "plain words"),
        ('{"ok": true}', {"ok": True}),
        ("not json", "not json"),
        ({"already": "structured"}, {"already": "structured"}),
        ([{"type": "input_image", "image_url": "x"}], [{"type": "input_image", "image_url": "x"}]),
        (None, None),
    ],
)
def test_result_decodes_text_parts_and_json(output: Any, expected: Any) -> None:
    assert record(output).result() == expected


def test_result_leaves_the_stored_output_as_the_model_saw_it() -> None:
    parts = [{"type": "input_text", "text": '{"id": 1}'}]
    stored = record(parts)
    stored.result()
    assert stored.output == parts


def test_parse_only_accepts_tool_call_content() -> None:
    assert ToolCallRecord.parse({"type": "tool_call", "call_id": "c", "name": "n"}) is not None
    assert ToolCallRecord.parse("some hidden text") is None
    assert ToolCallRecord.parse({"type": "other"}) is None
