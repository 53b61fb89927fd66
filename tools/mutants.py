"""``make mutants``: how many realistic configuration bugs do the unit and integration suites catch?

A fixed, reviewed list of single-line mutations of ``lib/`` (:data:`MUTATIONS`): each names its file, the
exact text of the line it changes (which must occur exactly once in that file, or the tool refuses: the list
cannot silently drift away from the code), the replacement and the bug it simulates. Each mutant is run
against a private copy of the repository, never the working tree:

1. the repository is copied once into a temporary directory (without ``.venv``, ``node_modules``, ``.git``
   and caches);
2. the unmutated copy must pass every selected suite (the baseline), or nothing is measured;
3. for each mutation: change the one line in the copy, run the unit suite (``pytest tests/unit -x``) and the
   integration suite (``python -m tools.integration --no-platform -- -x``: emulator, dev/staging/prod
   deployed, the scenarios that do not need the running platform), then restore the line byte for byte.

A mutant is killed by a suite when that suite fails. The table, the score (killed by unit, by integration,
by either) and the survivors are printed, and the result is written as JSON to the work directory and to
``mutants-report.json`` in the current directory (git-ignored)::

    python -m tools.mutants [--only ID[,ID...]] [--suites unit,integration] [--list] [--keep-copy]

A whole campaign of the 56 mutants took 2,398 s (40 minutes) on two cores; ``--only`` runs a few.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Not copied: the virtualenv (the main one's interpreter runs the suites), npm packages (linked instead, see
#: :func:`copy_repository`), version control, caches and the outputs of earlier local deployments.
EXCLUDED = frozenset(
    {
        ".venv",
        "node_modules",
        ".git",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        "__pycache__",
        ".coverage",
        "htmlcov",
        "cfn-outputs",
        ".deploy",
        "mutants-report.json",
    }
)

SUITES = ("unit", "integration")
REPORT_NAME = "mutants-report.json"

#: This tool's own tests: they check the list against the tree they run in, so in a mutated copy they fail by
#: design (the mutated line is gone). They judge the list, not lib/: counting them would kill every mutant.
OWN_TESTS = "tests/unit/test_mutants.py"

#: The suites exactly as a mutant meets them. ``-x`` stops at the first failure: one is enough to kill.
UNIT_COMMAND = (
    *("-m", "pytest", "tests/unit", "-x", "-q", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider"),
    f"--ignore={OWN_TESTS}",
)
INTEGRATION_COMMAND = ("-m", "tools.integration", "--no-platform", "--", "-x")

#: A suite that runs this long is stopped and counted as failed (a hang is a kill, as in any mutation tool).
DEFAULT_TIMEOUT_SECONDS = 1800

KILLED = "killed"
SURVIVED = "survived"
NOT_RUN = "not run"


class MutationError(RuntimeError):
    """A mutation does not match its file (its line is gone or ambiguous): the list needs a review."""


class BaselineError(RuntimeError):
    """The unmutated copy fails a suite: no mutant could be judged against it."""


@dataclass(frozen=True)
class Mutation:
    """One single-line bug: in ``file``, the line whose text (without indentation) is ``original`` becomes ``replacement``.

    ``replacement`` is written with the original line's indentation; an empty replacement deletes the line's
    content but keeps the line (line numbers stay stable, and a removed dict entry or call stays valid Python).
    """

    id: str
    file: str
    original: str
    replacement: str
    description: str


# --- the list -------------------------------------------------------------------------------------------
# Each entry is a bug a reviewer could plausibly wave through: a preset value off by one notch, a condition
# dropped while tidying a policy, a copy-pasted argument. The first block is the named survivors.

CONFIG = "lib/config.py"
KEYS = "lib/components/keys.py"
KEY_POLICIES = "lib/key_policies.py"
IAM = "lib/iam_policies.py"
RESOURCE_POLICIES = "lib/resource_policies.py"
SECURITY_GROUPS = "lib/components/security_groups.py"
DATABASE = "lib/components/database.py"
CACHE = "lib/components/cache.py"
LOAD_BALANCER = "lib/components/load_balancer.py"
NETWORK = "lib/components/network.py"
COMPUTE = "lib/components/compute.py"
OBSERVABILITY = "lib/components/observability.py"

_PROD_NETWORK = 'network=NetworkSettings(vpc_cidr="10.2.0.0/16", az_count=3, single_nat_gateway=False, interface_endpoints=True),'

MUTATIONS: tuple[Mutation, ...] = (
    # --- the named survivors ---------------------------------------------------------------------
    Mutation(
        "prod-cpu-alarm-threshold",
        CONFIG,
        "cpu_alarm_percent=75,",
        "cpu_alarm_percent=95,",
        "prod ECS CPU alarm raised 75% -> 95%: pages only once tasks are pegged",
    ),
    Mutation(
        "prod-kms-deletion-window",
        CONFIG,
        "keys=KeySettings(deletion_window_days=30),",
        "keys=KeySettings(deletion_window_days=7),",
        "prod KMS deletion window 30 -> 7 days: a mistaken key deletion is final sooner",
    ),
    Mutation(
        "prod-redis-node-type",
        CONFIG,
        'node_type="cache.r6g.large",',
        'node_type="cache.t4g.micro",',
        "prod Redis on cache.t4g.micro instead of cache.r6g.large",
    ),
    Mutation(
        "prod-cpu-scaling-target",
        CONFIG,
        "cpu_target_percent=60,",
        "cpu_target_percent=90,",
        "prod ECS CPU scaling target 60% -> 90%: scale-out starts too late",
    ),
    Mutation(
        "prod-monitoring-interval",
        CONFIG,
        "monitoring_interval_seconds=15,",
        "monitoring_interval_seconds=60,",
        "prod Aurora enhanced monitoring every 60 s instead of 15 s",
    ),
    Mutation(
        "health-check-path",
        LOAD_BALANCER,
        "path=service.health_check_path,",
        'path="/health",',
        "target groups health-check /health, outside every service's path",
    ),
    Mutation(
        "private-routes-first-nat",
        NETWORK,
        "nat = nats[0] if settings.single_nat_gateway else nats[i]",
        "nat = nats[0]",
        "staging/prod private route tables all use the first AZ's NAT gateway",
    ),
    Mutation(
        "staging-log-retention",
        CONFIG,
        "log_retention_days=90,",
        "log_retention_days=30,",
        "staging log retention 90 -> 30 days",
    ),
    Mutation(
        "alarm-operator-flipped",
        OBSERVABILITY,
        'LESS = "LessThanThreshold"',
        'LESS = "GreaterThanThreshold"',
        "tasks-low and memory-low alarms compare the wrong way round",
    ),
    Mutation(
        "secrets-decrypt-no-via-service",
        IAM,
        'condition={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},',
        "",
        "migrate execution role may kms:Decrypt with the data key outside Secrets Manager",
    ),
    Mutation(
        "task-trust-no-source-account",
        IAM,
        '"EcsTasksAssumeRole", ECS_TASKS_PRINCIPAL, {"StringEquals": {"aws:SourceAccount": account_id}}',
        '"EcsTasksAssumeRole", ECS_TASKS_PRINCIPAL, None',
        "ECS task/execution role trust loses its aws:SourceAccount condition",
    ),
    Mutation(
        "alarms-key-no-cloudwatch",
        KEY_POLICIES,
        '_service_grant("AllowCloudWatchAlarmsToPublish", "cloudwatch.amazonaws.com", list(SNS_PUBLISHER_ACTIONS)),',
        '_service_grant("AllowCloudWatchAlarmsToPublish", "sns.amazonaws.com", list(SNS_PUBLISHER_ACTIONS)),',
        "alarms key loses CloudWatch's grant: alarm notifications silently dropped",
    ),
    Mutation(
        "logs-key-no-encryption-context",
        KEY_POLICIES,
        '{"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:*"}},',
        "",
        "logs key usable by CloudWatch Logs for any account's log groups",
    ),
    Mutation(
        "sns-publish-anyone",
        RESOURCE_POLICIES,
        '{"Service": CLOUDWATCH_SERVICE},',
        '"*",',
        'alarm topic lets principal "*" publish, not only CloudWatch',
    ),
    Mutation(
        "prod-redis-snapshot-retention",
        CONFIG,
        "snapshot_retention_days=14,",
        "snapshot_retention_days=1,",
        "prod Redis snapshots kept 1 day instead of 14",
    ),
    Mutation(
        "prod-min-tasks",
        CONFIG,
        "min_tasks=3,",
        "min_tasks=2,",
        "prod minimum/desired tasks per service 3 -> 2: fewer tasks than AZs",
    ),
    # --- presets -------------------------------------------------------------------------------------------
    Mutation(
        "prod-backup-retention",
        CONFIG,
        "backup_retention_days=30,",
        "backup_retention_days=7,",
        "prod Aurora backups kept 7 days instead of 30",
    ),
    Mutation(
        "prod-db-deletion-protection",
        CONFIG,
        "deletion_protection=True,",
        "deletion_protection=False,",
        "prod Aurora cluster without deletion protection",
    ),
    Mutation(
        "prod-db-single-instance",
        CONFIG,
        "instance_count=3,",
        "instance_count=1,",
        "prod Aurora with one instance: no reader to fail over to",
    ),
    Mutation(
        "prod-log-retention",
        CONFIG,
        "log_retention_days=365,",
        "log_retention_days=90,",
        "prod log retention 365 -> 90 days (PCI DSS 10.5.1 asks for a year)",
    ),
    Mutation(
        "prod-two-azs",
        CONFIG,
        _PROD_NETWORK,
        _PROD_NETWORK.replace("az_count=3", "az_count=2"),
        "prod VPC spread over 2 availability zones instead of 3",
    ),
    # --- security groups -----------------------------------------------------------------------------------
    Mutation(
        "sg-services-from-vpc",
        SECURITY_GROUPS,
        'self._ingress(f"svc-in-alb-{port}", services, port, Peer(security_group_id=alb.id), f"from the ALB on {port}")',
        'self._ingress(f"svc-in-alb-{port}", services, port, Peer(cidr=args.vpc_cidr), f"from the ALB on {port}")',
        "services accept their port from the whole VPC CIDR, not the ALB group",
    ),
    Mutation(
        "sg-all-protocols",
        SECURITY_GROUPS,
        'ip_protocol="tcp",',
        'ip_protocol="-1",',
        "every security-group rule allows all protocols and ports",
    ),
    Mutation(
        "sg-port-range",
        SECURITY_GROUPS,
        "to_port=port,",
        "to_port=65535,",
        "every security-group rule opens a range up to 65535, not one port",
    ),
    Mutation(
        "sg-alb-http-removed",
        SECURITY_GROUPS,
        'self._ingress("alb-in-http", alb, HTTP, internet, "HTTP from the internet, only to redirect to HTTPS")',
        "",
        "ALB no longer accepts port 80: the HTTP -> HTTPS redirect is unreachable",
    ),
    # --- keys ----------------------------------------------------------------------------------------------
    Mutation(
        "kms-rotation-off",
        KEYS,
        "enable_key_rotation=True,",
        "enable_key_rotation=False,",
        "automatic KMS key rotation off on every key",
    ),
    Mutation(
        "kms-admin-anyone",
        KEY_POLICIES,
        'principal={"AWS": account_root_arn(account_id, partition)},',
        'principal={"AWS": "*"},',
        "key policies grant kms:* to every AWS principal, not the account",
    ),
    Mutation(
        "cloudtrail-key-no-encryption-context",
        KEY_POLICIES,
        '"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account_id}:trail/*"},',
        "",
        "audit key: CloudTrail grant no longer pinned to this account's trails",
    ),
    # --- data tier -----------------------------------------------------------------------------------------
    Mutation(
        "aurora-unencrypted",
        DATABASE,
        "storage_encrypted=True,",
        "storage_encrypted=False,",
        "Aurora storage not encrypted at rest",
    ),
    Mutation(
        "aurora-force-ssl-off",
        DATABASE,
        '"rds.force_ssl": "1",',
        '"rds.force_ssl": "0",',
        "Aurora accepts plaintext connections (rds.force_ssl 0)",
    ),
    Mutation(
        "aurora-publicly-accessible",
        DATABASE,
        "publicly_accessible=False,",
        "publicly_accessible=True,",
        "Aurora instances publicly accessible",
    ),
    Mutation(
        "redis-no-transit-encryption",
        CACHE,
        "transit_encryption_enabled=True,",
        "transit_encryption_enabled=False,",
        "Redis without in-transit encryption (TLS off)",
    ),
    Mutation(
        "redis-no-multi-az",
        CACHE,
        "multi_az_enabled=settings.multi_az,",
        "multi_az_enabled=False,",
        "Redis Multi-AZ ignored: replicas may share the primary's AZ",
    ),
    Mutation(
        "redis-aws-managed-key",
        CACHE,
        "kms_key_id=args.data_key_arn,",
        "kms_key_id=None,",
        "Redis encrypted with the AWS-managed key instead of the data CMK",
    ),
    # --- load balancer -------------------------------------------------------------------------------------
    Mutation(
        "https-listener-plain-http",
        LOAD_BALANCER,
        'protocol="HTTPS",',
        'protocol="HTTP",',
        "the 443 listener speaks plain HTTP",
    ),
    Mutation(
        "https-listener-port",
        LOAD_BALANCER,
        "port=443,",
        "port=8443,",
        "HTTPS listener on 8443 instead of 443",
    ),
    Mutation(
        "tls-policy-legacy",
        LOAD_BALANCER,
        "ssl_policy=settings.tls_policy,",
        'ssl_policy="ELBSecurityPolicy-2016-08",',
        "HTTPS listener accepts TLS 1.0/1.1 (ELBSecurityPolicy-2016-08)",
    ),
    Mutation(
        "redirect-temporary",
        LOAD_BALANCER,
        'redirect=aws.lb.ListenerDefaultActionRedirectArgs(protocol="HTTPS", port="443", status_code="HTTP_301"),',
        'redirect=aws.lb.ListenerDefaultActionRedirectArgs(protocol="HTTPS", port="443", status_code="HTTP_302"),',
        "HTTP -> HTTPS redirect is temporary (302), not permanent",
    ),
    Mutation(
        "health-check-matcher",
        LOAD_BALANCER,
        'matcher="200-399",',
        'matcher="200-499",',
        "health check accepts 4xx: a task answering 404 stays in rotation",
    ),
    Mutation(
        "waf-managed-rules-count-only",
        LOAD_BALANCER,
        "override_action=aws.wafv2.WebAclRuleOverrideActionArgs(none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()),",
        "override_action=aws.wafv2.WebAclRuleOverrideActionArgs(count=aws.wafv2.WebAclRuleOverrideActionCountArgs()),",
        "WAF managed rule groups only count, never block",
    ),
    # --- network -------------------------------------------------------------------------------------------
    Mutation(
        "database-subnets-public-route",
        NETWORK,
        'self._associate(database_rt, database, "database")',
        'self._associate(public_rt, database, "database")',
        "database subnets associated with the public (internet) route table",
    ),
    Mutation(
        "flow-logs-rejects-only",
        NETWORK,
        'traffic_type="ALL",',
        'traffic_type="REJECT",',
        "VPC flow logs record rejected traffic only",
    ),
    Mutation(
        "vpce-from-anywhere",
        NETWORK,
        "cidr_ipv4=vpc_cidr,",
        "cidr_ipv4=ANYWHERE,",
        "interface endpoints' group admits 443 from 0.0.0.0/0, not the VPC",
    ),
    # --- IAM -----------------------------------------------------------------------------------------------
    Mutation(
        "ecr-pull-any-repository",
        IAM,
        'policy_statement("EcrPull", list(ECR_PULL_ACTIONS), resource=_require(repository_arns, "repository_arns")),',
        'policy_statement("EcrPull", list(ECR_PULL_ACTIONS), resource="*"),',
        "execution roles may pull from every ECR repository",
    ),
    Mutation(
        "ecr-push-granted",
        IAM,
        '"ecr:GetDownloadUrlForLayer",',
        '"ecr:GetDownloadUrlForLayer", "ecr:PutImage",',
        "execution roles may also push images (ecr:PutImage)",
    ),
    Mutation(
        "metrics-any-namespace",
        IAM,
        'condition={"StringEquals": {"cloudwatch:namespace": metric_namespace(scope, service)}},',
        "",
        "task roles may publish metrics into any namespace",
    ),
    Mutation(
        "db-connect-any-user",
        IAM,
        'return f"arn:{partition}:rds-db:{region}:{account_id}:dbuser:{cluster_resource_id}/{db_user}"',
        'return f"arn:{partition}:rds-db:{region}:{account_id}:dbuser:{cluster_resource_id}/*"',
        "task roles may rds-db:connect as any database user",
    ),
    # --- resource policies ---------------------------------------------------------------------------------
    Mutation(
        "bucket-tls-deny-misses-objects",
        RESOURCE_POLICIES,
        'return _deny_insecure_transport("s3:*", [arn, f"{arn}/*"])',
        'return _deny_insecure_transport("s3:*", arn)',
        "TLS-only bucket deny covers the bucket, not its objects",
    ),
    Mutation(
        "sns-no-source-arn",
        RESOURCE_POLICIES,
        '"ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"},',
        "",
        "alarm topic policy loses its aws:SourceArn (this account's alarms) condition",
    ),
    # --- observability -------------------------------------------------------------------------------------
    Mutation(
        "tasks-low-missing-not-breaching",
        OBSERVABILITY,
        "Judgement(LESS, 3, 3, BREACHING),",
        "Judgement(LESS, 3, 3, NOT_BREACHING),",
        "tasks-low alarm stays OK when no task reports at all",
    ),
    Mutation(
        "alarms-page-nobody",
        OBSERVABILITY,
        "alarm_actions=self._actions,",
        "alarm_actions=[],",
        "alarms notify nobody when they fire (OK notifications only)",
    ),
    Mutation(
        "alarm-topic-unencrypted",
        OBSERVABILITY,
        "kms_master_key_id=args.alarms_key_arn,",
        "kms_master_key_id=None,",
        "alarm topic not encrypted with the alarms key",
    ),
    # --- autoscaling ---------------------------------------------------------------------------------------
    Mutation(
        "scaling-min-one",
        COMPUTE,
        "min_capacity=settings.min_tasks,",
        "min_capacity=1,",
        "autoscaling may scale every service in to one task",
    ),
    Mutation(
        "scaling-max-is-min",
        COMPUTE,
        "max_capacity=settings.max_tasks,",
        "max_capacity=settings.min_tasks,",
        "autoscaling maximum equals the minimum: services never scale out",
    ),
    Mutation(
        "desired-count-one",
        COMPUTE,
        "desired_count=args.settings.min_tasks,",
        "desired_count=1,",
        "services start with one task whatever the environment's minimum",
    ),
    Mutation(
        "cpu-policy-uses-memory-target",
        COMPUTE,
        '("cpu", "ECSServiceAverageCPUUtilization", settings.cpu_target_percent, None),',
        '("cpu", "ECSServiceAverageCPUUtilization", settings.memory_target_percent, None),',
        "CPU scaling policy tracks the memory target (copy-paste)",
    ),
)


# --- applying one mutation ------------------------------------------------------------------------------


def find_line(text: str, mutation: Mutation) -> int:
    """0-based index of the one line of ``text`` whose content is ``mutation.original``; refuse anything else."""
    matches = [index for index, line in enumerate(text.splitlines()) if line.strip() == mutation.original]
    if len(matches) != 1:
        where = f"lines {', '.join(str(i + 1) for i in matches)}" if matches else "no line"
        raise MutationError(
            f"{mutation.id}: {mutation.file} must contain the line {mutation.original!r} exactly once; found {where}"
        )
    return matches[0]


def mutate_text(text: str, mutation: Mutation) -> tuple[str, int]:
    """``text`` with the mutation applied, and the 1-based number of the changed line.

    The replacement keeps the line's indentation and line ending; nothing else in the text changes.
    """
    index = find_line(text, mutation)
    lines = text.splitlines(keepends=True)
    line = lines[index]
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    indent = body[: len(body) - len(body.lstrip())]
    lines[index] = (indent + mutation.replacement if mutation.replacement else "") + ending
    return "".join(lines), index + 1


def line_number(root: Path, mutation: Mutation) -> int:
    """Where ``mutation`` applies in ``root`` (1-based); raises :class:`MutationError` if it does not."""
    return find_line((root / mutation.file).read_text(encoding="utf-8"), mutation) + 1


def check_all(root: Path, mutations: Sequence[Mutation] = MUTATIONS) -> list[str]:
    """Every problem of the list against the files under ``root`` (empty: every mutation applies)."""
    problems: list[str] = []
    seen: set[str] = set()
    for mutation in mutations:
        if mutation.id in seen:
            problems.append(f"{mutation.id}: duplicate id")
        seen.add(mutation.id)
        if mutation.replacement == mutation.original:
            problems.append(f"{mutation.id}: the replacement is the original line")
        try:
            line_number(root, mutation)
        except (MutationError, OSError) as exc:
            problems.append(str(exc))
    return problems


@contextmanager
def applied(root: Path, mutation: Mutation) -> Iterator[int]:
    """Apply ``mutation`` to the file under ``root`` for the ``with`` block; yield the changed line's number.

    The original bytes are written back whatever happens inside the block (a failed suite, Ctrl-C): the copy
    is reused for the next mutant, so one unrestored line would corrupt every later result.
    """
    path = root / mutation.file
    original = path.read_bytes()
    mutated, number = mutate_text(original.decode("utf-8"), mutation)
    try:
        path.write_bytes(mutated.encode("utf-8"))
        yield number
    finally:
        path.write_bytes(original)


# --- the private copy ----------------------------------------------------------------------------------


def _ignore(directory: str, names: list[str]) -> set[str]:
    """``shutil.copytree`` filter: leave out :data:`EXCLUDED` at every level."""
    del directory
    return {name for name in names if name in EXCLUDED}


def copy_repository(source: Path, destination: Path) -> Path:
    """Copy the repository to ``destination`` (which must not exist) for the mutants to change freely.

    ``node_modules`` is linked, not copied: the diagram tests render with the pinned npm packages, which
    are only read. Symbolic links inside the tree stay links.
    """
    shutil.copytree(source, destination, ignore=_ignore, symlinks=True)
    modules = source / "node_modules"
    if modules.is_dir():
        (destination / "node_modules").symlink_to(modules, target_is_directory=True)
    return destination


# --- running a suite -----------------------------------------------------------------------------------


@dataclass
class SuiteRun:
    """One suite run against the copy: did it pass, how long did it take, where is its output."""

    passed: bool
    seconds: float
    log: Path
    timed_out: bool = False

    def failures(self) -> list[str]:
        """What failed, as the suite's own summary lines say (see :func:`failure_lines`)."""
        if self.timed_out:
            return [f"timed out after {self.seconds:.0f} s"]
        return [] if self.passed else failure_lines(self.log.read_text(encoding="utf-8", errors="replace"))


#: Summary lines that name what failed: pytest's short test summary, a failed deployment, the skip audit.
_FAILURE_PREFIXES = ("FAILED ", "ERROR ", "DEPLOYMENT FAILED", "FAILED: ")
MAX_FAILURE_LINES = 5


def failure_lines(output: str) -> list[str]:
    """The first few lines of a suite's output that say what failed.

    They go into the report beside each kill: a kill by a test unrelated to the mutated line (a timeout on a
    loaded machine) is then visible for what it is.
    """
    found = [line.strip() for line in output.splitlines() if line.startswith(_FAILURE_PREFIXES)]
    return [line[:300] for line in found[:MAX_FAILURE_LINES]] or ["failed (no summary line; see the log)"]


def suite_command(suite: str, python: str) -> list[str]:
    """The command line of ``suite`` (``unit`` or ``integration``) with interpreter ``python``."""
    if suite == "unit":
        return [python, *UNIT_COMMAND]
    if suite == "integration":
        return [python, *INTEGRATION_COMMAND]
    raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")


def suite_environment(copy: Path) -> dict[str, str]:
    """The environment of a suite: the copy first on the import path, and no bytecode written.

    The Makefile exports PYTHONPATH as the main tree; it must be the copy's. Without bytecode files a mutated
    module can never be served from a cache compiled for another version of the same line (same size, same
    modification second).
    """
    env = dict(os.environ)
    env.update(PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1", PULUMI_SKIP_UPDATE_CHECK="true")
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a suite and everything it started (emulator, platform): SIGINT first so it cleans up, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            # The leader is gone; its children (a moto server) may not be: the SIGKILL round reaps them.
        except subprocess.TimeoutExpired:
            continue


def run_suite(suite: str, copy: Path, log: Path, *, python: str, timeout: float) -> SuiteRun:
    """Run ``suite`` in ``copy`` with its output in ``log``; a suite that outlives ``timeout`` counts as failed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("wb") as output:
        # A session of its own: stopping it (timeout, Ctrl-C) stops the emulator and tasks it started too.
        process = subprocess.Popen(
            suite_command(suite, python),
            cwd=copy,
            env=suite_environment(copy),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            return SuiteRun(False, time.monotonic() - started, log, timed_out=True)
        except BaseException:
            _stop(process)
            raise
        finally:
            # Whatever the suite left behind in its group (a server it failed to stop) goes with it.
            _kill_group(process.pid)
    return SuiteRun(status == 0, time.monotonic() - started, log)


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a finished suite's process group (nothing, normally)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- the campaign --------------------------------------------------------------------------------------


@dataclass
class MutantResult:
    """What each suite made of one mutant."""

    mutation: Mutation
    line: int
    outcomes: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    #: suite -> what failed in it (only for the suites that killed the mutant).
    failures: dict[str, list[str]] = field(default_factory=dict)

    def outcome(self, suite: str) -> str:
        """``killed``, ``survived`` or ``not run``."""
        return self.outcomes.get(suite, NOT_RUN)

    @property
    def killed(self) -> bool:
        """Killed by at least one suite."""
        return KILLED in self.outcomes.values()


def score(results: Sequence[MutantResult]) -> dict[str, Any]:
    """Killed by each suite, by either, out of how many mutants; and the survivors' ids."""
    total = len(results)
    summary: dict[str, Any] = {"mutants": total}
    for suite in SUITES:
        ran = [r for r in results if r.outcome(suite) != NOT_RUN]
        summary[suite] = {"killed": sum(r.outcome(suite) == KILLED for r in ran), "run": len(ran)}
    summary["either"] = {"killed": sum(r.killed for r in results), "run": total}
    summary["survivors"] = [r.mutation.id for r in results if not r.killed]
    return summary


def _percent(killed: int, total: int) -> str:
    return f"{killed}/{total} ({100 * killed / total:.0f}%)" if total else "0/0"


def format_table(results: Sequence[MutantResult]) -> str:
    """The results as a fixed-width table, one mutant a row."""
    headers = ("id", "file:line", "description", "unit", "integration")
    rows = [
        (
            r.mutation.id,
            f"{r.mutation.file.removeprefix('lib/')}:{r.line}",
            r.mutation.description,
            r.outcome("unit"),
            r.outcome("integration"),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_score(summary: dict[str, Any]) -> str:
    """The score lines and the survivors."""
    total = summary["mutants"]
    lines = [
        f"Mutation score over {total} mutants:",
        f"  killed by unit:        {_percent(summary['unit']['killed'], summary['unit']['run'])}",
        f"  killed by integration: {_percent(summary['integration']['killed'], summary['integration']['run'])}",
        f"  killed by either:      {_percent(summary['either']['killed'], total)}",
    ]
    survivors = summary["survivors"]
    lines.append(f"Survivors ({len(survivors)}): {', '.join(survivors) if survivors else 'none'}")
    return "\n".join(lines)


def report(
    results: Sequence[MutantResult], *, suites: Sequence[str], baseline: dict[str, float], complete: bool
) -> dict[str, Any]:
    """The JSON report: baseline timings, one entry per mutant, the score."""
    return {
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "complete": complete,
        "suites": list(suites),
        "baseline_seconds": {k: round(v, 1) for k, v in baseline.items()},
        "mutants": [
            {
                "id": r.mutation.id,
                "file": r.mutation.file,
                "line": r.line,
                "original": r.mutation.original,
                "replacement": r.mutation.replacement,
                "description": r.mutation.description,
                **{suite: r.outcome(suite) for suite in SUITES},
                "seconds": {k: round(v, 1) for k, v in r.seconds.items()},
                "failures": r.failures,
                "logs": r.logs,
            }
            for r in results
        ],
        "score": score(results),
    }


def _write_reports(document: dict[str, Any], paths: Sequence[Path]) -> None:
    text = json.dumps(document, indent=2) + "\n"
    for path in paths:
        path.write_text(text, encoding="utf-8")


def select(only: str | None) -> list[Mutation]:
    """The mutations named by ``--only`` (comma-separated ids), in list order; all of them without it."""
    if not only:
        return list(MUTATIONS)
    wanted = [part.strip() for part in only.split(",") if part.strip()]
    known = {m.id for m in MUTATIONS}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise SystemExit(f"unknown mutation id(s): {', '.join(unknown)} (python -m tools.mutants --list shows them)")
    return [m for m in MUTATIONS if m.id in wanted]


def _parse_suites(value: str) -> list[str]:
    suites = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SUITES)} (comma-separated)")
    return [s for s in SUITES if s in suites]


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (``make`` stopped, a CI timeout) unwinds like Ctrl-C, so every ``finally`` runs."""
    del signum, frame
    raise KeyboardInterrupt


def run_campaign(
    mutations: Sequence[Mutation],
    suites: Sequence[str],
    *,
    workdir: Path,
    python: str,
    timeout: float,
    report_paths: Sequence[Path],
    source: Path = ROOT,
) -> list[MutantResult]:
    """Copy, baseline, then each mutant in turn; the report is rewritten after every mutant."""
    problems = check_all(source, mutations)
    if problems:
        raise MutationError("the mutation list does not match the code:\n  " + "\n  ".join(problems))
    copy = copy_repository(source, workdir / "repo")
    logs = workdir / "logs"
    print(f"Copied the repository to {copy}", flush=True)

    baseline: dict[str, float] = {}
    for suite in suites:
        run = run_suite(suite, copy, logs / f"baseline-{suite}.log", python=python, timeout=timeout)
        baseline[suite] = run.seconds
        verdict = "passed" if run.passed else ("timed out" if run.timed_out else "FAILED")
        print(f"Baseline {suite}: {verdict} in {run.seconds:.1f} s", flush=True)
        if not run.passed:
            raise BaselineError(
                f"the unmutated copy fails the {suite} suite (see {run.log}): fix that first\n  " + "\n  ".join(run.failures())
            )

    results: list[MutantResult] = []
    for number, mutation in enumerate(mutations, start=1):
        with applied(copy, mutation) as line:
            result = MutantResult(mutation, line)
            for suite in suites:
                run = run_suite(suite, copy, logs / f"{mutation.id}-{suite}.log", python=python, timeout=timeout)
                result.outcomes[suite] = SURVIVED if run.passed else KILLED
                result.seconds[suite] = run.seconds
                result.logs[suite] = str(run.log)
                if not run.passed:
                    result.failures[suite] = run.failures()
        results.append(result)
        done = ", ".join(f"{suite} {result.outcomes[suite]} ({result.seconds[suite]:.0f} s)" for suite in suites)
        print(f"[{number}/{len(mutations)}] {mutation.id}: {done}", flush=True)
        for suite, lines in result.failures.items():
            print(f"    {suite}: {lines[0]}", flush=True)
        _write_reports(report(results, suites=suites, baseline=baseline, complete=False), report_paths)
    _write_reports(report(results, suites=suites, baseline=baseline, complete=True), report_paths)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the campaign (or ``--list`` the mutations); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", metavar="ID[,ID]", help="run only these mutations")
    parser.add_argument(
        "--suites", type=_parse_suites, default=list(SUITES), help="comma-separated: unit,integration (default: both)"
    )
    parser.add_argument("--list", action="store_true", help="print the mutations, check them against lib/, and exit")
    parser.add_argument("--keep-copy", action="store_true", help="keep the repository copy after the run")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds per suite run")
    args = parser.parse_args(argv)

    mutations = select(args.only)
    if args.list:
        problems = check_all(ROOT, mutations)
        for mutation in mutations:
            print(f"{mutation.id:<40} {mutation.file}: {mutation.description}")
        for problem in problems:
            print(f"ERROR: {problem}", file=sys.stderr)
        return 1 if problems else 0

    workdir = Path(tempfile.mkdtemp(prefix="scalepay-mutants-"))
    report_paths = [workdir / REPORT_NAME, Path.cwd() / REPORT_NAME]
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    try:
        results = run_campaign(
            mutations,
            args.suites,
            workdir=workdir,
            python=sys.executable,
            timeout=args.timeout,
            report_paths=report_paths,
        )
    except (MutationError, BaselineError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nInterrupted: the working tree was never touched; partial results in {workdir / REPORT_NAME}", file=sys.stderr)
        return 130
    finally:
        if not args.keep_copy:
            shutil.rmtree(workdir / "repo", ignore_errors=True)
    print()
    print(format_table(results))
    print()
    print(format_score(score(results)))
    print(f"\nIn {time.monotonic() - started:.0f} s. Report: {report_paths[1]} (and {report_paths[0]}); logs: {workdir / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
