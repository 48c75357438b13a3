"""ChatKit thread items written the way the chat function writes them, for the REST-view checks."""

from __future__ import annotations

from datetime import datetime

from chatkit.types import (
    AssistantMessageItem,
    EndOfTurnItem,
    HiddenContextItem,
    ThreadItem,
    UserMessageItem,
)
from chatkit_backend.ids import new_id
from chatkit_backend.tool_calls import ToolCallRecord

from tests.integration.core.store import store_samples as samples


def user_message(thread_id: str, text: str, at: datetime) -> UserMessageItem:
    return samples.user_message(thread_id, text, created_at=at)


def assistant_message(thread_id: str, text: str, at: datetime) -> AssistantMessageItem:
    return samples.assistant_message(thread_id, text, created_at=at)


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
