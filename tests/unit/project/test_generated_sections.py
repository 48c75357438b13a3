"""The documents' generated sections are up to date, and come from their source, not from a copy.

The configuration table comes from the Settings model, every benchmark figure from
``bench/results/latest.json``; ``make docs`` regenerates them after a change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import figures, generated_sections
from scripts.settings_table import settings_table
from tests.support.paths import REPO_ROOT


@pytest.mark.parametrize(
    "document", generated_sections.DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT))
)
def test_every_generated_section_is_up_to_date(document: Path) -> None:
    text = document.read_text()
    assert generated_sections.regenerate(text) == text, f"{document.name} is stale: run make docs"


def test_every_section_is_shown_somewhere() -> None:
    shown = {
        name
        for document in generated_sections.DOCUMENTS
        for name in generated_sections.sections_in(document.read_text())
    }
    assert shown == set(generated_sections.SECTIONS)


def test_the_readme_shows_the_settings_table_and_the_performance_summary() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert generated_sections.sections_in(readme) == ["settings-table", "performance-summary"]
    assert settings_table() in readme
    assert "[latest.md](bench/results/latest.md)" in readme


def test_a_section_is_filled_from_its_source() -> None:
    stale = "before\n<!-- settings-table:start -->\nhand-edited\n<!-- settings-table:end -->\nafter"
    fresh = generated_sections.regenerate(stale)
    assert "hand-edited" not in fresh
    section = f"<!-- settings-table:start -->\n{settings_table()}\n<!-- settings-table:end -->"
    assert fresh == f"before\n{section}\nafter"
    assert generated_sections.regenerate(fresh) == fresh


def test_an_unknown_section_is_an_error() -> None:
    with pytest.raises(KeyError, match="no-such-thing"):
        generated_sections.regenerate("<!-- no-such-thing:start -->\n<!-- no-such-thing:end -->")


def test_the_figures_follow_the_results_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = json.loads(figures.LATEST.read_text())
    for row in results["rows"]:
        if (
            row["section"].startswith("4. ")
            and row["measure"] == "chat: import + init + 1st request"
        ):
            row["value"] = 98765.0
    results["started"] = "2031-01-01T00:00:00+00:00"
    changed = tmp_path / "latest.json"
    changed.write_text(json.dumps(results))
    monkeypatch.setattr(figures, "LATEST", changed)
    summary = figures.summary_table()
    assert "98,765 ms" in summary
    assert "2031-01-01" in summary
    assert "98,765 ms" in figures.section_table("4")


def test_a_summary_row_the_results_lack_says_what_to_update() -> None:
    with pytest.raises(LookupError, match=r"scripts/figures\.py"):
        figures.pick(figures.latest(), "4.", "no such measure")


def test_check_mode_reports_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    document = tmp_path / "doc.md"
    document.write_text("<!-- settings-table:start -->\nold\n<!-- settings-table:end -->\n")
    monkeypatch.setattr(generated_sections, "ROOT", tmp_path)
    monkeypatch.setattr(generated_sections, "DOCUMENTS", (document,))
    assert generated_sections.main(["--check"]) == 1
    assert "doc.md" in capsys.readouterr().out
    assert "old" in document.read_text()
    assert generated_sections.main([]) == 0
    assert generated_sections.main(["--check"]) == 0
