"""Entry point of the migration function: a CloudFormation custom resource, or a plain invoke.

Layout: this folder is the function's ``CodeUri``. Its ``migrations`` entry is a symlink to the
project's top-level ``migrations/`` folder; ``sam build`` copies it as a real directory, so the
built artifact carries the Alembic environment next to this module and changes to any revision
change the function's code (and so its published version, which re-runs the custom resource).
Tests import this module from ``functions/migrate`` and find the same folder through the link.
``MIGRATIONS_DIR`` overrides the location (tests with extra revisions, operators).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import custom_resource
import migration_runner
from chatkit_backend.settings import get_settings

BUNDLED_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def run_migrations() -> str:
    """Upgrade the configured database to head; returns the revision now current."""
    directory = migration_runner.migrations_dir(BUNDLED_MIGRATIONS)
    return migration_runner.upgrade_deployed(get_settings(), directory=directory)


def read_revision() -> str | None:
    """The configured database's current revision, read only (a rollback's answer)."""
    return migration_runner.current_revision_deployed(get_settings())


def handler(
    event: Mapping[str, Any], context: custom_resource.LambdaContextLike | None
) -> dict[str, str] | None:
    return custom_resource.handle_invocation(
        event, context, run_migrations=run_migrations, read_revision=read_revision
    )
