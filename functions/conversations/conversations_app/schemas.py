"""The conversations API's wire shapes: what the routes take and return (and OpenAPI documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from chatkit_backend.tables import MessageRole
from chatkit_backend.titles import Title
from pydantic import BaseModel, ConfigDict, Field


class Conversation(BaseModel):
    """One conversation as listed: no messages."""

    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime


class ToolCall(BaseModel):
    """A server or client tool call, as projected by the store from the thread item."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = Field(default=None, exclude_if=lambda value: value is None)


class MessageAttachment(BaseModel):
    """A file or image the user sent with a message; an image has a signed, expiring preview."""

    id: str
    name: str
    mime_type: str
    size: int
    preview_url: str | None = Field(default=None, exclude_if=lambda value: value is None)


class Message(BaseModel):
    """One message; ``tool_calls`` is present only on ``role="tool"`` messages, ``widget`` only
    on ``role="widget"`` ones (whose ``content`` says in words what the widget shows),
    ``attachments`` only on user messages that have some."""

    id: str
    role: MessageRole
    content: str
    created_at: datetime
    tool_calls: list[ToolCall] | None = Field(default=None, exclude_if=lambda value: value is None)
    widget: dict[str, Any] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The ChatKit widget (a `Card`, `ListView` or `Basic` root) as JSON.",
    )
    attachments: list[MessageAttachment] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )


class ConversationPage(BaseModel):
    conversations: list[Conversation]
    next_cursor: str | None = Field(
        description="Pass as `after` to get the next page; null on the last page."
    )


class MessagePage(BaseModel):
    messages: list[Message]
    next_cursor: str | None = Field(
        description="Pass as `after` to get the next page; null on the last page."
    )


class ConversationWithMessages(Conversation):
    """A conversation with the first page of its messages, oldest first."""

    messages: list[Message]
    next_cursor: str | None = Field(
        description="More messages: pass as `after` to the messages route; null when complete."
    )


class CreateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None


class RenameConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title


class DeletedConversation(BaseModel):
    status: Literal["deleted"] = "deleted"
    id: str


class ErasedAccount(BaseModel):
    """What ``DELETE /api/me`` removed: rows per table (attachment bytes included beforehand)."""

    status: Literal["erased"] = "erased"
    deleted: dict[str, int] = Field(description="Rows deleted, per table.")


class AccountExport(BaseModel):
    """Everything stored for the caller (GDPR Article 20): every row of every user table."""

    user_id: str
    exported_at: datetime
    tables: dict[str, list[dict[str, Any]]] = Field(
        description="Rows per table (conversations, their items, attachments, tasks, ...), "
        "all columns, in creation order."
    )


class ErrorBody(BaseModel):
    detail: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[ValidationErrorItem]


class Health(BaseModel):
    status: str = "ok"
