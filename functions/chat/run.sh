#!/bin/sh
# Entry point of the chat function under the AWS Lambda Web Adapter (the function's handler).
#
# The Python runtime cannot stream a response itself; the adapter layer (exec wrapper
# /opt/bootstrap, AWS_LWA_INVOKE_MODE=response_stream) runs this script once per sandbox, waits
# until AWS_LWA_READINESS_CHECK_PATH (/health) answers on $PORT, then forwards each invocation as
# an HTTP request and streams the response back through the function URL.
#
# One worker: a sandbox serves one request at a time. uvicorn calls the app factory
# (chat_app.app:create_app), which builds the agent stack, in the init phase, before /health
# answers; `python -m chat_app` is uvicorn with the garbage collector paused for that phase
# (chat_app/__main__.py). No access log: the app's request
# middleware writes one structured line per request. Run it locally the same way:
# PORT=8080 functions/chat/run.sh (with PYTHONPATH reaching layers/shared).
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
# The function's code and the shared layer (/opt/python in Lambda) on the import path.
export PYTHONPATH="${HERE}:/opt/python${PYTHONPATH:+:${PYTHONPATH}}"

exec python3 -m chat_app chat_app.app:create_app --factory \
    --host 127.0.0.1 \
    --port "${PORT:-8080}" \
    --workers 1 \
    --lifespan on \
    --no-access-log \
    --timeout-keep-alive 75 \
    --log-level "$(echo "${LOG_LEVEL:-INFO}" | tr '[:upper:]' '[:lower:]')"
