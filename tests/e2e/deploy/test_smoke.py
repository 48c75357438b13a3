"""scripts/smoke.py against the local dev server (real uvicorn, both apps on one port).

The deploy workflow runs the same script against the function URLs after each deploy; here it
runs against the dev server, so the script is exercised on every CI run and cannot rot.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from scripts.smoke import mint_token
from tests.support.paths import REPO_ROOT
from tests.support.tokens import TEST_JWT_SECRET

ROOT = REPO_ROOT
AUDIENCE = "smoke-backend"


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path_factory.mktemp("smoke-data")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "DATABASE_", "OPENAI_", "MCP_", "MODEL"))
    }
    env.update(
        PORT=str(port), DATA_DIR=str(data), JWT_SECRET=TEST_JWT_SECRET, JWT_AUDIENCE=AUDIENCE
    )
    log = (data / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "dev" / "devserver.py")],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (data / "server.log").read_text()
            try:
                if httpx.get(f"{base}health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "dev server not ready"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _token(secret: str = TEST_JWT_SECRET, audience: str = AUDIENCE) -> str:
    return mint_token(secret, "smoke-user", issuer=None, audience=audience)


def _smoke(base: str, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "smoke.py"),
            "--chat-url",
            base,
            "--conversations-url",
            base,
            "--token",
            token,
            "--timeout",
            "60",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_one_streamed_turn_read_back_and_a_wrong_audience_refused(dev_server: str) -> None:
    token = _token()
    result = _smoke(dev_server, token, "--wrong-audience-token", _token(audience="another-app"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[3] == "wrong audience:     refused (401) by both function URLs"
    assert lines[0].startswith("thread ")
    assert lines[1].startswith("time to first byte: ")
    first_byte_ms = float(lines[1].split(": ")[1].removesuffix(" ms"))
    total_ms = float(lines[2].split(": ")[1].strip().removesuffix(" ms"))
    assert 0 < first_byte_ms <= total_ms
    # the conversation really is the smoke user's
    thread_id = lines[0].split()[1].rstrip(":")
    listed = httpx.get(
        f"{dev_server}api/conversations",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["conversations"]
    assert thread_id in [c["id"] for c in listed]


def test_a_backend_that_accepts_the_wrong_audience_fails_the_smoke_test(dev_server: str) -> None:
    """The "wrong-audience" token here is one the server accepts: the check must notice."""
    result = _smoke(dev_server, _token(), "--wrong-audience-token", _token())
    assert result.returncode == 1
    assert "answered 200 to a token for another audience" in result.stderr


def test_without_a_wrong_audience_token_the_check_is_not_silently_skipped(
    dev_server: str,
) -> None:
    assert "--skip-audience-check" in _smoke(dev_server, _token()).stderr
    skipped = _smoke(dev_server, _token(), "--skip-audience-check")
    assert skipped.returncode == 0, skipped.stderr
    assert "NOT CHECKED" in skipped.stdout


def test_a_refused_token_fails_the_smoke_test(dev_server: str) -> None:
    forged = _token(secret="another-secret-of-at-least-32-bytes!!")
    result = _smoke(dev_server, forged)
    assert result.returncode == 1
    assert "smoke test FAILED: chat answered 401" in result.stderr
