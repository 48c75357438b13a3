"""How a server-side tool call is remembered in a thread.

The ChatKit SDK neither turns server tool calls into thread items nor replays them to the model.
This project stores each finished call as a ``HiddenContextItem`` whose ``content`` is a
:class:`ToolCallRecord` dump: hidden items are filtered out of ChatKit responses by the SDK, the
chat function's converter turns them back into ``function_call`` + ``function_call_output`` model
input on the next turn, and the store projects them into the REST view as ``role="tool"``.
What the user *sees* of tool activity is separate (progress updates / a workflow item).
"""

from __future__ import annotations

import json
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

    def result(self) -> Any:
        """The output as a client wants to read it (``output`` stays as the model saw it).

        MCP tools answer with content parts (``[{"type": "input_text", "text": "{...}"}]``);
        clients of the simple protocol and the REST view get the text of those parts, decoded
        when it is JSON (a task as an object, a list of tasks as a list).
        """
        output = self.output
        if isinstance(output, list) and output and all(_is_text_part(p) for p in output):
            output = "".join(part["text"] for part in output)
        if isinstance(output, str):
            try:
                return json.loads(output)
            except ValueError:
                return output
        return output

    @classmethod
    def parse(cls, content: Any) -> ToolCallRecord | None:
        """The record inside a hidden item's content, or None when it is some other context."""
        if isinstance(content, dict) and content.get("type") == "tool_call":
            return cls.model_validate(content)
        return None


def _is_text_part(part: Any) -> bool:
    return (
        isinstance(part, dict)
        and part.get("type") in ("input_text", "output_text", "text")
        and isinstance(part.get("text"), str)
    )
