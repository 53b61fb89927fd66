"""The expected environment matrix: the requirements statement the unit tests compare the program to.

Its source is the README's "### Environments" table (README.md), the human-reviewed statement of what
dev, staging and prod must get. This module parses that table, one small parser per row, into one
frozen :class:`Expected` per environment (:data:`EXPECTED`).

It deliberately reads nothing from ``lib/``: the unit tests compare the resources the program registers
to this statement, so a wrong value in the preset table (``lib/config.py``) makes a test fail instead
of moving the expectation along with it. To change what an environment gets, change the README row
(reviewed like any requirement) and the preset together.

A missing row, a row without a parser here, or a cell that does not parse fails at import, naming the
row and the environment (:class:`ExpectationError`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"
HEADING = "### Environments"
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")

MIB = 1024**2


class ExpectationError(ValueError):
    """The README's environment table cannot be read: the message names the row, the environment and the cell."""


@dataclass(frozen=True, kw_only=True)
class Expected:
    """What one environment must get: one field per value of the README's environment table."""

    # Network
    vpc_cidr: str
    az_count: int
    single_nat_gateway: bool
    interface_endpoints: bool
    # ECS services
    min_tasks: int
    max_tasks: int
    task_cpu: int
    task_memory: int
    cpu_target_percent: int
    memory_target_percent: int
    requests_per_target: int
    scale_out_cooldown_seconds: int
    scale_in_cooldown_seconds: int
    ecs_cpu_alarm_percent: int
    ecs_memory_alarm_percent: int
    # Aurora PostgreSQL
    db_instance_class: str
    db_instance_count: int
    db_backup_retention_days: int
    db_backup_window: str
    db_maintenance_window: str
    db_performance_insights: bool
    db_monitoring_interval_seconds: int  # 0: enhanced monitoring off
    db_cpu_alarm_percent: int
    db_connections_alarm: int
    db_freeable_memory_alarm_bytes: int
    db_replica_lag_alarm_ms: int | None  # None: no replica, so no replica lag alarm
    db_deletion_protection: bool
    db_final_snapshot: bool
    # ElastiCache Redis
    cache_node_type: str
    cache_node_count: int
    cache_automatic_failover: bool
    cache_multi_az: bool
    cache_snapshot_retention_days: int
    redis_cpu_alarm_percent: int
    redis_memory_alarm_percent: int
    redis_evictions_alarm: int
    # Load balancer and WAF
    alb_5xx_alarm_count: int
    alb_latency_alarm_seconds: float
    alb_access_log_expiration_days: int
    alb_deletion_protection: bool
    self_signed_certificate_allowed: bool
    waf_rate_limit: int | None  # None: no WAF
    # Logs, account security, protection, keys
    log_retention_days: int
    security_services: bool  # WAF, GuardDuty, AWS Config and CloudTrail, one row in the table
    protect: bool
    retain_on_delete: bool
    kms_deletion_window_days: int

    @property
    def nat_gateways(self) -> int:
        """One shared NAT gateway, or one per availability zone."""
        return 1 if self.single_nat_gateway else self.az_count

    @property
    def enhanced_monitoring(self) -> bool:
        """Aurora enhanced monitoring is on (a non-zero interval)."""
        return self.db_monitoring_interval_seconds > 0


# --- reading the table ---------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_table(text: str) -> dict[str, dict[str, str]]:
    """The first Markdown table under ``### Environments``: row label -> environment -> cell text."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == HEADING)
    except StopIteration:
        raise ExpectationError(f"README.md has no {HEADING!r} section") from None
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    if len(table) < 3 or _cells(table[0]) != ["setting", *ENVIRONMENTS]:
        header = _cells(table[0]) if table else None
        raise ExpectationError(f"README.md, {HEADING}: expected a table headed 'setting | dev | staging | prod', found {header}")
    rows: dict[str, dict[str, str]] = {}
    for line in table[2:]:
        label, *values = _cells(line)
        if len(values) != len(ENVIRONMENTS):
            raise ExpectationError(f"README.md, {HEADING}, row {label!r}: {len(values)} cells, expected {len(ENVIRONMENTS)}")
        if label in rows:
            raise ExpectationError(f"README.md, {HEADING}, row {label!r}: appears twice")
        rows[label] = dict(zip(ENVIRONMENTS, values, strict=True))
    return rows


# --- cell grammar shared by the row parsers -------------------------------------------------------

#: A cell may end with a parenthesised note for the reader ("365 (PCI DSS 10.5.1)"); the note is not parsed.
_NOTE = r"(?:\s+\(.+\))?"
_NOT_APPLICABLE = re.compile(r"n/a" + _NOTE)


def _whole(cell: str) -> int:
    match = re.fullmatch(r"(\d+)" + _NOTE, cell)
    if match is None:
        raise ValueError("expected a whole number, optionally followed by a note in parentheses")
    return int(match.group(1))


def _switch(cell: str, on: str, off: str) -> bool:
    if cell not in (on, off):
        raise ValueError(f"expected {on!r} or {off!r}")
    return cell == on


def _pair(cell: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+) / (\d+)", cell)
    if match is None:
        raise ValueError("expected two whole numbers separated by ' / '")
    return int(match.group(1)), int(match.group(2))


RowParser = Callable[[str], dict[str, Any]]


def _number_row(field: str, scale: int = 1) -> RowParser:
    """A row of whole numbers (times ``scale``) for one field."""

    def parse(cell: str) -> dict[str, Any]:
        return {field: _whole(cell) * scale}

    return parse


def _optional_number_row(field: str) -> RowParser:
    """A row of whole numbers where ``n/a`` (with a note saying why) means the resource does not exist."""

    def parse(cell: str) -> dict[str, Any]:
        return {field: None if _NOT_APPLICABLE.fullmatch(cell) else _whole(cell)}

    return parse


def _on_off_row(*names: str) -> RowParser:
    """A row of ``on``/``off`` for one field (or several fields the row states together)."""

    def parse(cell: str) -> dict[str, Any]:
        value = _switch(cell, "on", "off")
        return dict.fromkeys(names, value)

    return parse


# --- one parser per row -----------------------------------------------------------------------------


def _vpc_cidr(cell: str) -> dict[str, Any]:
    ipaddress.ip_network(cell, strict=True)  # raises ValueError for anything but a network in CIDR form
    return {"vpc_cidr": cell}


def _nat_gateways(cell: str) -> dict[str, Any]:
    return {"single_nat_gateway": _switch(cell, "1 shared", "one per AZ")}


def _task_bounds(cell: str) -> dict[str, Any]:
    match = re.fullmatch(r"(\d+)-(\d+)", cell)
    if match is None or int(match.group(1)) > int(match.group(2)):
        raise ValueError("expected min-max with min <= max, such as 2-4")
    return {"min_tasks": int(match.group(1)), "max_tasks": int(match.group(2))}


def _task_size(cell: str) -> dict[str, Any]:
    cpu, memory = _pair(cell)
    return {"task_cpu": cpu, "task_memory": memory}


def _cooldowns(cell: str) -> dict[str, Any]:
    scale_out, scale_in = _pair(cell)
    return {"scale_out_cooldown_seconds": scale_out, "scale_in_cooldown_seconds": scale_in}


def _aurora_class(cell: str) -> dict[str, Any]:
    match = re.fullmatch(r"(db\.[a-z0-9]+\.[a-z0-9]+)" + _NOTE, cell)
    if match is None:
        raise ValueError("expected an RDS instance class such as db.r6g.large, optionally with a note")
    return {"db_instance_class": match.group(1)}


def _aurora_windows(cell: str) -> dict[str, Any]:
    match = re.fullmatch(r"(\d\d:\d\d-\d\d:\d\d) / ([a-z]{3}:\d\d:\d\d-[a-z]{3}:\d\d:\d\d)", cell)
    if match is None:
        raise ValueError("expected 'hh:mm-hh:mm / ddd:hh:mm-ddd:hh:mm' (backup window / maintenance window)")
    return {"db_backup_window": match.group(1), "db_maintenance_window": match.group(2)}


def _aurora_monitoring(cell: str) -> dict[str, Any]:
    match = re.fullmatch(r"(on|off) / (?:off|(\d+) s)", cell)
    if match is None:
        raise ValueError("expected 'on|off / off|<seconds> s' (Performance Insights / enhanced monitoring)")
    return {"db_performance_insights": match.group(1) == "on", "db_monitoring_interval_seconds": int(match.group(2) or 0)}


def _redis(cell: str) -> dict[str, Any]:
    parts = [part.strip() for part in cell.split(",")]
    if len(parts) < 2:
        raise ValueError("expected '<node type>, <n> node(s)[, failover][, Multi-AZ]'")
    node_type, count, *flags = parts
    if re.fullmatch(r"cache\.[a-z0-9]+\.[a-z0-9]+", node_type) is None:
        raise ValueError(f"{node_type!r} is no ElastiCache node type such as cache.t4g.small")
    nodes = re.fullmatch(r"(\d+) nodes?", count)
    if nodes is None:
        raise ValueError(f"{count!r}: expected '<n> node(s)'")
    unknown = set(flags) - {"failover", "Multi-AZ"}
    if unknown:
        raise ValueError(f"unknown flags {sorted(unknown)}; allowed: failover, Multi-AZ")
    return {
        "cache_node_type": node_type,
        "cache_node_count": int(nodes.group(1)),
        "cache_automatic_failover": "failover" in flags,
        "cache_multi_az": "Multi-AZ" in flags,
    }


def _latency(cell: str) -> dict[str, Any]:
    if re.fullmatch(r"\d+(?:\.\d+)?", cell) is None:
        raise ValueError("expected seconds such as 1.5")
    return {"alb_latency_alarm_seconds": float(cell)}


def _certificate(cell: str) -> dict[str, Any]:
    return {"self_signed_certificate_allowed": _switch(cell, "self-signed fallback allowed", "required")}


def _final_snapshot(cell: str) -> dict[str, Any]:
    return {"db_final_snapshot": _switch(cell, "yes", "no")}


#: Row label (exactly as in the README) -> its parser, in table order.
ROWS: Mapping[str, RowParser] = {
    "VPC CIDR": _vpc_cidr,
    "availability zones": _number_row("az_count"),
    "NAT gateways": _nat_gateways,
    "interface endpoints": _on_off_row("interface_endpoints"),
    "ECS tasks per service (min-max)": _task_bounds,
    "Fargate CPU / memory per task": _task_size,
    "ECS CPU scaling target (%)": _number_row("cpu_target_percent"),
    "ECS memory scaling target (%)": _number_row("memory_target_percent"),
    "ECS requests per task scaling target (ALB requests per minute)": _number_row("requests_per_target"),
    "ECS scale-out / scale-in cooldown (s)": _cooldowns,
    "ECS CPU alarm (%)": _number_row("ecs_cpu_alarm_percent"),
    "ECS memory alarm (%)": _number_row("ecs_memory_alarm_percent"),
    "Aurora PostgreSQL class": _aurora_class,
    "Aurora instances": _number_row("db_instance_count"),
    "backup retention (days)": _number_row("db_backup_retention_days"),
    "Aurora backup / maintenance window (UTC)": _aurora_windows,
    "Performance Insights / enhanced monitoring": _aurora_monitoring,
    "Aurora CPU alarm (%)": _number_row("db_cpu_alarm_percent"),
    "Aurora connections alarm": _number_row("db_connections_alarm"),
    "Aurora freeable memory alarm (MiB, below)": _number_row("db_freeable_memory_alarm_bytes", MIB),
    "Aurora replica lag alarm (ms)": _optional_number_row("db_replica_lag_alarm_ms"),
    "Redis": _redis,
    "Redis snapshot retention (days)": _number_row("cache_snapshot_retention_days"),
    "Redis CPU alarm (%)": _number_row("redis_cpu_alarm_percent"),
    "Redis memory alarm (%)": _number_row("redis_memory_alarm_percent"),
    "Redis evictions alarm (keys per minute)": _number_row("redis_evictions_alarm"),
    "ALB 5xx alarm (errors per 5 minutes, load balancer and targets each)": _number_row("alb_5xx_alarm_count"),
    "ALB p95 latency alarm (s)": _latency,
    "ALB access log expiration (days)": _number_row("alb_access_log_expiration_days"),
    "log retention (days)": _number_row("log_retention_days"),
    "WAF, GuardDuty, AWS Config, CloudTrail": _on_off_row("security_services"),
    "WAF rate limit (requests per 5 minutes per IP)": _optional_number_row("waf_rate_limit"),
    "HTTPS certificate": _certificate,
    "Aurora deletion protection": _on_off_row("db_deletion_protection"),
    "final snapshot on delete": _final_snapshot,
    "Pulumi `protect` + `retainOnDelete` on keys and data stores": _on_off_row("protect", "retain_on_delete"),
    "ALB deletion protection": _on_off_row("alb_deletion_protection"),
    "KMS deletion window (days)": _number_row("kms_deletion_window_days"),
}


def parse(text: str) -> dict[str, Expected]:
    """Parse the README text's environment table into one :class:`Expected` per environment."""
    table = read_table(text)
    missing = [row for row in ROWS if row not in table]
    if missing:
        raise ExpectationError(f"README.md, {HEADING}: rows missing: {missing}")
    unparsed = [row for row in table if row not in ROWS]
    if unparsed:
        # A row nobody parses is a requirement no test checks: give it a parser (and a test) here.
        raise ExpectationError(f"README.md, {HEADING}: rows without a parser in tests/expectations.py: {unparsed}")
    expected: dict[str, Expected] = {}
    for env in ENVIRONMENTS:
        values: dict[str, Any] = {}
        for row, parser in ROWS.items():
            cell = table[row][env]
            try:
                parsed = parser(cell)
            except ValueError as exc:
                raise ExpectationError(f"README.md, {HEADING}, row {row!r}, {env}: cannot parse {cell!r}: {exc}") from None
            values.update(parsed)
        unset = sorted({f.name for f in fields(Expected)} - set(values))
        if unset:
            raise ExpectationError(f"tests/expectations.py: no row sets {unset}")
        expected[env] = Expected(**values)
    return expected


_README_TEXT = README.read_text(encoding="utf-8")

#: The README table as text cells (row label -> environment -> cell).
TABLE: dict[str, dict[str, str]] = read_table(_README_TEXT)

#: What dev, staging and prod must get, from the README's environment table.
EXPECTED: dict[str, Expected] = parse(_README_TEXT)
