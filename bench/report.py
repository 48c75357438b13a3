"""The suite's table and results files: rows with their baselines, and the machine they ran on."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.seed import psycopg_url


@dataclass(frozen=True)
class Row:
    """One figure next to the baseline measured in the same run; ratio = value / baseline."""

    section: str
    measure: str
    value: float
    baseline_name: str
    baseline: float
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """``None`` when there is no baseline figure (e.g. nothing built to measure)."""
        return self.value / self.baseline if self.baseline else None


@dataclass
class Machine:
    cpu: str
    cores: int
    memory_gib: float
    python: str
    postgresql: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def describe(cls, database_url: str) -> Machine:
        with psycopg.connect(psycopg_url(database_url)) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        return cls(
            cpu=_cpu_model(),
            cores=os.cpu_count() or 0,
            memory_gib=_memory_gib(),
            python=platform.python_version(),
            postgresql=str(row[0]) if row else "?",
            load_before=os.getloadavg(),
        )

    def text(self) -> str:
        def load(values: tuple[float, float, float]) -> str:
            return " / ".join(f"{value:.2f}" for value in values)

        return (
            f"{self.cpu}, {self.cores} cores, {self.memory_gib:.0f} GiB; Python {self.python}; "
            f"PostgreSQL {self.postgresql}; load average (1/5/15 min) {load(self.load_before)} "
            f"before, {load(self.load_after)} after (the machine is shared)"
        )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def figure(value: float, unit: str) -> str:
    """A value with its unit, as the results tables print it."""
    if unit in ("", "MiB") or value >= 100 or value == int(value):
        text = f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> str:
    """The rows as one Markdown table (readable as plain text too)."""
    lines = [
        "| benchmark | figure | value | baseline | baseline value | ratio | notes |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.section} | {row.measure} | {figure(row.value, row.unit)} | "
            f"{row.baseline_name} | {figure(row.baseline, row.unit)} | "
            f"{'n/a' if row.ratio is None else f'{row.ratio:.2f}'} | "
            f"{row.note} |"
        )
    return "\n".join(lines)


@dataclass
class Results:
    command: str
    mode: str
    machine: Machine
    rows: list[Row]
    failures: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0

    def markdown(self, definitions: str) -> str:
        verdict = (
            "all checks passed" if not self.failures else "FAILED: " + "; ".join(self.failures)
        )
        return (
            f"# Benchmark results ({self.mode})\n\n"
            f"- command: `{self.command}`\n- date: {self.started} ({self.seconds:.0f} s)\n"
            f"- machine: {self.machine.text()}\n- checks: {verdict}\n\n"
            f"{table(self.rows)}\n\n{definitions}\n"
        )

    def write(self, folder: Path, stem: str, definitions: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        markdown, data = folder / f"{stem}.md", folder / f"{stem}.json"
        markdown.write_text(self.markdown(definitions))
        payload = asdict(self)
        for row, dumped in zip(self.rows, payload["rows"], strict=True):
            dumped["ratio"] = row.ratio
        data.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        return markdown, data


def publish(
    mode: str,
    machine: Machine,
    rows: list[Row],
    details: dict[str, Any],
    started: float,
    definitions: str,
    folder: Path,
    quick: bool,
) -> None:
    """A standalone benchmark's ending (``python -m bench.<mode>``): its results, printed with
    ``--quick``, else also written to ``<folder>/<mode>.md`` and ``.json``."""
    import shlex

    machine.load_after = os.getloadavg()
    command = f"python -m bench.{mode}" + (" --quick" if quick else "")
    results = Results(
        command=shlex.join(command.split()),
        mode=mode,
        machine=machine,
        rows=rows,
        failures=[],
        details=details,
        seconds=time.perf_counter() - started,
    )
    if quick:
        print(results.markdown(definitions))
        return
    markdown, _ = results.write(folder, mode, definitions)
    print(markdown.read_text())
