"""A server in a process of its own, on a free port, as its users start it.

* :class:`DevServerProcess`: ``python dev/devserver.py``, as ``make dev`` runs it;
* :class:`ChatEntryProcess`: ``functions/chat/run.sh``, as the Lambda Web Adapter runs it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support.paths import REPO_ROOT

IGNORED_ENVIRONMENT = ("JWT_", "DATABASE_", "OPENAI_", "MCP_", "CORS_", "MODEL", "STAGE")
"""The developer's own settings never leak into a test's server: it gets only ``env``."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``command`` with the environment ``env`` and ``PORT``; its output goes to ``log_path``.

    The process also gets this one's environment less :data:`IGNORED_ENVIRONMENT`, unless
    ``inherit`` is false (then ``env`` is all it has, as in a Lambda sandbox).
    """

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        log_path: Path,
        *,
        cwd: Path = REPO_ROOT,
        inherit: bool = True,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        inherited = {
            name: value
            for name, value in os.environ.items()
            if inherit and not name.startswith(IGNORED_ENVIRONMENT)
        }
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            list(command),
            env={**inherited, **env, "PORT": str(self.port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Until ``/health`` answers (the seconds it took); the log is in the error otherwise."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready: {self.log_path.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


class DevServerProcess(ServerProcess):
    """The dev server (both apps and the playground on one port)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__([sys.executable, str(REPO_ROOT / "dev" / "devserver.py")], env, log_path)


class ChatEntryProcess(ServerProcess):
    """The chat function's ``run.sh`` with the shared layer on the import path (``/opt/python``
    in Lambda) and this interpreter's ``python3`` first on ``PATH``."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        interpreter_dir = str(Path(sys.executable).parent)
        super().__init__(
            [str(REPO_ROOT / "functions" / "chat" / "run.sh")],
            {
                "PYTHONPATH": str(REPO_ROOT / "layers" / "shared"),
                "PATH": os.pathsep.join((interpreter_dir, os.environ.get("PATH", ""))),
                **env,
            },
            log_path,
        )
