"""The app stack's parameter overrides, with the database stack's outputs filled in.

``sam deploy --parameter-overrides`` replaces samconfig.toml's list instead of merging with it, so
this prints the environment's whole list from samconfig.toml with the values the companion
database stack (infra/database.yaml) produced put in place of the placeholders: the secret ARN,
the hosts, the subnets and security group, ``DbPooler``. Each output is named after the app
parameter it feeds. Used by ``make database-params`` (to read) and ``make deploy
DATABASE_STACK=...`` (to deploy); values are shell-quoted, one ``Key=Value`` per word::

    python scripts/database_params.py --env dev --stack chatkit-database-dev [--region us-east-1]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
FED_PARAMETERS = (
    "DatabaseSecretArn",
    "MigrationDatabaseSecretArn",
    "DatabaseHost",
    "MigrationDatabaseHost",
    "SubnetIds",
    "SecurityGroupIds",
    "DbPooler",
)
"""The outputs of infra/database.yaml that are app parameters of the same name."""
REPLACED: tuple[str, ...] = ()
"""Dropped from samconfig's list besides the fed parameters (which replace their entries)."""


def samconfig_overrides(env: str, samconfig: Path = ROOT / "samconfig.toml") -> dict[str, str]:
    config = tomllib.loads(samconfig.read_text())
    items = config[env]["deploy"]["parameters"].get("parameter_overrides", [])
    if isinstance(items, str):
        items = shlex.split(items)
    return dict(str(item).split("=", 1) for item in items)


def stack_outputs(stack: str, cloudformation: Any) -> dict[str, str]:
    [found] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def merged_overrides(env: str, outputs: dict[str, str]) -> dict[str, str]:
    """samconfig's overrides for ``env`` with the database stack's outputs in place."""
    missing = [name for name in FED_PARAMETERS if name not in outputs]
    if missing:
        raise SystemExit(f"the database stack lacks the outputs {', '.join(missing)}")
    overrides = {k: v for k, v in samconfig_overrides(env).items() if k not in REPLACED}
    overrides.update({name: outputs[name] for name in FED_PARAMETERS})
    return overrides


def render(overrides: dict[str, str]) -> str:
    return " ".join(shlex.quote(f"{key}={value}") for key, value in overrides.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=["dev", "staging", "prod"])
    parser.add_argument("--stack", required=True, help="the database stack's name")
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    cloudformation = boto3.client("cloudformation", region_name=args.region)
    print(render(merged_overrides(args.env, stack_outputs(args.stack, cloudformation))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
