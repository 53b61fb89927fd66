"""``make diff``: settings, resources and key properties that differ between two stacks, as Markdown.

Requirements (issue "see before you deploy", 2): the diff of an environment with itself is empty; staging
vs prod shows the documented differences (README, "Environments") in settings, resources added and removed,
and changed key properties (instance classes, counts, retention, protection); a value set by stack
configuration is marked as such; the output is Markdown tables a reviewer can paste.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lib.config import OVERRIDES, SERVICE_NAMES, SERVICE_OVERRIDES, STACK_SETTINGS
from tools.evaluate import default_config, evaluate
from tools.insight import diff as insight_diff
from tools.insight.diff import Difference, compare, render_markdown, resolved_settings
from tools.insight.graph import Graph

ENVS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def staging_prod(graph: Callable[[str], Graph]) -> Difference:
    return compare(graph("staging"), graph("prod"))


@pytest.mark.parametrize("env", ENVS)
def test_an_environment_compared_with_itself_has_no_differences(env: str, graph: Callable[[str], Graph]) -> None:
    found = compare(graph(env), graph(env))
    assert found.is_empty(), insight_diff.as_json(found)
    assert "No differences" in render_markdown(found)


def test_two_evaluations_of_the_same_stack_do_not_differ(graph: Callable[[str], Graph]) -> None:
    # A second, independent run of the program: registration order and ids must not show up as changes.
    again = Graph(evaluate("dev", default_config("dev")), default_config("dev"))
    assert compare(graph("dev"), again).is_empty()


#: The README's environment table, staging -> prod, as config keys (the rows a reviewer must see).
DOCUMENTED_SETTINGS = {
    "vpcCidr": ("10.1.0.0/16", "10.2.0.0/16"),
    "azCount": ("2", "3"),
    "minTasks": ("2", "3"),
    "maxTasks": ("4", "10"),
    "apiCpu": ("512", "1024"),
    "apiMemory": ("1024", "2048"),
    "dbInstanceClass": ("db.r6g.large", "db.r5.xlarge"),
    "dbInstanceCount": ("2", "3"),
    "dbBackupRetentionDays": ("7", "30"),
    "dbMonitoringInterval": ("60", "15"),
    "cacheNodeType": ("cache.t4g.small", "cache.r6g.large"),
    "cacheNodeCount": ("2", "3"),
    "cacheSnapshotRetentionDays": ("5", "14"),
    "logRetentionDays": ("90", "365"),
    "dbDeletionProtection": ("false", "true"),
    "protectResources": ("false", "true"),
    "albDeletionProtection": ("false", "true"),
    "kmsDeletionWindowDays": ("14", "30"),
}

#: Rows of the same table where staging and prod agree: they must not be reported.
DOCUMENTED_SAME = (
    "singleNatGateway",
    "interfaceEndpoints",
    "wafEnabled",
    "accountSecurityEnabled",
    "dbPerformanceInsights",
    "dbFinalSnapshot",
)


def test_staging_vs_prod_settings_are_the_documented_differences(staging_prod: Difference) -> None:
    rows = {r.key: (r.a, r.b) for r in staging_prod.settings}
    for key, values in DOCUMENTED_SETTINGS.items():
        assert rows.get(key) == values, key
    for key in DOCUMENTED_SAME:
        assert key not in rows, key
    # Preset-only values appear by field path (alarm thresholds), retain-on-delete with protection.
    assert rows["observability.cpu_alarm_percent"] == ("80", "75")
    assert rows["protection.retain_on_delete"] == ("false", "true")
    assert {r.kind for r in staging_prod.settings if "." in r.key} == {"preset"}


def test_staging_vs_prod_resources_added_and_counts(staging_prod: Difference) -> None:
    added = {(r.type, r.name) for r in staging_prod.only_in_b}
    assert ("aws:rds/clusterInstance:ClusterInstance", "database-instance-3") in added
    assert ("aws:ec2/natGateway:NatGateway", "network-nat-c") in added
    assert {("aws:ec2/subnet:Subnet", f"network-{tier}-c") for tier in ("public", "private", "database")} <= added
    assert staging_prod.only_in_a == []
    counts = {t: (a, b) for t, a, b in staging_prod.counts}
    assert counts["aws:rds/clusterInstance:ClusterInstance"] == (2, 3)
    assert counts["aws:ec2/natGateway:NatGateway"] == (2, 3)
    assert counts["aws:ec2/subnet:Subnet"] == (6, 9)
    assert "aws:elasticache/replicationGroup:ReplicationGroup" not in counts, "one group in both; its node count is a property"


def test_staging_vs_prod_key_properties(staging_prod: Difference) -> None:
    changed = {(c.name, c.property): (c.a, c.b) for c in staging_prod.changed}
    expected = {
        ("database-instance-1", "instanceClass"): ("db.r6g.large", "db.r5.xlarge"),
        ("database-cluster", "backupRetentionPeriod"): ("7", "30"),
        ("database-cluster", "deletionProtection"): ("false", "true"),
        ("database-cluster", "protect"): ("false", "true"),
        ("database-cluster", "retainOnDelete"): ("false", "true"),
        ("cache-replication-group", "nodeType"): ("cache.t4g.small", "cache.r6g.large"),
        ("cache-replication-group", "numCacheClusters"): ("2", "3"),
        ("api-service", "desiredCount"): ("2", "3"),
        ("api-scaling-target", "maxCapacity"): ("4", "10"),
        ("api-log-group", "retentionInDays"): ("90", "365"),
        ("keys-data", "deletionWindowInDays"): ("14", "30"),
        ("alb", "enableDeletionProtection"): ("false", "true"),
        ("alb", "#subnets"): ("2", "3"),
    }
    for key, values in expected.items():
        assert changed.get(key) == values, key
    # What is the same in both is not reported (both run Performance Insights, both keep 7 days).
    assert ("database-instance-1", "performanceInsightsEnabled") not in changed
    assert not [c for c in staging_prod.changed if c.property in ("tags", "name")]


def test_markdown_tables_are_ready_to_paste(staging_prod: Difference) -> None:
    text = render_markdown(staging_prod)
    assert "| `dbInstanceClass` | db.r6g.large | db.r5.xlarge |" in text
    assert "| `aws:rds/clusterInstance:ClusterInstance` | 2 | 3 |" in text
    assert "| database | `aws:rds/clusterInstance:ClusterInstance` | `database-instance-3` | scalepay-aurora-prod-3 |" in text
    # Identical changes of several resources are one row naming them all.
    assert "`api-log-group`, `container-insights-logs`, `migrate-log-group`" in text
    # Every row of a table has as many cells as its header (a '|' inside a value is escaped).
    for block in text.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        cells = {line.replace("\\|", "").count("|") for line in rows}
        assert len(cells) <= 1, block


def test_every_declared_setting_is_compared() -> None:
    from lib.config import PRESETS, Environment

    keys = set(resolved_settings(PRESETS[Environment.PROD]))
    declared = {s.key for s in STACK_SETTINGS} | {o.key for o in OVERRIDES}
    declared |= {f"{name}{o.key}" for name in SERVICE_NAMES for o in SERVICE_OVERRIDES}
    assert declared <= keys, declared - keys


def test_a_configured_value_is_marked_and_reaches_the_resources(graph: Callable[[str], Graph]) -> None:
    config = {**default_config("prod"), "scalepayments:dbInstanceCount": "4"}
    changed = Graph(evaluate("prod", config), config)
    found = compare(graph("prod"), changed)
    assert [(r.key, r.a, r.b) for r in found.settings] == [("dbInstanceCount", "3", "4 *(config)*")]
    assert [(r.type, r.name) for r in found.only_in_b] == [("aws:rds/clusterInstance:ClusterInstance", "database-instance-4")]
    assert found.counts == [("aws:rds/clusterInstance:ClusterInstance", 3, 4)]
