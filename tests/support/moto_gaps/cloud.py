"""What the gaps share: the emulated cloud's state (the server's address, the answers and runs the
tests read) and how a gap installs its patch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ANSWER_TIMEOUT_SECONDS = 120.0
INVOKE_TIMEOUT_SECONDS = 120.0

Patch = Callable[[Any, str, Any], None]
"""``patch(owner, name, value)``: set ``owner.name`` while the shims are on (undone after)."""


@dataclass
class Answer:
    """One custom resource answer as the function PUT it, with the request it answered."""

    request_type: str
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body["Status"])

    @property
    def reason(self) -> str:
        return str(self.body.get("Reason", ""))


@dataclass
class Invocation:
    """One run of a deployed function (gap 1), kept for the test's assertions."""

    function_name: str
    version: str
    returncode: int
    stdout: str
    stderr: str


@dataclass
class EmulatedCloud:
    """What the shims share: the server's address and the logs the test reads."""

    endpoint: str
    """``http://127.0.0.1:<port>`` of the moto server."""
    environment: dict[str, str]
    """AWS settings the deployed functions get (fake credentials, region, endpoint)."""
    answers: list[Answer] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    _requests: dict[str, str] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, body: dict[str, Any]) -> Answer:
        with self._changed:
            answer = Answer(self._requests.get(str(body.get("RequestId")), "Create"), body)
            self.answers.append(answer)
            self._changed.notify_all()
            return answer

    def expect(self, request_id: str, request_type: str) -> None:
        with self._changed:
            self._requests[request_id] = request_type

    def sent_by_us(self, request_id: str) -> bool:
        with self._changed:
            return request_id in self._requests

    def wait_for(self, request_id: str, timeout: float = ANSWER_TIMEOUT_SECONDS) -> Answer:
        def found() -> Answer | None:
            return next((a for a in self.answers if a.body.get("RequestId") == request_id), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout=timeout):
                raise TimeoutError(f"no answer to custom resource request {request_id}")
            answer = found()
            assert answer is not None
            return answer

    def physical_id(self, stack_id: str, logical_id: str) -> str | None:
        """The physical id the function last answered for the resource (CloudFormation keeps it)."""
        with self._changed:
            for answer in reversed(self.answers):
                body = answer.body
                if body.get("StackId") == stack_id and body.get("LogicalResourceId") == logical_id:
                    return str(body["PhysicalResourceId"])
        return None
