"""What an agent turn tells every protocol, beyond the SDK's own events.

The ChatKit protocol and the simple ones both read these: the tool progress event (which carries
the call for the simple protocols' ``tool_call`` / ``tool_result``) and the messages a user is
shown when a turn stops early. Kept apart from the turn (:mod:`chat_app.streaming`,
:mod:`chat_app.run_tracker`) so a protocol needs none of the agent stack to translate them.
"""

from __future__ import annotations

from chatkit.types import ProgressUpdateEvent
from chatkit_backend.tool_calls import ToolCallRecord
from pydantic import Field

TIMEOUT_MESSAGE = "The answer took too long and was stopped. Please try again."
MAX_TURNS_MESSAGE = "The assistant needed too many steps and was stopped. Please try again."
FAILURE_MESSAGE = "The assistant could not finish its answer. Please try again."


class ToolProgressEvent(ProgressUpdateEvent):
    """A ``progress_update`` ("Running add_task…") that also carries the call itself.

    ``call`` and ``finished`` are excluded from serialisation: ChatKit clients get a standard
    progress update, while the simple protocols (which see the event objects) report
    ``tool_call`` / ``tool_result`` from them.
    """

    call: ToolCallRecord = Field(exclude=True)
    finished: bool = Field(default=False, exclude=True)
