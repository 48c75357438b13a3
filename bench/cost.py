"""What a chat turn costs on Lambda at list price, for the chat function's ``MemorySize``.

A streamed turn is billed for its whole duration (the model's wait included) at the configured
memory, so the cost of a stated turn shape (:data:`TURN_SECONDS` of streaming) is memory x
duration x the GB-second price, plus the request price; CPU time does not enter the bill.
Prices: AWS Lambda list prices (us-east-1, first pricing tier), per architecture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"

Architecture = Literal["x86_64", "arm64"]
GB_SECOND_USD: dict[Architecture, float] = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
REQUEST_USD = 0.20 / 1_000_000
TURN_SECONDS = 10.0
TURNS = 1000
PREVIOUS_MEMORY_MB = 2048
"""The chat function's ``MemorySize`` before it was chosen from measured memory."""


def chat_memory_mb(template: Path = TEMPLATE) -> int:
    """The chat function's ``MemorySize`` in the SAM template."""
    text = template.read_text()
    block = text[text.index("\n  ChatFunction:") :]
    found = re.search(r"\n\s+MemorySize: (\d+)", block)
    if found is None:
        raise LookupError("ChatFunction has no MemorySize in template.yaml")
    return int(found.group(1))


@dataclass(frozen=True)
class Cost:
    memory_mb: int
    architecture: Architecture
    usd_per_1000_turns: float


def per_1000_turns(
    memory_mb: int, architecture: Architecture = "x86_64", seconds: float = TURN_SECONDS
) -> Cost:
    gb_seconds = TURNS * seconds * memory_mb / 1024
    usd = gb_seconds * GB_SECOND_USD[architecture] + TURNS * REQUEST_USD
    return Cost(memory_mb, architecture, usd)


def costs() -> list[Cost]:
    """The chosen memory on both architectures, and the previous one on x86_64."""
    chosen = chat_memory_mb()
    return [
        per_1000_turns(chosen, "x86_64"),
        per_1000_turns(chosen, "arm64"),
        per_1000_turns(PREVIOUS_MEMORY_MB, "x86_64"),
    ]
