"""Mutation fuzzing of ``POST /chatkit`` bodies over real HTTP: never a 5xx, never a 200 that only
holds an error. Seeded (reproducible), a few hundred cases, bounded in time.

Each case mutates a valid request (ChatKit streaming and JSON types, the simple protocol): a leaf
gets another type, size or unicode (lone surrogates included), a key goes or an unknown one
comes, the ``type`` becomes unknown, or the body nests deeply.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from chatkit_backend.caller import Caller

from tests.e2e.chat.chat_support import headers_for, user_input
from tests.support.fake_openai import Api, FakeOpenAI

CASES = 300
TIME_LIMIT_SECONDS = 30.0

STRANGE_TEXT = [
    "",
    " ",
    "\u0000",
    "é" * 3000,
    "🙂" * 50,
    "x" * 25_000,
    "\u202e right-to-left",
    "line\r\nbreak",
]


def seeds(thread_id: str) -> list[dict[str, Any]]:
    return [
        {"type": "threads.create", "params": {"input": user_input("hello")}},
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": thread_id, "input": user_input("again")},
        },
        {"type": "threads.list", "params": {"limit": 5, "order": "desc"}},
        {"type": "items.list", "params": {"thread_id": thread_id, "limit": 5}},
        {"type": "threads.get_by_id", "params": {"thread_id": thread_id}},
        {"type": "threads.update", "params": {"thread_id": thread_id, "title": "renamed"}},
        {"message": "simple hello"},
        {"message": "simple again", "thread_id": thread_id},
    ]


def strange_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            -1,
            0,
            2**63,
            1.5e308,
            rng.choice(STRANGE_TEXT),
            [],
            {},
            [rng.choice(STRANGE_TEXT)],
            {"type": "no.such.type"},
        ]
    )


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path] + [p for key, inner in value.items() for p in leaves(inner, (*path, key))]
    if isinstance(value, list):
        return [path] + [
            p for index, inner in enumerate(value) for p in leaves(inner, (*path, index))
        ]
    return [path]


def set_at(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def mutate(rng: random.Random, seed: dict[str, Any]) -> Any:
    body = copy.deepcopy(seed)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        paths = leaves(body)
        path = rng.choice(paths)
        if kind <= 1:
            body = set_at(body, path, strange_value(rng))
        elif kind == 2 and path and isinstance(body, dict | list):
            parent = body
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
        elif kind == 3 and isinstance(body, dict):
            body[rng.choice(["extra", "type", "params", "ключ"])] = strange_value(rng)
        elif kind == 4 and isinstance(body, dict):
            body["type"] = rng.choice(["threads.nope", "", "THREADS.CREATE", None, 7])
        else:
            nested: Any = "deep"
            for _ in range(rng.choice([10, 100, 300])):
                nested = [nested] if rng.random() < 0.5 else {"a": nested}
            body = set_at(body, path, nested)
    return body


def deep_body(rng: random.Random) -> bytes:
    depth = rng.choice([2_000, 50_000])
    return b'{"type": "threads.create", "params": ' + b"[" * depth + b"1" + b"]" * depth + b"}"


def only_errors(response: httpx.Response) -> bool:
    """A 200 whose content is nothing but an error."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        datas = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        meaningful = [d for d in datas if d != "[DONE]" and '"type":"error"' not in d]
        return not meaningful
    return "detail" in response.json() if response.content[:1] == b"{" else False


@dataclass
class Fuzzed:
    """What a fuzz run saw: how many answers per status, and the bodies that failed."""

    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[tuple[int, str]] = field(default_factory=list)


async def fuzz(
    client: httpx.AsyncClient,
    user: Caller,
    seed_bodies: list[dict[str, Any]],
    *,
    seed: str,
    cases: int = CASES,
    seconds: float = TIME_LIMIT_SECONDS,
) -> Fuzzed:
    """POST ``cases`` mutations of ``seed_bodies`` (seeded by ``seed``) as ``user``; a failure
    is a 5xx or a 200 that only holds an error. Bounded by ``seconds``."""
    rng = random.Random(seed)
    started = time.monotonic()
    seen = Fuzzed()
    for _ in range(cases):
        raw = json.dumps(mutate(rng, rng.choice(seed_bodies))).encode()
        response = await client.post(
            "/chatkit",
            content=raw,
            headers={**headers_for(user), "content-type": "application/json"},
        )
        seen.statuses[response.status_code] = seen.statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500 or (response.status_code == 200 and only_errors(response)):
            seen.failures.append((response.status_code, raw[:300].decode(errors="replace")))
        assert time.monotonic() - started < seconds
    return seen


async def test_mutated_chatkit_bodies_never_get_a_5xx_or_an_error_only_200(
    api: Api, api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller
) -> None:
    created = await api_client.post(
        "/chatkit", json={"message": "a thread to aim at"}, headers=headers_for(alice)
    )
    thread_id = created.headers["x-thread-id"]
    seen = await fuzz(api_client, alice, seeds(thread_id), seed=f"fuzz-{api}")
    print(f"{api}: {CASES} fuzzed requests, statuses {sorted(seen.statuses.items())}")
    assert seen.failures == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"message": "lone \\ud800 surrogate"}',
        b'{"type": "threads.create", "params": {"input": {"content": [{"type": "input_text", '
        b'"text": "\\udfff"}], "attachments": [], "inference_options": {}}}}',
        b'{"type": "threads.create", "params": ' + b"[" * 2_000 + b"1" + b"]" * 2_000 + b"}",
        b'{"message": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
    ids=["simple-surrogate", "chatkit-surrogate", "nested-2000", "nested-50000"],
)
async def test_lone_surrogates_and_deep_nesting_are_a_400(
    api_client: httpx.AsyncClient, fake: FakeOpenAI, alice: Caller, raw: bytes
) -> None:
    response = await api_client.post(
        "/chatkit", content=raw, headers={**headers_for(alice), "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
