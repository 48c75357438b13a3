"""Core package of the serverless ChatKit backend, shipped as the shared Lambda layer.

Everything here is importable by every function, so nothing in this package may import the agent
stack (``agents``, ``openai``, ``fastmcp``, ``chatkit.server``): the CRUD functions' cold start
depends on it. ``tests/unit/core/test_layer_imports.py`` enforces that.
"""
