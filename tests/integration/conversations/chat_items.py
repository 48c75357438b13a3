"""ChatKit thread items written the way the chat function writes them, for the REST-view checks."""

from __future__ import annotations

from datetime import datetime

from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    EndOfTurnItem,
    HiddenContextItem,
    InferenceOptions,
    ThreadItem,
    UserMessageItem,
    UserMessageTextContent,
)
from chatkit_backend.ids import new_id
from chatkit_backend.tool_calls import ToolCallRecord


def user_message(thread_id: str, text: str, at: datetime) -> UserMessageItem:
    return UserMessageItem(
        id=new_id("message"),
        thread_id=thread_id,
        created_at=at,
        content=[UserMessageTextContent(text=text)],
        inference_options=InferenceOptions(),
    )


def assistant_message(thread_id: str, text: str, at: datetime) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=new_id("message"),
        thread_id=thread_id,
        created_at=at,
        content=[AssistantMessageContent(text=text)],
    )


def tool_call(thread_id: str, record: ToolCallRecord, at: datetime) -> HiddenContextItem:
    """A finished server tool call, stored the way the chat function stores it."""
    return HiddenContextItem(
        id=new_id("sdk_hidden_context"),
        thread_id=thread_id,
        created_at=at,
        content=record.model_dump(mode="json"),
    )


def end_of_turn(thread_id: str, at: datetime) -> ThreadItem:
    """An item the REST view does not show (no role)."""
    return EndOfTurnItem(id=new_id("message"), thread_id=thread_id, created_at=at)
