"""The README stays true: its opening commands and its configuration table."""

from __future__ import annotations

import re

from scripts.settings_table import settings_table
from tests.support.paths import REPO_ROOT

README = REPO_ROOT / "README.md"


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make dev", "make test"]


def test_configuration_table_matches_the_settings_model() -> None:
    text = README.read_text()
    table = text.split("<!-- settings-table:start -->\n", 1)[1].split("\n<!-- settings-table", 1)[0]
    assert table.strip() == settings_table().strip(), (
        "README configuration table is stale: run .venv/bin/python scripts/settings_table.py"
    )
