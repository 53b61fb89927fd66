"""``make compliance``: run every PCI DSS policy of ``policy/`` over every environment offline.

For each environment the real program is evaluated under the mock runtime
(:func:`tools.evaluate.evaluate` with :func:`tools.evaluate.default_config`), every rule runs
over every resource, and a table shows policy, PCI DSS requirement, enforcement, resources
checked and violations, followed by the violations with their resource names. The exit status
is 1 when any mandatory policy is violated (advisory findings are printed but do not fail), 2
when the program itself cannot be evaluated.

Usage: ``python -m tools.compliance [--env dev --env prod]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from policy.enforcement import ENVIRONMENTS, MANDATORY, enforcement_level, params_for
from policy.rules import ALL_RULES
from policy.rules.base import ResourceRule, Rule, StackResource


@dataclass(frozen=True)
class Finding:
    """One violation of one rule by one resource."""

    resource: str
    resource_type: str
    message: str


@dataclass
class RuleResult:
    """What one rule found in one environment."""

    rule: Rule
    enforcement: str
    checked: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """True when the rule is mandatory here and found something."""
        return self.enforcement == MANDATORY and bool(self.findings)


def run_rules(env: str, resources: Sequence[StackResource], rules: Sequence[Rule] = ALL_RULES) -> list[RuleResult]:
    """Run ``rules`` over ``resources`` with the enforcement and thresholds of ``env``."""
    params = params_for(env)
    types = {r.name: r.type for r in resources}
    results = []
    for rule in rules:
        applicable = [r for r in resources if r.type in rule.resource_types]
        result = RuleResult(rule, enforcement_level(env, rule.name), len(applicable))
        if isinstance(rule, ResourceRule):
            for resource in applicable:
                for message in rule.check(resource.type, resource.props, params):
                    result.findings.append(Finding(resource.name, resource.type, message))
        else:
            for violation in rule.check(resources, params):
                result.findings.append(Finding(violation.resource, types.get(violation.resource, ""), violation.message))
        results.append(result)
    return results


def format_report(env: str, results: Sequence[RuleResult]) -> str:
    """A table of the results and the list of violations, as printed by ``make compliance``."""
    header = ("policy", "domain", "PCI DSS 4.0", "enforcement", "checked", "violations")
    rows = [
        (r.rule.name, r.rule.domain, f"Req {r.rule.requirement}", r.enforcement, str(r.checked), str(len(r.findings)))
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    mandatory = sum(len(r.findings) for r in results if r.enforcement == MANDATORY)
    advisory = sum(len(r.findings) for r in results if r.enforcement != MANDATORY)
    out = [f"== {env}: {len(results)} policies, {mandatory} mandatory and {advisory} advisory violations ==", line(header)]
    out.append(line(["-" * w for w in widths]))
    out.extend(line(row) for row in rows)
    findings = [(r, f) for r in results for f in r.findings]
    if findings:
        out.append("")
        out.append("violations:")
        for result, finding in findings:
            out.append(f"  [{result.enforcement}] {result.rule.name}: {finding.resource} ({finding.resource_type})")
            out.append(f"      {finding.message}")
    return "\n".join(out)


def stack_resources(env: str) -> list[StackResource]:
    """Evaluate the program for ``env`` offline and return its cloud resources (not components)."""
    from tools.evaluate import default_config, evaluate

    evaluation = evaluate(env, default_config(env))
    # Props = inputs (what the provider receives) over the mocked state, which adds ids and ARNs
    # that stack rules use to link resources, as CrossGuard's stack validation sees outputs.
    return [
        StackResource(r.type, r.name, {**r.state, **r.inputs}, r.urn, str(r.state.get("id") or "") or None)
        for r in evaluation.registrations
        if r.custom
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report for the chosen environments; 1 on a mandatory violation, 2 if evaluation fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--env", action="append", choices=ENVIRONMENTS, help="environment(s) to check (default: all)")
    args = parser.parse_args(argv)
    status = 0
    for env in args.env or ENVIRONMENTS:
        try:
            resources = stack_resources(env)
        except Exception as exc:  # report which environment failed and go on
            print(f"== {env}: the program could not be evaluated: {type(exc).__name__}: {exc}\n")
            status = 2
            continue
        results = run_rules(env, resources)
        print(format_report(env, results) + "\n")
        if any(r.blocking for r in results) and status == 0:
            status = 1
    print("compliance: " + ("PASS" if status == 0 else "FAIL (mandatory violations)" if status == 1 else "ERROR"))
    return status


if __name__ == "__main__":
    sys.exit(main())
