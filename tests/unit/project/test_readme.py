"""The README stays true: its opening commands, its configuration table and its layout."""

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


MODULE_FOLDERS = (
    "layers/shared/chatkit_backend",
    "functions/chat/chat_app",
    "functions/conversations/conversations_app",
    "functions/migrate",
)


def test_layout_names_every_module_of_the_layer_and_the_functions() -> None:
    """The layout block answers "where is X": a module it does not name is a stale layout."""
    layout = README.read_text().split("```\ntemplate.yaml", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"[\w-]+\.py", layout))
    modules = {
        path.name
        for folder in MODULE_FOLDERS
        for path in (REPO_ROOT / folder).glob("*.py")
        if path.name != "__init__.py"
    }
    assert modules - named == set()
    for folder in ("layers/shared", "functions/chat", "functions/conversations", "infra", "dev"):
        assert folder.split("/")[-1] in layout
