"""The README stays true: its opening commands and its layout (its generated sections:
``test_generated_sections.py``)."""

from __future__ import annotations

import re

from tests.support.paths import REPO_ROOT

README = REPO_ROOT / "README.md"


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make dev", "make test"]


MODULE_FOLDERS = (
    "layers/shared/chatkit_backend",
    "functions/chat/chat_app",
    "functions/conversations/conversations_app",
    "functions/migrate",
)


def test_layout_names_every_module_of_the_layer_and_the_functions() -> None:
    """The layout block answers "where is X": a module it does not name is a stale layout."""
    layout = README.read_text().split("```\ntemplate.yaml", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"\w+", layout))
    modules = {
        path.stem
        for folder in MODULE_FOLDERS
        for path in (REPO_ROOT / folder).glob("*.py")
        if path.name != "__init__.py"
    }
    assert modules - named == set(), "name each new module in the README's layout block"
    for folder in ("layers/shared", "functions/chat", "functions/conversations", "infra", "dev"):
        assert folder.split("/")[-1] in layout
