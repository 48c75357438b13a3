"""Expand a (packaged) SAM template into plain CloudFormation JSON, offline, with samtranslator.

CloudFormation runs the ``AWS::Serverless-2016-10-31`` transform server-side; an emulated
CloudFormation (moto) has none, so the emulated deploy runs the same translator here first.
samtranslator pins pydantic below the version the project uses, so this script runs in the SAM
CLI's own environment (the Makefile's pinned ``aws-sam-cli`` through ``uv tool run``), not in
the project's virtualenv::

    python3 -m uv tool run --from aws-sam-cli==1.170.0 python scripts/sam_transform.py \\
        packaged.yaml out.json --parameters '{"Stage": "dev", ...}' --region us-east-1

Only the standard library and what aws-sam-cli brings are imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ACCOUNT_ID = "123456789012"


def transform(
    template: dict[str, Any], parameters: dict[str, str], region: str, account_id: str
) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of ``template``.

    ``managed_policy_map`` stays empty: the template names no managed policy by short name (its
    roles are explicit), so the translator never needs IAM to resolve one.
    """
    values: dict[str, Any] = {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
        **parameters,
    }
    session = boto3.Session(region_name=region)  # pseudo parameters only: no AWS call is made
    translator = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session)
    result: dict[str, Any] = translator.translate(sam_template=template, parameter_values=values)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--parameters", default="{}", help="JSON object of parameter values")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account-id", default=ACCOUNT_ID)
    args = parser.parse_args(argv)
    template = yaml_parse(args.template.read_text())
    result = transform(template, json.loads(args.parameters), args.region, args.account_id)
    args.output.write_text(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
