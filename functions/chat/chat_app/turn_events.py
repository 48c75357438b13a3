"""What an agent turn tells every protocol, beyond the SDK's own events.

The ChatKit protocol and the simple ones both read these: the tool workflow's events (which carry
the call for the simple protocols' ``tool_call`` / ``tool_result``) and the messages a user is
shown when a turn stops early. Kept apart from the turn (:mod:`chat_app.streaming`,
:mod:`chat_app.run_tracker`) so a protocol needs none of the agent stack to translate them.
"""

from __future__ import annotations

from functools import cache

from chatkit import types as chatkit_types
from chatkit.types import ThreadItemAddedEvent, ThreadItemUpdatedEvent
from chatkit_backend.tool_calls import ToolCallRecord
from pydantic import BaseModel, Field

TIMEOUT_MESSAGE = "The answer took too long and was stopped. Please try again."
MAX_TURNS_MESSAGE = "The assistant needed too many steps and was stopped. Please try again."
FAILURE_MESSAGE = "The assistant could not finish its answer. Please try again."


class ToolCallShown(BaseModel):
    """A tool workflow event that also carries the call itself (``call``, ``finished``).

    Both fields are excluded from serialisation: ChatKit clients get the standard workflow
    events, while the simple protocols (which see the event objects) report ``tool_call`` /
    ``tool_result`` from them.
    """

    call: ToolCallRecord = Field(exclude=True)
    finished: bool = Field(default=False, exclude=True)

    @property
    def key(self) -> str:
        """Which of the tracker's events this is (to tell which ones reached the client)."""
        return f"{self.call.call_id}:{'end' if self.finished else 'start'}"


class ToolTaskAdded(ThreadItemAddedEvent, ToolCallShown):
    """The turn's tool workflow appears, with the task of its first call."""


class ToolTaskUpdated(ThreadItemUpdatedEvent, ToolCallShown):
    """A task of the tool workflow is added (a later call) or finished."""


@cache
def complete_tool_events() -> None:
    """Build the two events' schemas, once per process, before the first is made.

    Their fields name SDK types defined after the events (``ThreadItem``), resolved in the SDK's
    namespace. Not at import: a turn without a tool call never needs them, so the init phase
    does not pay for it (the SnapStart warm-up builds them into the snapshot).
    """
    for event in (ToolTaskAdded, ToolTaskUpdated):
        event.model_rebuild(_types_namespace=vars(chatkit_types))
