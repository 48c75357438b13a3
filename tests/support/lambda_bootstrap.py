"""The Lambda runtime's part for an emulated invoke: import the handler, call it, print the result.

Run by :func:`tests.support.moto_gaps.run_function` in a subprocess whose working directory is
the extracted function zip (``/var/task`` in Lambda) and whose ``PYTHONPATH`` is that folder, the
layers (``/opt``) and the dependencies. Arguments: the handler (``module.function``) and the
function's timeout in seconds; the event arrives on stdin. Stand-alone on purpose: it must not
import anything from the checkout.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback


class Context:
    """The attributes of the Lambda context the project's handlers read."""

    def __init__(self, timeout_seconds: float) -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.aws_request_id = "emulated"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    handler, timeout = sys.argv[1], float(sys.argv[2])
    module_name, _, function_name = handler.rpartition(".")
    event = json.load(sys.stdin)
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        result = function(event, Context(timeout))
    except Exception as exc:
        traceback.print_exc()
        print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
