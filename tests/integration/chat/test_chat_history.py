"""What the model gets from a thread's history, and the thread title."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from chat_app.server import ToolCallConverter, title_from
from chatkit.types import (
    FileAttachment,
    HiddenContextItem,
    InferenceOptions,
    UserMessageItem,
    UserMessageTextContent,
)
from chatkit_backend.tool_calls import ToolCallRecord

NOW = datetime(2026, 1, 1, 12, 0)


def hidden(content: Any) -> HiddenContextItem:
    return HiddenContextItem(id="tc_1", thread_id="thr_1", created_at=NOW, content=content)


def user_message(text: str, **fields: Any) -> UserMessageItem:
    return UserMessageItem(
        id="msg_1",
        thread_id="thr_1",
        created_at=NOW,
        content=[UserMessageTextContent(text=text)],
        inference_options=InferenceOptions(),
        **fields,
    )


@pytest.mark.parametrize(
    ("record", "model_saw"),
    [
        (
            ToolCallRecord(call_id="c1", name="add_task", arguments={"title": "x"}, output="ok"),
            "ok",
        ),
        (
            ToolCallRecord(
                call_id="c1",
                name="add_task",
                arguments={"title": "x"},
                output=[{"type": "input_text", "text": '{"id": 1}'}],
            ),
            [{"type": "input_text", "text": '{"id": 1}'}],
        ),
        (
            ToolCallRecord(call_id="c1", name="add_task", arguments={"title": "x"}, error="boom"),
            "Error: boom",
        ),
    ],
)
async def test_tool_records_replay_as_the_call_and_the_output_the_model_saw(
    record: ToolCallRecord, model_saw: Any
) -> None:
    converted = await ToolCallConverter().to_agent_input([hidden(record.model_dump(mode="json"))])

    assert converted == [
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "add_task",
            "arguments": '{"title": "x"}',
        },
        {"type": "function_call_output", "call_id": "c1", "output": model_saw},
    ]


async def test_other_hidden_context_is_text_or_skipped() -> None:
    converter = ToolCallConverter()

    assert "a note" in str(await converter.to_agent_input([hidden("a note")]))
    assert await converter.to_agent_input([hidden({"type": "something else"})]) == []


async def test_attachments_are_described_not_read() -> None:
    attachment = FileAttachment(id="atc_1", name="cv.pdf", mime_type="application/pdf")

    converted = await ToolCallConverter().to_agent_input(
        [user_message("Read this", attachments=[attachment])]
    )

    parts: Any = converted[0]["content"]  # type: ignore[typeddict-item]
    assert parts[0] == {"type": "input_text", "text": "Read this"}
    assert "'cv.pdf' (application/pdf)" in parts[1]["text"]


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Plan my week", "Plan my week"),
        ("  Plan\n\nmy   week  ", "Plan my week"),
        (
            "Could you please help me plan a three day trip to Lisbon with kids in spring",
            "Could you please help me plan a three day trip to Lisbon…",
        ),
        ("x" * 100, "x" * 59 + "…"),
        ("   ", "New conversation"),
    ],
)
def test_title_from_the_first_message(text: str, title: str) -> None:
    assert title_from(user_message(text)) == title
