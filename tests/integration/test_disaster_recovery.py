"""Disaster recovery: backups, snapshots, deletion protection."""

from __future__ import annotations

from tests.expectations import EXPECTED
from tests.integration.conftest import Deployed
from tests.integration.support import (
    ClientsFor,
    Outputs,
    aurora_cluster,
    redis_group,
)


def test_backups_match_recovery_objectives(deployed: Deployed) -> None:
    """Point-in-time recovery reaches back 1, 7 and 30 days in dev, staging and prod."""
    o, aws = deployed.outputs, deployed.aws
    cluster = aurora_cluster(aws, o)
    assert cluster["BackupRetentionPeriod"] == EXPECTED[deployed.env].db_backup_retention_days
    assert cluster["PreferredBackupWindow"] == EXPECTED[deployed.env].db_backup_window
    assert cluster["CopyTagsToSnapshot"] is True


def test_prod_database_cannot_be_deleted_by_accident(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """A mistaken delete of the prod ledger is refused by AWS itself."""
    o, aws = all_outputs["prod"], clients_for("prod")
    assert aurora_cluster(aws, o)["DeletionProtection"] is True
    attributes = {
        a["Key"]: a["Value"] for a in aws("elbv2").describe_load_balancer_attributes(LoadBalancerArn=o["albArn"])["Attributes"]
    }
    assert attributes["deletion_protection.enabled"] == "true"


def test_dev_can_be_torn_down(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """Dev stays disposable: no deletion protection to get in the way of a rebuild."""
    o, aws = all_outputs["dev"], clients_for("dev")
    assert aurora_cluster(aws, o)["DeletionProtection"] is False


def test_redis_snapshots_are_kept(deployed: Deployed) -> None:
    """The cache can be restored from a daily snapshot going back 1, 5 and 14 days in dev, staging and prod."""
    o, aws = deployed.outputs, deployed.aws
    assert redis_group(aws, o)["SnapshotRetentionLimit"] == EXPECTED[deployed.env].cache_snapshot_retention_days
