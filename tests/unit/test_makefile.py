"""`make help` lists every target with one line each (issue #9.7); the README's two commands exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

MAKEFILE = Path("Makefile").read_text(encoding="utf-8")


def phony_targets() -> set[str]:
    declared = re.search(r"^\.PHONY:(.*?)(?<!\\)$", MAKEFILE, re.MULTILINE | re.DOTALL)
    assert declared, "no .PHONY line"
    return set(declared.group(1).replace("\\\n", " ").split())


def test_every_target_has_a_one_line_help_and_help_lists_them_all() -> None:
    output = subprocess.run(["make", "--no-print-directory", "help"], capture_output=True, text=True, check=True).stdout
    listed = {line.split()[1] for line in output.splitlines() if line.strip().startswith("make ")}
    assert listed == phony_targets()
    for line in output.splitlines():
        assert len(line.split(None, 2)) == 3, f"no description: {line!r}"


def test_deploy_passes_per_run_config_and_switches_to_the_cli() -> None:
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "deploy", "ENV=staging", "CONFIG=minTasks=3 maxTasks=6", "REPLACE=1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[-1]
    assert " ".join(dry.split()).endswith(
        "-m tools.deploy up --env staging --config minTasks=3 --config maxTasks=6 --account-model dedicated --replace"
    )
    assert "--replace" in dry and "--unprotect" not in dry
