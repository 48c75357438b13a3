"""Attachments: create + upload + first turn with a 1 MB image, next to a text-only first turn.

    python -m bench.attachments            # 15 rounds, to bench/results/attachments.{md,json}
    python -m bench.attachments --quick    # 5 rounds, printed only

The server is the dev server as ``make dev`` runs it (a process: ``dev/devserver.py``, the offline
model, attachments in a temporary ``DATA_DIR`` behind the local signed route), over PostgreSQL in
a scratch database on ``TEST_DATABASE_URL``'s server (created and dropped). Each round, over
loopback HTTP:

1. baseline: a ChatKit ``threads.create`` with a text-only message, read to the end of its stream;
2. ``attachments.create`` of a 1 MB PNG, the ``PUT`` of its bytes to the signed URL, then the same
   ``threads.create`` naming the attachment (the bytes are checked, moved into place and sent to
   the model as a ``data:`` URL), read to the end.

Figures are medians of the rounds. What this cannot show: S3's own latency (a presigned ``PUT``
from a browser, ``HEAD``/``COPY``/``DELETE``/``GET`` from the function inside AWS) and the model
reading an image; the local route stands in for S3 and the offline model for the model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.report import Machine, Row, publish_standalone

ROOT = Path(__file__).resolve().parents[1]
IMAGE_BYTES = 1_000_000
SECTION = "8. Attachments (dev server, local route)"
DEFINITIONS = (__doc__ or "")[(__doc__ or "").index("The server is") :].strip()
PNG_HEADER = bytes.fromhex("89504e470d0a1a0a")


def image() -> bytes:
    """1 MB that starts like a PNG (the offline model never decodes it; the bytes are the load)."""
    return PNG_HEADER + os.urandom(IMAGE_BYTES - len(PNG_HEADER))


def turn_body(attachments: list[str]) -> dict[str, Any]:
    return {
        "type": "threads.create",
        "params": {
            "input": {
                "content": [{"type": "input_text", "text": "What is in this picture?"}],
                "attachments": attachments,
                "inference_options": {},
            }
        },
    }


def turn(client: httpx.Client, attachments: list[str]) -> float:
    """Milliseconds from the request to the end of its stream (checked for an answer)."""
    started = time.perf_counter()
    with client.stream("POST", "/chatkit", json=turn_body(attachments)) as response:
        assert response.status_code == 200, response.read()
        body = b"".join(response.iter_bytes())
    elapsed = (time.perf_counter() - started) * 1000
    assert b"assistant_message.content_part.text_delta" in body, body[-500:]
    if attachments:
        assert b"I received 1 attachment" in body, body[-500:]
    return elapsed


@dataclass
class Round:
    text_turn_ms: float
    create_ms: float
    upload_ms: float
    image_turn_ms: float

    @property
    def image_total_ms(self) -> float:
        return self.create_ms + self.upload_ms + self.image_turn_ms


def one_round(client: httpx.Client, data: bytes) -> Round:
    text_turn = turn(client, [])
    started = time.perf_counter()
    created = client.post(
        "/chatkit",
        json={
            "type": "attachments.create",
            "params": {"name": "photo.png", "size": len(data), "mime_type": "image/png"},
        },
    )
    assert created.status_code == 200, created.text
    create_ms = (time.perf_counter() - started) * 1000
    attachment = created.json()
    descriptor = attachment["upload_descriptor"]
    started = time.perf_counter()
    put = client.request(
        descriptor["method"], descriptor["url"], content=data, headers=descriptor["headers"]
    )
    assert put.status_code == 200, put.text
    upload_ms = (time.perf_counter() - started) * 1000
    image_turn = turn(client, [attachment["id"]])
    return Round(text_turn, create_ms, upload_ms, image_turn)


def dev_server(database_url: str, data_dir: Path, port: int) -> Any:
    import subprocess

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JWT_", "OPENAI_", "MODEL", "ATTACHMENT", "MAX_ATTACHMENT"))
    }
    env.update(DATABASE_URL=database_url, DATA_DIR=str(data_dir), PORT=str(port))
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    log = (data_dir / "server.log").open("w")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "dev" / "devserver.py")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def wait_ready(url: str, deadline_s: float = 90.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the dev server did not start")


def measure(database_url: str, rounds: int) -> list[Round]:
    from bench.chat_stream import free_port

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-attachments-") as folder:
        server = dev_server(database_url, Path(folder), port)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url)
            data = image()
            with httpx.Client(base_url=url, timeout=60) as client:
                one_round(client, data)  # warm-up: imports, the first MCP session, caches
                return [one_round(client, data) for _ in range(rounds)]
        finally:
            server.terminate()
            server.wait(timeout=20)


def rows(measured: list[Round]) -> list[Row]:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    text = median([r.text_turn_ms for r in measured])
    create = median([r.create_ms for r in measured])
    upload = median([r.upload_ms for r in measured])
    image_turn = median([r.image_turn_ms for r in measured])
    total = median([r.image_total_ms for r in measured])
    baseline = "first turn, text only"
    return [
        Row(
            SECTION,
            "create + upload + first turn, 1 MB image",
            total,
            baseline,
            text,
            "ms",
            f"create {create:.1f} + upload {upload:.1f} + turn {image_turn:.1f} ms "
            f"(medians of {len(measured)})",
        ),
        Row(SECTION, "first turn with the 1 MB image", image_turn, baseline, text, "ms"),
        Row(SECTION, "attachments.create", create, baseline, text, "ms"),
        Row(SECTION, "upload of 1 MB (signed PUT)", upload, baseline, text, "ms"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    from tests.support.databases import scratch_database

    with scratch_database("ckb_bench_attachments") as database_url:
        machine = Machine.describe(database_url)
        started = time.perf_counter()
        measured = measure(database_url, 5 if args.quick else 15)
    details = {"rounds": [vars(r) for r in measured]}
    publish_standalone(
        "attachments", args.quick, machine, rows(measured), details, started, DEFINITIONS
    )


if __name__ == "__main__":
    main()
