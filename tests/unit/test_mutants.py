"""tools/mutants.py: the mutation list matches lib/, mutants never touch the tree they came from, and the campaign
judges mutants by their suites (issue #12). The real suites are not run here: fake ones stand in for them."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tools import integration, mutants
from tools.mutants import KILLED, MUTATIONS, NOT_RUN, SURVIVED, Mutation, MutationError

ROOT = Path(__file__).resolve().parents[2]
BY_ID = {m.id: m for m in MUTATIONS}

#: The survivors issue #12 names: each must stay on the list.
NAMED_IN_THE_ISSUE = (
    "prod-cpu-alarm-threshold",
    "prod-kms-deletion-window",
    "prod-redis-node-type",
    "prod-cpu-scaling-target",
    "prod-monitoring-interval",
    "health-check-path",
    "private-routes-first-nat",
    "staging-log-retention",
    "alarm-operator-flipped",
    "secrets-decrypt-no-via-service",
    "task-trust-no-source-account",
    "alarms-key-no-cloudwatch",
    "logs-key-no-encryption-context",
    "sns-publish-anyone",
    "prod-redis-snapshot-retention",
    "prod-min-tasks",
)


# --- the list -------------------------------------------------------------------------------------------


def test_the_list_has_at_least_40_mutations_with_unique_ids() -> None:
    ids = [m.id for m in MUTATIONS]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})


def test_the_issues_named_survivors_are_on_the_list() -> None:
    assert set(NAMED_IN_THE_ISSUE) <= set(BY_ID)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_each_entry_is_well_formed(mutation: Mutation) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", mutation.id)
    assert mutation.file.startswith("lib/") and mutation.file.endswith(".py")
    assert mutation.replacement != mutation.original
    # Texts are compared without indentation: surrounding whitespace would never match.
    assert mutation.original == mutation.original.strip() and mutation.original
    assert mutation.replacement == mutation.replacement.strip()
    assert "\n" not in mutation.original + mutation.replacement + mutation.description
    assert 0 < len(mutation.description) <= 90


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_each_original_line_occurs_exactly_once_in_its_file(mutation: Mutation) -> None:
    text = (ROOT / mutation.file).read_text(encoding="utf-8")
    assert [line.strip() for line in text.splitlines()].count(mutation.original) == 1


def test_each_original_line_occurs_exactly_once() -> None:
    # In the working tree, which is what `make mutants` copies: a lib/ edit that moves a line fails here first.
    texts = {path: (ROOT / path).read_text(encoding="utf-8") for path in {m.file for m in MUTATIONS}}
    for mutation in MUTATIONS:
        lines = [line.strip() for line in texts[mutation.file].splitlines()]
        assert lines.count(mutation.original) == 1, mutation.id


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_each_mutant_is_valid_python_differing_in_exactly_its_line(mutation: Mutation) -> None:
    original = (ROOT / mutation.file).read_text(encoding="utf-8")
    mutated, number = mutants.mutate_text(original, mutation)
    ast.parse(mutated, filename=mutation.file)  # a mutant that does not even parse measures nothing
    before, after = original.splitlines(), mutated.splitlines()
    assert len(before) == len(after)
    assert [i + 1 for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [number]
    assert after[number - 1].strip() == mutation.replacement


def test_check_all_finds_nothing_wrong_with_the_list() -> None:
    assert mutants.check_all(ROOT) == []


# --- applying and restoring ------------------------------------------------------------------------------

SAMPLE = "settings = dict(\n    retention=90,\n    encrypted=True,\n)\n"


def test_find_line_refuses_a_missing_or_repeated_line() -> None:
    with pytest.raises(MutationError, match="exactly once; found no line"):
        mutants.find_line(SAMPLE, Mutation("gone", "lib/x.py", "retention=30,", "retention=1,", "d"))
    with pytest.raises(MutationError, match="found lines 2, 3"):
        mutants.find_line("a\n  x = 1\n  x = 1\n", Mutation("twice", "lib/x.py", "x = 1", "x = 2", "d"))


def test_the_replacement_keeps_indentation_and_line_endings() -> None:
    crlf = SAMPLE.replace("\n", "\r\n")
    mutated, number = mutants.mutate_text(crlf, Mutation("m", "lib/x.py", "retention=90,", "retention=30,", "d"))
    assert number == 2
    assert mutated == crlf.replace("    retention=90,", "    retention=30,")
    # An empty replacement empties the line but keeps it: later line numbers do not move.
    removed, _ = mutants.mutate_text(SAMPLE, Mutation("m", "lib/x.py", "encrypted=True,", "", "d"))
    assert removed == "settings = dict(\n    retention=90,\n\n)\n"


@pytest.mark.parametrize("content", [SAMPLE.encode(), SAMPLE.replace("\n", "\r\n").encode(), SAMPLE.rstrip("\n").encode()])
def test_applied_restores_the_file_byte_for_byte(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "lib" / "x.py"
    path.parent.mkdir()
    path.write_bytes(content)
    mutation = Mutation("m", "lib/x.py", "encrypted=True,", "encrypted=False,", "d")
    with mutants.applied(tmp_path, mutation) as number:
        assert number == 3
        assert b"encrypted=False," in path.read_bytes()
    assert path.read_bytes() == content
    with pytest.raises(KeyboardInterrupt), mutants.applied(tmp_path, mutation):
        raise KeyboardInterrupt  # Ctrl-C in the middle of a suite
    assert path.read_bytes() == content


def test_applied_restores_every_real_mutation_on_a_copy(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "lib", tmp_path / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    before = {p: p.read_bytes() for p in (tmp_path / "lib").rglob("*.py")}
    for mutation in MUTATIONS:
        with mutants.applied(tmp_path, mutation):
            assert (tmp_path / mutation.file).read_bytes() != before[tmp_path / mutation.file]
    assert {p: p.read_bytes() for p in (tmp_path / "lib").rglob("*.py")} == before


def test_the_copy_leaves_out_the_virtualenv_git_and_caches_and_links_node_modules(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    for part in ("lib/a.py", ".venv/bin/python", ".git/HEAD", "lib/__pycache__/a.pyc", ".hypothesis/x", "cfn-outputs/o.json"):
        (source / part).parent.mkdir(parents=True, exist_ok=True)
        (source / part).write_text("x")
    (source / "node_modules" / "pkg").mkdir(parents=True)
    copy = mutants.copy_repository(source, tmp_path / "copy")
    assert (copy / "lib" / "a.py").read_text() == "x"
    for left_out in (".venv", ".git", "lib/__pycache__", ".hypothesis", "cfn-outputs"):
        assert not (copy / left_out).exists(), left_out
    assert (copy / "node_modules").is_symlink() and (copy / "node_modules" / "pkg").is_dir()


# --- suites and the campaign -----------------------------------------------------------------------------


def test_the_suites_run_as_the_issue_asks() -> None:
    unit = mutants.suite_command("unit", "py")
    assert unit[:4] == ["py", "-m", "pytest", "tests/unit"] and "-x" in unit and "no:cacheprovider" in unit
    # This file fails in every mutated copy by design (the mutated line is gone): it must not count as a kill.
    assert f"--ignore={Path(__file__).relative_to(ROOT)}" in unit
    assert mutants.suite_command("integration", "py") == ["py", "-m", "tools.integration", "--no-platform", "--", "-x"]
    env = mutants.suite_environment(Path("/somewhere/repo"))
    assert env["PYTHONPATH"] == "/somewhere/repo" and env["PYTHONDONTWRITEBYTECODE"] == "1"


def _fake_suites(monkeypatch: pytest.MonkeyPatch, scripts: dict[str, str]) -> None:
    """Replace each suite by a Python one-liner run in the copy (exit status 0: passed)."""
    monkeypatch.setattr(mutants, "suite_command", lambda suite, python: [python, "-c", scripts[suite]])


def test_run_suite_reports_failure_and_stops_a_suite_at_its_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "hung.pid"
    # The hung suite records its pid, then sleeps far beyond the timeout. No wall-clock bound is asserted: under
    # an ignored SIGINT (a background job inherits one) run_suite waits out its grace period and then SIGKILLs.
    hung_script = f"import os, pathlib, time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(600)"
    _fake_suites(monkeypatch, {"unit": "import sys; print('boom'); sys.exit(3)", "integration": hung_script})
    failed = mutants.run_suite("unit", tmp_path, tmp_path / "logs" / "u.log", python=sys.executable, timeout=30)
    assert not failed.passed and not failed.timed_out and "boom" in failed.log.read_text()
    hung = mutants.run_suite("integration", tmp_path, tmp_path / "logs" / "i.log", python=sys.executable, timeout=2)
    assert not hung.passed and hung.timed_out
    # Stopped, not left running: the suite's process is gone once run_suite returns.
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_failure_lines_name_what_killed_a_mutant() -> None:
    output = "collected 3\nF..\nFAILED tests/unit/test_x.py::test_y - AssertionError: 75 != 95\n1 failed\n"
    assert mutants.failure_lines(output) == ["FAILED tests/unit/test_x.py::test_y - AssertionError: 75 != 95"]
    assert mutants.failure_lines("DEPLOYMENT FAILED: prod: boom\n") == ["DEPLOYMENT FAILED: prod: boom"]
    assert mutants.failure_lines("Traceback ...\n") == ["failed (no summary line; see the log)"]


def _fake_repository(root: Path) -> list[Mutation]:
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "presets.py").write_text("RETENTION = 90\nENCRYPTED = True\n")
    return [
        Mutation("retention", "lib/presets.py", "RETENTION = 90", "RETENTION = 30", "retention lowered"),
        Mutation("encryption", "lib/presets.py", "ENCRYPTED = True", "ENCRYPTED = False", "encryption off"),
    ]


def test_a_campaign_judges_each_mutant_by_its_suites_and_never_touches_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    mutations = _fake_repository(source)
    before = (source / "lib" / "presets.py").read_bytes()
    # "unit" notices the retention, "integration" the encryption: each mutant is killed by exactly one suite.
    check = "import sys; from lib import presets; sys.exit({})"
    _fake_suites(
        monkeypatch, {"unit": check.format("presets.RETENTION != 90"), "integration": check.format("not presets.ENCRYPTED")}
    )
    reports = [tmp_path / "a.json", tmp_path / "b.json"]
    results = mutants.run_campaign(
        mutations,
        ["unit", "integration"],
        workdir=tmp_path / "work",
        python=sys.executable,
        timeout=60,
        report_paths=reports,
        source=source,
    )
    assert [(r.mutation.id, r.line, r.outcome("unit"), r.outcome("integration")) for r in results] == [
        ("retention", 1, KILLED, SURVIVED),
        ("encryption", 2, SURVIVED, KILLED),
    ]
    assert results[0].failures == {"unit": ["failed (no summary line; see the log)"]} and "integration" in results[1].failures
    assert (source / "lib" / "presets.py").read_bytes() == before
    assert (tmp_path / "work" / "repo" / "lib" / "presets.py").read_bytes() == before
    document = json.loads(reports[0].read_text())
    assert document == json.loads(reports[1].read_text()) and document["complete"]
    assert document["score"] == {
        "mutants": 2,
        "unit": {"killed": 1, "run": 2},
        "integration": {"killed": 1, "run": 2},
        "either": {"killed": 2, "run": 2},
        "survivors": [],
    }


def test_a_failing_baseline_stops_the_campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    mutations = _fake_repository(source)
    _fake_suites(monkeypatch, {"unit": "import sys; sys.exit(1)"})
    with pytest.raises(mutants.BaselineError, match="unit suite"):
        mutants.run_campaign(
            mutations, ["unit"], workdir=tmp_path / "w", python=sys.executable, timeout=60, report_paths=[], source=source
        )


def test_a_stale_list_is_refused_before_anything_runs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _fake_repository(source)
    stale = [Mutation("stale", "lib/presets.py", "RETENTION = 365", "RETENTION = 1", "gone")]
    with pytest.raises(MutationError, match="does not match the code"):
        mutants.run_campaign(stale, ["unit"], workdir=tmp_path / "w", python="unused", timeout=1, report_paths=[], source=source)
    assert not (tmp_path / "w").exists()


def test_table_and_score_show_each_suite_and_the_survivors() -> None:
    first, second = MUTATIONS[0], MUTATIONS[1]
    results = [
        mutants.MutantResult(first, 10, {"unit": KILLED, "integration": SURVIVED}),
        mutants.MutantResult(second, 20, {"unit": SURVIVED}),
    ]
    table = mutants.format_table(results).splitlines()
    assert table[0].split() == ["id", "file:line", "description", "unit", "integration"]
    assert table[2].startswith(first.id) and table[2].endswith(SURVIVED) and f"{first.file[4:]}:10" in table[2]
    assert table[3].endswith(NOT_RUN)
    text = mutants.format_score(mutants.score(results))
    assert "killed by unit:        1/2 (50%)" in text
    assert "killed by integration: 0/1 (0%)" in text
    assert "killed by either:      1/2 (50%)" in text
    assert text.endswith(f"Survivors (1): {second.id}")


def test_only_selects_in_list_order_and_refuses_unknown_ids() -> None:
    assert [m.id for m in mutants.select(f"{MUTATIONS[2].id},{MUTATIONS[0].id}")] == [MUTATIONS[0].id, MUTATIONS[2].id]
    with pytest.raises(SystemExit, match="unknown mutation id"):
        mutants.select("no-such-bug")


def test_make_mutants_runs_the_tool_and_is_not_part_of_make_test() -> None:
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "mutants", "ONLY=a,b"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert dry.stdout.splitlines()[-1].split()[-4:] == ["-m", "tools.mutants", "--only", "a,b"]
    test_target = re.search(r"^test:(.*?)##", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert test_target and "mutants" not in test_target.group(1)


# --- tools/integration.py --no-platform ------------------------------------------------------------------


class _Item(SimpleNamespace):
    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.markers.append(marker)


def _report(nodeid: str, *, skipped: bool = True, keywords: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(
        nodeid=nodeid, when="setup", skipped=skipped, passed=not skipped, keywords=dict.fromkeys(keywords, 1), user_properties=[]
    )


def test_no_platform_skips_exactly_the_scenarios_that_need_the_platform() -> None:
    items = [
        _Item(nodeid="a", fixturenames=["deployed", integration.PLATFORM_FIXTURE], markers=[]),
        _Item(nodeid="b", fixturenames=["deployed"], markers=[]),
    ]
    audit = integration.SkipAudit(no_platform=True)
    audit.pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert [m.kwargs["reason"] for m in items[0].markers] == [integration.NO_PLATFORM_REASON] and items[1].markers == []
    for report in (_report("a"), _report("b"), _report("live", keywords=("live_aws",))):
        audit.pytest_runtest_logreport(report)
    assert (audit.platform_skips, audit.other_skips, audit.live_skips) == (["a"], ["b"], ["live"])


def test_without_no_platform_a_platform_scenario_skip_is_not_allowed() -> None:
    items = [_Item(nodeid="a", fixturenames=[integration.PLATFORM_FIXTURE], markers=[])]
    audit = integration.SkipAudit()
    audit.pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert items[0].markers == []
    audit.pytest_runtest_logreport(_report("a"))
    assert audit.other_skips == ["a"] and audit.platform_skips == []
