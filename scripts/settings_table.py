"""The configuration table of the README, from the Settings model (the one source of truth).

It fills the README's ``settings-table`` section (:mod:`scripts.generated_sections`; a test fails
when the README differs): after adding a setting, run ``make docs``.
"""

from __future__ import annotations

import json

from chatkit_backend.settings import Settings


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = json.dumps(field.default_factory())  # type: ignore[call-arg]
        elif field.default is None:
            default = "unset"
        else:
            default = str(field.default)
        default = "`data/` in the checkout" if name == "data_dir" else f"`{default}`"
        rows.append(f"| `{name.upper()}` | {default} | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
