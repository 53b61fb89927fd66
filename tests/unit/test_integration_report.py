"""The integration scenarios' report (tests/integration/report.py), run over a tiny fake suite with ``pytester``.

The fake suite mirrors the real one: a session-scoped fixture parametrized by environment, modules whose name
gives the category, and a module whose tests each carry ``@pytest.mark.category``. The report is compared as
text at a fixed width, because the text is what a reader of ``make integration`` sees.
"""

from __future__ import annotations

import textwrap

import pytest

from tools.integration import SkipAudit

pytest_plugins = ["pytester"]

CONFTEST = """
from pathlib import Path

import pytest

from tests.integration import report


def pytest_configure(config):
    report.install(config, Path(__file__).parent)


@pytest.fixture(scope="session", params=("dev", "staging", "prod"))
def deployed(request):
    return request.param
"""

SUITE = {
    "test_payment_path": '''
        def test_card_payments_arrive_over_https(deployed):
            """A card payment reaches the platform only over HTTPS: card data never crosses the internet in clear text."""

        def test_plain_http_only_redirects(deployed):
            """Port 80 only redirects to HTTPS."""
            assert deployed != "staging", "staging forwards plain HTTP"

        def test_outputs_name_every_resource():
            """Operators find every identifier
            in the stack outputs.

            This paragraph is detail, not the business context.
            """
    ''',
    "test_high_availability": '''
        import pytest

        def test_zones(deployed):
            """Losing one zone leaves every tier running."""
            if deployed == "dev":
                pytest.skip("dev runs in one zone")

        def test_failover(deployed):
            pass
    ''',
    "test_running_platform": '''
        import pytest

        @pytest.mark.category("cross-environment")
        def test_dev_cannot_reach_prod():
            """dev cannot log in to prod's database."""

        @pytest.mark.category("payment path")
        def test_retry_is_idempotent():
            """A retry with the same key is the same payment."""
    ''',
}

EXPECTED = """\
====================== integration scenarios by category =======================
--------------------------------- payment path ---------------------------------
PASS  test_card_payments_arrive_over_https [dev, staging, prod]
      A card payment reaches the platform only over HTTPS: card data never
      crosses the internet in clear text.
FAIL  test_plain_http_only_redirects [FAIL staging; PASS dev, prod]
      Port 80 only redirects to HTTPS.
PASS  test_outputs_name_every_resource
      Operators find every identifier in the stack outputs.
PASS  test_retry_is_idempotent
      A retry with the same key is the same payment.
------------------------------ high availability -------------------------------
SKIP  test_zones [SKIP dev; PASS staging, prod]
      Losing one zone leaves every tier running.
PASS  test_failover [dev, staging, prod]
      (no docstring: this scenario does not state its business context)
------------------------------ cross-environment -------------------------------
PASS  test_dev_cannot_reach_prod
      dev cannot log in to prod's database.
----------------------------------- summary ------------------------------------
category           scenarios  runs  passed  failed  skipped
payment path               4     8       7       1        0
high availability          2     6       5       0        1
security and PCI           0     0       0       0        0
scaling                    0     0       0       0        0
disaster recovery          0     0       0       0        0
monitoring                 0     0       0       0        0
cost                       0     0       0       0        0
performance                0     0       0       0        0
cross-environment          1     1       1       0        0
total                      7    15      13       1        1
1 scenario(s) state no business context (no docstring): test_failover"""


@pytest.fixture(autouse=True)
def bare_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs load no installed plugin (hypothesis, xdist, cov...): each run would re-import them, seconds each."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The fake integration suite, reported 80 columns wide (the width of a CI log)."""
    monkeypatch.setenv("COLUMNS", "80")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(**{name: textwrap.dedent(source) for name, source in SUITE.items()})
    return pytester


def run(pytester: pytest.Pytester, *args: str, audit: SkipAudit | None = None) -> pytest.RunResult:
    # In process: the plugin imports from this checkout, and the audit object is read back afterwards.
    return pytester.runpytest_inprocess("-v", "-p", "no:cacheprovider", *args, plugins=[audit] if audit else [])


def report_section(result: pytest.RunResult) -> str:
    """The report's lines: from its heading to pytest's next ``=`` section."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "integration scenarios by category" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("="))
    return "\n".join(lines[start:end])


def test_scenarios_are_grouped_by_category_with_their_context_and_a_summary(suite: pytest.Pytester) -> None:
    result = run(suite, "--strict-markers")
    assert report_section(result) == EXPECTED
    # The report's total is pytest's: same runs, same outcomes.
    result.assert_outcomes(passed=13, failed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_pytest_own_result_lines_stay(suite: pytest.Pytester) -> None:
    result = run(suite)
    result.stdout.fnmatch_lines_random(
        [
            "test_payment_path.py::test_card_payments_arrive_over_https[[]dev[]] PASSED*",
            "test_payment_path.py::test_plain_http_only_redirects[[]staging[]] FAILED*",
            "test_high_availability.py::test_zones[[]dev[]] SKIPPED*",
            "test_running_platform.py::test_dev_cannot_reach_prod PASSED*",
        ]
    )


def test_the_report_fits_the_terminal_and_writes_no_control_codes(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    result = run(suite)
    section = report_section(result).splitlines()
    assert max(len(line) for line in section) <= 60
    # A name and its environments too long for one line: the environments move below, whole.
    assert section[1:4] == [
        "----------------------- payment path -----------------------",
        "PASS  test_card_payments_arrive_over_https",
        "      [dev, staging, prod]",
    ]
    assert "\x1b" not in result.stdout.str()  # not a tty: plain text for the CI log


def test_a_scenario_without_a_category_stops_the_run(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_new_concern='def test_something(deployed):\n    """Something new."""\n')
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: 1 integration scenario(s) have no report category:",
            "  test_new_concern.py::test_something: no @pytest.mark.category(...) and module test_new_concern has no default*",
            "Add the module to MODULE_CATEGORIES*",
        ]
    )
    result.assert_outcomes()  # nothing ran: a new module cannot slip into the report uncategorised


def test_an_unknown_category_stops_the_run(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_running_platform='import pytest\n\n@pytest.mark.category("payments")\ndef test_x():\n    """X."""\n')
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["  test_running_platform.py::test_x: @pytest.mark.category('payments') names none of*"])


def test_a_category_marker_overrides_the_module_default(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_cost='import pytest\n\n@pytest.mark.category("scaling")\ndef test_x():\n    """Scales."""\n')
    section = report_section(run(suite, "test_cost.py"))
    assert "------ scaling ------" in section and "------ cost ------" not in section
    assert "scaling                    1     1       1       0        0" in section


def test_tests_outside_the_root_are_left_alone(pytester: pytest.Pytester) -> None:
    # `pytest tests` collects the unit tests beside the integration ones: only the latter need a category.
    pytester.mkdir("integration")
    pytester.path.joinpath("integration", "conftest.py").write_text(CONFTEST)
    pytester.path.joinpath("integration", "test_cost.py").write_text('def test_cheap():\n    """Dev is cheap."""\n')
    pytester.mkdir("unit")
    pytester.path.joinpath("unit", "test_anything.py").write_text("def test_unit():\n    pass\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.OK
    section = report_section(result)
    assert "test_cheap" in section and "test_unit" not in section


def test_runs_that_never_started_are_counted(suite: pytest.Pytester) -> None:
    section = report_section(run(suite, "-x"))
    assert "collected run(s) did not run (the session stopped early)" in section


def test_the_audit_fails_a_run_with_an_undocumented_scenario(suite: pytest.Pytester) -> None:
    audit = SkipAudit()
    run(suite, audit=audit)
    assert audit.undocumented == [f"test_high_availability.py::test_failover[{env}]" for env in ("dev", "staging", "prod")]
    # The scenario is named once: the fix, a docstring, is made once whatever the environments.
    assert audit.failures()[-2:] == [
        "FAILED: 1 scenario(s) have no docstring stating their business context:",
        "  test_high_availability.py::test_failover",
    ]


def test_the_audit_passes_a_documented_suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_cost='def test_cheap(deployed):\n    """Dev is cheap."""\n')
    audit = SkipAudit()
    run(pytester, audit=audit)
    assert audit.undocumented == [] and audit.failures() == []
