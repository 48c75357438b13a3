"""The conversations function: REST CRUD over the ChatKit threads, behind a Lambda function URL.

``api`` builds the FastAPI app; ``handler`` is the Lambda entry point (Mangum, payload 2.0).
Nothing here imports the agent stack (``agents``, ``openai``, ``fastmcp``, ``chatkit.server``):
this function's cold start is the reason it exists apart from the chat function.
"""
