"""What the todo MCP server and its in-process client agree on: names, and where the user goes.

Kept apart from :mod:`chat_app.todo_mcp` so the client side (:mod:`chat_app.mcp_servers`) can be
imported without FastMCP's server stack, which loads only when the server is built.
"""

from __future__ import annotations

SERVER_NAME = "todo"

USER_META_KEY = "chatkit-backend/user_id"
"""The ``_meta`` entry naming the user a tool call acts for (namespaced per the MCP spec)."""

TOOL_NAMES = ("add_task", "list_tasks", "complete_task", "update_task", "delete_task")
