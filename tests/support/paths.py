"""Where things are in the checkout, for tests that read files (README, events, templates)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
