"""The Lambda runtime's part of an invoke: import the handler, call it, print the result.

Run with ``python -P`` (nothing beside this file is importable) in a subprocess whose working
directory is the function's code folder (``/var/task`` in Lambda) and whose ``PYTHONPATH`` holds
that folder and the layers (``/opt/python``). Arguments: the handler (``module.function``), the
function's timeout in seconds, and optionally ``--warm ROOT...``:

* without ``--warm``, one invoke: the event arrives on stdin and the result is printed as the
  last line (gap 1 of :mod:`tests.support.moto_gaps`, the emulated deploy);
* with ``--warm``, one warm sandbox: the handler is imported once, a first :data:`MARK` line
  names every module loaded from outside the ``ROOT`` folders, then each stdin line is an event
  answered by one :data:`MARK` line; everything else on stdout is the function's own logs
  (:class:`tests.support.built_artifacts.Sandbox`).

Stand-alone on purpose: it must not import anything from the checkout.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

MARK = "\x1eRESULT "
"""Starts each line of the warm sandbox's answers."""


class Context:
    """The attributes of the Lambda context the project's handlers and Powertools read."""

    def __init__(self, timeout_seconds: float) -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load(handler: str) -> Callable[[Any, Context], Any]:
    module_name, _, function_name = handler.rpartition(".")
    function: Callable[[Any, Context], Any] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function


def invoke_once(handler: str, timeout: float) -> int:
    event = json.load(sys.stdin)
    try:
        result = load(handler)(event, Context(timeout))
    except Exception as exc:
        traceback.print_exc()
        print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


def loaded_outside(roots: list[str]) -> list[str]:
    """Modules whose file is under none of ``roots`` (this program itself aside)."""
    real_roots = tuple(os.path.realpath(root) for root in roots)
    files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
    return sorted(
        name
        for name, file in files.items()
        if name != "__main__" and file and not os.path.realpath(file).startswith(real_roots)
    )


def serve_warm(handler: str, timeout: float, roots: list[str]) -> int:
    function = load(handler)
    print(MARK + json.dumps({"outside": loaded_outside(roots)}), flush=True)
    for line in sys.stdin:
        try:
            reply = {"ok": True, "result": function(json.loads(line), Context(timeout))}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(MARK + json.dumps(reply, default=str), flush=True)
    return 0


def main() -> int:
    handler, timeout, *rest = sys.argv[1:]
    if rest[:1] == ["--warm"]:
        return serve_warm(handler, float(timeout), rest[1:])
    return invoke_once(handler, float(timeout))


if __name__ == "__main__":
    sys.exit(main())
