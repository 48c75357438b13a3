"""Client tools: tools the agent calls on the client (``CLIENT_TOOLS``), not on the server.

Each declared tool is offered to the model as a function tool whose invocation runs nothing
here: it sets ``AgentContext.client_tool_call``, and the agent's ``StopAtTools`` ends the run.
The ChatKit SDK then ends the turn with a pending ``ClientToolCallItem``; the client runs the tool
(ChatKit's ``onClientTool``) and sends ``threads.add_client_tool_output``, which completes the
item and starts a turn that continues from it. That item is the call's only record: the run
tracker does not also store it as a server tool call, so its ``call_id`` reaches the model once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agents import FunctionTool, RunContextWrapper
from agents.exceptions import ModelBehaviorError
from chatkit.agents import AgentContext, ClientToolCall
from chatkit_backend.errors import ConfigurationError
from chatkit_backend.settings import ClientToolSpec

from .todo_contract import TOOL_NAMES

SENT_TO_CLIENT = "Sent to the client; its answer continues the conversation."
"""What the run records as the tool's output (the client's answer replaces it in the history)."""


def client_function_tools(specs: Sequence[ClientToolSpec]) -> list[FunctionTool]:
    """The function tools of ``CLIENT_TOOLS`` (refused when a name is taken or repeated)."""
    names = [spec.name for spec in specs]
    taken = sorted({name for name in names if name in TOOL_NAMES or names.count(name) > 1})
    if taken:
        raise ConfigurationError(
            f"CLIENT_TOOLS: tool names must be unique and not a todo tool's: {', '.join(taken)}"
        )
    return [_function_tool(spec) for spec in specs]


def _function_tool(spec: ClientToolSpec) -> FunctionTool:
    async def invoke(context: RunContextWrapper[Any], arguments: str) -> str:
        chatkit_context = context.context
        if not isinstance(chatkit_context, AgentContext):
            raise ModelBehaviorError(f"Client tool {spec.name} needs a ChatKit client")
        chatkit_context.client_tool_call = ClientToolCall(
            name=spec.name, arguments=_arguments(spec.name, arguments)
        )
        return SENT_TO_CLIENT

    return FunctionTool(
        name=spec.name,
        description=spec.description,
        params_json_schema=spec.parameters,
        on_invoke_tool=invoke,
        strict_json_schema=False,
    )


def _arguments(name: str, raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ModelBehaviorError(f"Client tool {name} got arguments that are not JSON") from exc
    if not isinstance(parsed, dict):
        raise ModelBehaviorError(f"Client tool {name} got arguments that are not an object")
    return parsed
