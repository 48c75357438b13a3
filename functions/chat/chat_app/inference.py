"""The composer's model picker and tool menu: what is offered, and what one turn may use.

A ChatKit message carries ``inference_options`` (``model``, ``tool_choice.id``). The model must be
one of ``MODEL_CHOICES`` (unset: ``MODEL_NAME`` alone; the offline model offers itself) and the
tool one of the agent's own tools (the todo tools, ``CLIENT_TOOLS``, the remote MCP servers'
allowed tools); anything else is refused (400) before the message is stored. The same lists are
served at ``GET /api/composer`` for the client to build its pickers from (docs/composer.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatkit.types import InferenceOptions
from chatkit_backend.errors import BadRequest
from chatkit_backend.settings import ModelOption, Settings

from .mcp_servers import exposed_tools
from .todo_contract import TOOL_NAMES

OFFLINE_CHOICE = ModelOption(id="offline", label="Offline model", default=True)
"""What the picker offers when the offline model answers and ``MODEL_CHOICES`` is unset."""


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """What the user picked for one turn: a model id and a tool to call (None: the defaults)."""

    model: str | None = None
    tool_choice: str | None = None


class InferenceChoices:
    """The models and tools a turn may ask for."""

    def __init__(self, settings: Settings, *, offline: bool = False) -> None:
        self.models = (
            [OFFLINE_CHOICE] if offline and not settings.model_choices else settings.models_offered
        )
        self.default_model = next(option.id for option in self.models if option.default)
        remote = [
            name
            for server in settings.mcp_servers
            for name in exposed_tools(server, settings.mcp_allowed_tools)
        ]
        client = [tool.name for tool in settings.client_tools]
        self.tools = list(dict.fromkeys([*TOOL_NAMES, *client, *remote]))

    def check(self, options: InferenceOptions | None) -> TurnOptions:
        """The turn's options, or :class:`BadRequest` for a model or tool not offered."""
        if options is None:
            return TurnOptions(self.default_model)
        model = options.model or self.default_model
        if model not in {option.id for option in self.models}:
            raise BadRequest(f"Model {model!r} is not offered by this server")
        tool = options.tool_choice.id if options.tool_choice is not None else None
        if tool is not None and tool not in self.tools:
            raise BadRequest(f"Tool {tool!r} is not offered by this server")
        return TurnOptions(model, tool)

    def for_turn(self, options: InferenceOptions | None) -> TurnOptions:
        """Like :meth:`check` for a stored message (a retry): what is no longer offered falls
        back to the defaults instead of failing the turn."""
        try:
            return self.check(options)
        except BadRequest:
            return TurnOptions(self.default_model)

    def offered(self) -> dict[str, Any]:
        """``GET /api/composer``: the model picker's entries and the tool menu's ids."""
        return {
            "models": [option.model_dump() for option in self.models],
            "tools": self.tools,
        }
