"""Issue 23's figures for the code of this tree and of an older one, in one run: the record.

    python -m bench.turn_report --compare-tree /tmp/base   # after `git archive <rev> | tar -x`

Runs :mod:`bench.turn_overhead` (this tree, the older tree and the bare relay in front of one
fake model) and :mod:`bench.wire_count` (both trees), and writes
``bench/results/turn_overhead.{md,json}``: the suite's rows for this tree (sections 8-10, with
their verdicts) and the same figures of the older code next to them.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict
from pathlib import Path

from bench import turn_overhead, wire_count
from bench.report import Machine, Results, Row
from bench.run import DEFINITIONS, RESULTS_DIR, cost_rows, overhead_rows, wire_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare-tree", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    import migration_runner

    from tests.support.databases import scratch_database

    started = time.perf_counter()
    plan = turn_overhead.QUICK if args.quick else turn_overhead.FULL
    with scratch_database("ckb_bench") as url:
        migration_runner.upgrade(url)
        machine = Machine.describe(url)
        measured = turn_overhead.measure(url, plan, args.compare_tree)
        wire = wire_count.measure(url)
        wire_before = wire_count.measure(url, args.compare_tree)
    assert measured.before is not None
    rows, failures = overhead_rows(measured)
    made, wire_failures = wire_rows(wire)
    rows += made + cost_rows()
    rows += compared_rows(measured, wire, wire_before)
    machine.load_after = os.getloadavg()
    results = Results(
        command=f"python -m bench.turn_report --compare-tree {args.compare_tree}",
        mode="turn overhead, before and after",
        machine=machine,
        rows=rows,
        failures=failures + wire_failures,
        details={
            "turn_overhead": asdict(measured),
            "wire": asdict(wire),
            "wire_before": asdict(wire_before),
        },
        seconds=time.perf_counter() - started,
    )
    markdown, _ = results.write(RESULTS_DIR, "turn_overhead", DEFINITIONS)
    print(results.markdown(DEFINITIONS))
    print(f"written: {markdown}")


def compared_rows(
    measured: turn_overhead.Results, wire: wire_count.WireCounts, wire_before: wire_count.WireCounts
) -> list[Row]:
    """This tree next to the older code (baseline), same run."""
    section = "11. This tree vs the code before issue 23 (same run)"
    after, before = measured.chat, measured.before
    assert before is not None
    pairs: list[tuple[str, float, float, str]] = [
        *(
            (
                f"request -> model request p50, {messages} messages",
                after.before_model_ms[messages],
                before.before_model_ms[messages],
                "ms",
            )
            for messages in measured.plan.histories
        ),
        (
            "burst: first chunk -> first text p50",
            after.burst_first_text_ms,
            before.burst_first_text_ms,
            "ms",
        ),
        (
            "burst: first chunk -> last text p50",
            after.burst_last_text_ms,
            before.burst_last_text_ms,
            "ms",
        ),
        (
            "burst: text events/s, first -> last text",
            after.burst_text_rate,
            before.burst_text_rate,
            "/s",
        ),
        (
            "paced: first chunk -> first text p50",
            after.paced_first_text_ms,
            before.paced_first_text_ms,
            "ms",
        ),
        ("CPU per turn", after.cpu_ms_per_turn, before.cpu_ms_per_turn, "ms"),
        ("peak RSS", after.peak_rss_mib, before.peak_rss_mib, "MiB"),
        ("round trips, existing thread", wire.existing_thread, wire_before.existing_thread, ""),
        ("round trips, new thread", wire.new_thread, wire_before.new_thread, ""),
        ("round trips, widget turn", wire.widget_turn, wire_before.widget_turn, ""),
    ]
    notes = {"burst: text events/s, first -> last text": "before: sent only after the whole burst"}
    return [
        Row(section, label, value, "before", old, unit, notes.get(label, ""))
        for label, value, old, unit in pairs
    ]


if __name__ == "__main__":
    main()
