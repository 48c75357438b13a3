"""The chat function's importable core: agent, models, MCP tools and the ChatKit server."""
