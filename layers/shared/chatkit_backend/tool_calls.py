"""How a server-side tool call is remembered in a thread.

The ChatKit SDK neither turns server tool calls into thread items nor replays them to the model.
This project stores each finished call as a ``HiddenContextItem`` whose ``content`` is a
:class:`ToolCallRecord` dump: hidden items are filtered out of ChatKit responses by the SDK, the
chat function's converter turns them back into ``function_call`` + ``function_call_output`` model
input on the next turn, and the store projects them into the REST view as ``role="tool"``.
What the user *sees* of tool activity is separate (progress updates / a workflow item).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ToolCallRecord(BaseModel):
    """One tool invocation and its outcome, as stored in ``HiddenContextItem.content``."""

    type: Literal["tool_call"] = "tool_call"
    call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = None

    @classmethod
    def parse(cls, content: Any) -> ToolCallRecord | None:
        """The record inside a hidden item's content, or None when it is some other context."""
        if isinstance(content, dict) and content.get("type") == "tool_call":
            return cls.model_validate(content)
        return None
