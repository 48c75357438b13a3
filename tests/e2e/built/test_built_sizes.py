"""Each built function's folder plus its layers, unzipped, fits Lambda's limit.

The project's goal per function is reported when missed (the table is printed with ``-rP``),
not failed: the limit is what breaks a deploy.
"""

from __future__ import annotations

import pytest

from tests.support.built_artifacts import GOAL_MIB, LIMIT_MIB, MIB, BuiltFunction

pytestmark = pytest.mark.built


def test_every_function_fits_the_unzipped_limit(
    functions: dict[str, BuiltFunction], built_sizes: dict[str, int]
) -> None:
    print(f"{'function':<24}{'unzipped (MiB)':>16}  layers")
    over = []
    for function in functions.values():
        mib = built_sizes[function.logical_id] / MIB
        layers = ", ".join(path.parent.name for path in function.layer_dirs)
        note = "" if mib <= GOAL_MIB else f"  (over the {GOAL_MIB} MiB goal)"
        print(f"{function.logical_id:<24}{mib:>16.1f}  {layers}{note}")
        if mib > LIMIT_MIB:
            over.append(function.logical_id)
    assert not over, f"over the {LIMIT_MIB} MiB unzipped limit: {', '.join(over)}"
