"""The GitHub workflows: CI once per push to main, deploys ship the tested build, then smoke."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.paths import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _load(name: str) -> dict[str, Any]:
    workflow: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return workflow


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def test_a_push_to_main_runs_ci_once() -> None:
    ci, deploy = _load("ci.yml"), _load("deploy.yml")
    assert "main" in ci["on"]["push"]["branches-ignore"]
    assert "workflow_call" in ci["on"]
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert deploy["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    for job in ("dev", "staging", "prod"):
        assert "ci" in deploy["jobs"][job]["needs"]


def test_deploys_ship_the_build_ci_tested_and_smoke_test_it() -> None:
    ci = _steps(_load("ci.yml"), "checks")
    runs = [step.get("run", "") for step in ci]
    assert runs.index("make check-artifacts") < runs.index(
        "tar -czf built-artifacts.tgz .aws-sam/build"
    )
    assert any(step.get("with", {}).get("name") == "built-artifacts" for step in ci)
    deploy = _steps(_load("sam-deploy.yml"), "deploy")
    commands = " ".join(step.get("run", "") for step in deploy)
    assert "make deploy-built" in commands
    assert "make build" not in commands
    assert "make deploy " not in commands
    downloads = [
        s for s in deploy if str(s.get("uses", "")).startswith("actions/download-artifact")
    ]
    assert downloads[0]["with"]["name"] == "built-artifacts"
    assert commands.index("make deploy-built") < commands.index("make smoke")


def test_uv_and_sam_caches() -> None:
    ci = _steps(_load("ci.yml"), "checks")
    cached = {step["with"]["path"] for step in ci if "actions/cache" in str(step.get("uses"))}
    assert cached == {"~/.cache/uv", ".aws-sam/cache"}
