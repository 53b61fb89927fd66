"""The integration scenarios' report: each scenario's result beside its business context, grouped by category.

pytest's ``-v`` lines name a test and its result. A reader of ``make integration`` also needs to know what each
scenario protects and how each concern of the platform fared. After the run, this plugin prints one entry per
scenario: its result (``PASS``/``FAIL``/``SKIP``), its name with the environments it ran in, and the first
paragraph of its docstring (its business context). Entries are grouped by category in :data:`CATEGORIES` order.
A closing table counts the runs per category. pytest's own lines stay as they are; CI counts them.

Every scenario needs a category. By default a scenario gets its module's category from :data:`MODULE_CATEGORIES`.
``@pytest.mark.category("...")`` on a test, or a module's ``pytestmark``, overrides that default. If a test under
the plugin's root has no category, or has one outside :data:`CATEGORIES`, the run stops at collection. That
way a new module cannot slip into the report uncategorised.

Each test's category and business context also travel with its reports, as ``user_properties``
(:data:`CATEGORY_PROPERTY`, :data:`CONTEXT_PROPERTY`). ``tools/integration.py`` reads the context to fail a run in
which any scenario lacks a docstring. JUnit XML gets both as properties.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

# The report's order: how a reader walks the platform, from a payment's path to the cross-environment guarantees.
CATEGORIES: Final = (
    "payment path",
    "high availability",
    "security and PCI",
    "scaling",
    "disaster recovery",
    "monitoring",
    "cost",
    "performance",
    "cross-environment",
)

# Each module's default category. A module missing from this table must mark each of its tests, as
# test_running_platform.py does: its scenarios span several concerns.
MODULE_CATEGORIES: Final = {
    "test_payment_path": "payment path",
    "test_tap_stack": "payment path",
    "test_high_availability": "high availability",
    "test_security_compliance": "security and PCI",
    "test_network_isolation": "security and PCI",
    "test_autoscaling": "scaling",
    "test_disaster_recovery": "disaster recovery",
    "test_monitoring": "monitoring",
    "test_cost": "cost",
    "test_live_traffic": "performance",
    "test_cross_environment": "cross-environment",
}

MARKER: Final = "category"
CATEGORY_PROPERTY: Final = "category"
CONTEXT_PROPERTY: Final = "business_context"
PLUGIN_NAME: Final = "integration-scenario-report"

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
# Order of precedence when a scenario's runs disagree: the entry shows the outcome that needs attention first.
SEVERITY: Final = (FAIL, SKIP, PASS)
INDENT: Final = " " * 6  # the continuation lines' indent: past the "PASS  " status column
MIN_WIDTH: Final = 60  # below this, wrapping breaks every few words and reads worse than overlong lines
NO_CONTEXT: Final = "(no docstring: this scenario does not state its business context)"

_NAME = re.compile(r"^(?P<name>[^\[]+)(?:\[(?P<param>.*)\])?$")


def business_context(item: pytest.Item) -> str | None:
    """The first paragraph of the test's docstring, as one line, or None when it has none.

    The first paragraph is read rather than the first source line: a summary sentence wrapped over two lines
    would otherwise be cut mid-sentence.
    """
    doc = inspect.getdoc(getattr(item, "obj", None)) if isinstance(item, pytest.Function) else None
    if not doc or not doc.strip():
        return None
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def category_of(item: pytest.Item) -> tuple[str | None, str | None]:
    """``(category, None)`` for a categorised test, else ``(None, why not)``."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        if len(marker.args) != 1 or marker.kwargs or marker.args[0] not in CATEGORIES:
            given = ", ".join([*map(repr, marker.args), *(f"{k}={v!r}" for k, v in marker.kwargs.items())])
            return None, f"@pytest.mark.{MARKER}({given}) names none of the categories"
        return str(marker.args[0]), None
    module = item.path.stem
    if module in MODULE_CATEGORIES:
        return MODULE_CATEGORIES[module], None
    return None, f"no @pytest.mark.{MARKER}(...) and module {module} has no default in MODULE_CATEGORIES"


@dataclass
class Run:
    """One collected test (one environment of a scenario) and its outcome once run."""

    nodeid: str
    module: str
    lineno: int
    category: str
    context: str | None
    outcome: str | None = None  # None until its reports arrive; stays None if the session stopped before it

    @property
    def scenario(self) -> str:
        """The test's name within its module, without the parameter: what the environments of a scenario share."""
        return self._parts()[0]

    @property
    def param(self) -> str | None:
        """The parameter id (the environment, for the scenarios the ``deployed`` fixture parametrizes)."""
        return self._parts()[1]

    def _parts(self) -> tuple[str, str | None]:
        match = _NAME.match(self.nodeid.split("::", 1)[-1])
        if match is None:  # a nodeid pytest would not produce; report it whole rather than guess
            return self.nodeid, None
        return match["name"], match["param"]

    @classmethod
    def of(cls, nodeid: str, location: tuple[str, int | None, str], user_properties: Sequence[tuple[str, object]]) -> Run | None:
        """The run an item or a report describes, or None when the plugin did not categorise it (not under its root)."""
        properties = dict(user_properties)
        if CATEGORY_PROPERTY not in properties:
            return None
        context = properties.get(CONTEXT_PROPERTY)
        return cls(
            nodeid=nodeid,
            module=location[0],
            lineno=location[1] or 0,
            category=str(properties[CATEGORY_PROPERTY]),
            context=str(context) if context else None,
        )

    def record(self, report: pytest.TestReport) -> None:
        """Fold one phase's report into the outcome: a failed setup or teardown fails the run, a skip skips it."""
        if report.failed:
            phase = FAIL
        elif report.skipped:  # also an xfail: an expected failure proves nothing either way
            phase = SKIP
        elif report.when == "call":
            phase = PASS
        else:
            return  # a passing setup or teardown says nothing about the scenario yet
        if self.outcome is None or SEVERITY.index(phase) < SEVERITY.index(self.outcome):
            self.outcome = phase


@dataclass
class Scenario:
    """A test function with all its parametrized runs: one entry of the report."""

    category: str
    module: str
    lineno: int
    name: str
    context: str | None
    runs: list[Run] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """The most severe outcome among the runs that ran."""
        return min((run.outcome for run in self.runs if run.outcome), key=SEVERITY.index)

    def environments(self) -> str:
        """``[dev, staging, prod]`` when all runs agree, ``[FAIL staging; PASS dev, prod]`` when they do not."""
        ran = [run for run in self.runs if run.outcome]
        if all(run.param is None for run in ran):
            return ""
        if len({run.outcome for run in ran}) == 1:
            return f"[{', '.join(str(run.param) for run in ran)}]"
        groups = [
            f"{outcome} {', '.join(str(run.param) for run in ran if run.outcome == outcome)}"
            for outcome in SEVERITY
            if any(run.outcome == outcome for run in ran)
        ]
        return f"[{'; '.join(groups)}]"


def scenarios(runs: Iterable[Run]) -> list[Scenario]:
    """Runs that ran, grouped into scenarios, in category order, then source order within a category."""
    found: dict[tuple[str, str], Scenario] = {}
    for run in runs:
        if run.outcome is None:
            continue
        key = (run.module, run.scenario)
        if key not in found:
            found[key] = Scenario(run.category, run.module, run.lineno, run.scenario, run.context)
        found[key].runs.append(run)
    return sorted(found.values(), key=lambda s: (CATEGORIES.index(s.category), s.module, s.lineno))


def _separator(char: str, title: str, width: int) -> str:
    return f" {title} ".center(width, char)


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    # Never break names or long tokens: a node id split in two can no longer be searched for.
    return textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
    )


def render(runs: Sequence[Run], width: int) -> list[str]:
    """The report's lines, no wider than ``width`` where words allow, plain text (CI logs show no colour)."""
    width = max(width, MIN_WIDTH)
    entries = scenarios(runs)
    lines = [_separator("=", "integration scenarios by category", width)]
    for category in CATEGORIES:
        in_category = [s for s in entries if s.category == category]
        if not in_category:
            continue
        lines.append(_separator("-", category, width))
        for scenario in in_category:
            head, environments = f"{scenario.outcome:<4}  {scenario.name}", scenario.environments()
            if environments and len(head) + 1 + len(environments) <= width:
                lines.append(f"{head} {environments}")
            else:
                # Too long for one line: the environments get a line of their own rather than being split mid-list.
                lines.append(head)
                lines += _wrap(environments, width, INDENT, INDENT)
            lines += _wrap(scenario.context or NO_CONTEXT, width, INDENT, INDENT)
    lines += _summary(runs, entries, width)
    return lines


def _summary(runs: Sequence[Run], entries: Sequence[Scenario], width: int) -> list[str]:
    # Runs, not scenarios, are counted: the same unit as pytest's closing line, so the two totals can be compared.
    header = ("category", "scenarios", "runs", "passed", "failed", "skipped")
    rows: list[tuple[str, int, int, int, int, int]] = []
    for category in (*CATEGORIES, "total"):
        # Every category gets a row, even an empty one: a category with no runs is itself worth noticing.
        outcomes = [r.outcome for r in runs if r.outcome and category in ("total", r.category)]
        count = sum(1 for s in entries if category in ("total", s.category))
        rows.append((category, count, len(outcomes), outcomes.count(PASS), outcomes.count(FAIL), outcomes.count(SKIP)))
    label = max(len(row[0]) for row in (header, *rows))
    lines = [_separator("-", "summary", width)]
    for row in (header, *rows):
        cells = zip(row[1:], header[1:], strict=True)  # each number right-aligned under its column's title
        lines.append(f"{row[0]:<{label}}" + "".join(f"{value:>{len(title) + 2}}" for value, title in cells))
    undocumented = sorted({s.name for s in entries if not s.context})
    if undocumented:
        lines += _wrap(
            f"{len(undocumented)} scenario(s) state no business context (no docstring): {', '.join(undocumented)}",
            width,
            "",
            "  ",
        )
    pending = sum(1 for r in runs if r.outcome is None)
    if pending:
        lines.append(f"{pending} collected run(s) did not run (the session stopped early)")
    return lines


class ScenarioReport:
    """The pytest plugin: categorises the tests under ``root``, then prints the report after the run."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.runs: dict[str, Run] = {}

    def pytest_configure(self, config: pytest.Config) -> None:
        """Register the marker, so ``--strict-markers`` accepts it and ``pytest --markers`` explains it."""
        config.addinivalue_line("markers", f"{MARKER}(name): the scenario's report category, one of: {', '.join(CATEGORIES)}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Give every test under the root its category and context; stop the run if any test has no valid category.

        This runs first, so ``-k`` or ``-m`` have not deselected anything yet. A wrong category fails even a
        narrowed run.
        """
        problems: dict[str, str] = {}
        for item in items:
            if not item.path.resolve().is_relative_to(self.root):
                continue  # e.g. the unit tests, when one pytest run collects both suites
            category, problem = category_of(item)
            if category is None:
                problems.setdefault(item.nodeid.split("[", 1)[0], str(problem))
                continue
            item.user_properties += [(CATEGORY_PROPERTY, category), (CONTEXT_PROPERTY, business_context(item) or "")]
        if problems:
            listing = "\n".join(f"  {nodeid}: {why}" for nodeid, why in problems.items())
            raise pytest.UsageError(
                f"{len(problems)} integration scenario(s) have no report category:\n{listing}\n"
                f"Add the module to MODULE_CATEGORIES in tests/integration/report.py, or mark each test with "
                f'@pytest.mark.{MARKER}("..."). Categories: {", ".join(CATEGORIES)}.'
            )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Remember every run about to start, so the report can say which ones never ran."""
        for item in session.items:
            run = Run.of(item.nodeid, item.location, item.user_properties)
            if run is not None:
                self.runs[item.nodeid] = run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Fold each phase's report into its run's outcome."""
        run = self.runs.get(report.nodeid)
        if run is None:
            # Under pytest-xdist the controller collects nothing. Its reports carry what the workers knew.
            run = Run.of(report.nodeid, report.location, report.user_properties)
            if run is None:
                return
            self.runs[report.nodeid] = run
        run.record(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
        """Print the report after pytest's failure tracebacks, before its short summary and closing line."""
        if not any(run.outcome for run in self.runs.values()):
            return  # --collect-only, or a run stopped before its first scenario: nothing to report
        # TerminalWriter's width follows the terminal, or $COLUMNS, or 80 in a CI log; no markup is used, so the
        # lines are the same in a log file as on screen.
        for line in render(list(self.runs.values()), config.get_terminal_writer().fullwidth):
            terminalreporter.write_line(line)


def install(config: pytest.Config, root: Path) -> ScenarioReport:
    """Register the report for the tests under ``root`` (once per session, however often it is called)."""
    existing = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if isinstance(existing, ScenarioReport):
        return existing
    plugin = ScenarioReport(root)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin
