"""What the model gets from a thread's history, and the thread title."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from chat_app.attachments import ModelAttachments
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


async def test_a_message_of_plain_text_is_one_string_and_quoted_text_keeps_the_sdks_form() -> None:
    plain = await ToolCallConverter().to_agent_input([user_message("Just words")])
    assert plain == [{"type": "message", "role": "user", "content": "Just words"}]

    quoted = await ToolCallConverter().to_agent_input(
        [user_message("This one", quoted_text="an earlier answer")]
    )
    assert [item["content"][0]["text"] for item in quoted] == [  # type: ignore[index,typeddict-item]
        "This one",
        "The user is referring to this in particular: \nan earlier answer",
    ]


async def test_attachments_without_bytes_this_turn_are_described_by_name() -> None:
    attachment = FileAttachment(
        id="atc_1", name="cv.pdf", mime_type="application/pdf", metadata={"size": 2048}
    )

    converted = await ToolCallConverter().to_agent_input(
        [user_message("Read this", attachments=[attachment])]
    )

    parts: Any = converted[0]["content"]  # type: ignore[typeddict-item]
    assert parts[0] == {"type": "input_text", "text": "Read this"}
    assert parts[1] == {
        "type": "input_text",
        "text": '[Earlier attachment "cv.pdf" (application/pdf, 2.0 kB): shown with that '
        "message, not repeated here]",
    }
    assert len(parts) == 2


async def test_attachments_with_bytes_become_parts_of_their_kind() -> None:
    pdf = FileAttachment(id="atc_1", name="cv.pdf", mime_type="application/pdf")
    text = FileAttachment(id="atc_2", name="a.md", mime_type="text/markdown")
    old = FileAttachment(id="atc_3", name="old.txt", mime_type="text/plain")
    attachments = ModelAttachments({"atc_1": b"%PDF", "atc_2": b"# Title"}, frozenset({"atc_3"}))

    converted = await ToolCallConverter(attachments).to_agent_input(
        [user_message("Read these", attachments=[pdf, text, old])]
    )

    parts: Any = converted[0]["content"]  # type: ignore[typeddict-item]
    assert [part["type"] for part in parts] == [
        "input_text",
        "input_text",
        "input_file",
        "input_text",
        "input_text",
    ]
    assert parts[2] == {
        "type": "input_file",
        "file_data": "data:application/pdf;base64,JVBERg==",
        "filename": "cv.pdf",
    }
    assert parts[3]["text"].endswith("]\n# Title")
    assert "contents are not available" in parts[4]["text"]


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
