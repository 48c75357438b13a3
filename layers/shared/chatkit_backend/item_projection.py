"""Plain columns derived from a ChatKit thread item, for the REST view of a conversation.

The item JSON stays the source of truth; these columns only exist so the conversations API can
list messages as ``role`` / ``content_text`` / ``tool_calls`` without understanding every ChatKit
item type. They are recomputed on every write, so they can never drift from ``data``.

* ``user_message`` -> ``user``, the concatenated ``input_text`` parts;
* ``assistant_message`` -> ``assistant``, the concatenated ``output_text`` parts;
* a ``HiddenContextItem`` holding a :class:`~chatkit_backend.tool_calls.ToolCallRecord` and a
  ``ClientToolCallItem`` -> ``tool``, a short text of the outcome and the call itself;
* a ``WidgetItem`` -> ``widget``, the widget's ``copy_text`` (what it shows, in words; the
  widget JSON itself stays in ``data`` for clients that render it);
* anything else (workflows, SDK bookkeeping, ...) has no role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chatkit.types import (
    AssistantMessageItem,
    ClientToolCallItem,
    HiddenContextItem,
    ThreadItem,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
)
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from .tables import MessageRole
from .tool_calls import ToolCallRecord

TOOL_TEXT_LIMIT = 500
"""Longest ``content_text`` of a tool row: a preview, the full output is in ``tool_calls``."""


@dataclass(frozen=True, slots=True)
class ItemProjection:
    """The query columns of one ``thread_items`` row."""

    role: MessageRole | None = None
    content_text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


def project_item(item: ThreadItem) -> ItemProjection:
    """The REST-view columns of ``item`` (all None for items the REST view does not show)."""
    match item:
        case UserMessageItem():
            text = "".join(
                part.text for part in item.content if isinstance(part, UserMessageTextContent)
            )
            return ItemProjection(role="user", content_text=text)
        case AssistantMessageItem():
            return ItemProjection(
                role="assistant", content_text="".join(part.text for part in item.content)
            )
        case ClientToolCallItem():
            return _tool_projection(
                call_id=item.call_id,
                name=item.name,
                arguments=item.arguments,
                output=item.output,
                error=None,
            )
        case WidgetItem():
            return ItemProjection(role="widget", content_text=item.copy_text or "")
        case HiddenContextItem():
            record = _tool_call_record(item.content)
            if record is None:
                return ItemProjection()
            return _tool_projection(
                call_id=record.call_id,
                name=record.name,
                arguments=record.arguments,
                output=record.result(),
                error=record.error,
            )
        case _:
            return ItemProjection()


def _tool_call_record(content: Any) -> ToolCallRecord | None:
    """The tool call stored in hidden content; malformed records are just other context."""
    try:
        return ToolCallRecord.parse(to_jsonable_python(content))
    except ValidationError:
        return None


def _tool_projection(
    *, call_id: str, name: str, arguments: dict[str, Any], output: Any, error: str | None
) -> ItemProjection:
    call: dict[str, Any] = {
        "id": call_id,
        "name": name,
        "arguments": to_jsonable_python(arguments),
        "output": to_jsonable_python(output),
    }
    if error is not None:
        call["error"] = error
    return ItemProjection(
        role="tool",
        content_text=error if error is not None else short_text(output),
        tool_calls=[call],
    )


def short_text(value: Any, limit: int = TOOL_TEXT_LIMIT) -> str | None:
    """A one-glance text of a tool output: strings as they are, anything else as JSON, clipped."""
    if value is None:
        return None
    text = (
        value
        if isinstance(value, str)
        else json.dumps(to_jsonable_python(value), ensure_ascii=False)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"
