"""The local deployment: the real Pulumi program into the moto AWS emulator, with ``pulumi up``/``destroy`` semantics.

    python -m tools.deploy [up] [--env dev|staging|prod|all] [--endpoint URL] [--config KEY=VALUE ...]
                                [--account-model dedicated|shared] [--replace] [--unprotect] [--no-serve]
    python -m tools.deploy destroy --env ... --endpoint URL [--unprotect]
    python -m tools.deploy plan --env ... --endpoint URL [--config ...]
    python -m tools.deploy run --env ... --endpoint URL [--health-check-interval SECONDS]

Configuration is read as ``pulumi up`` reads it (:mod:`tools.stack_config`): Pulumi.yaml defaults,
Pulumi.<stack>.yaml, then ``--config`` (``make deploy CONFIG="minTasks=3 maxTasks=6"``). What an operator
provides by hand on a real account and a stack file cannot hold locally (a trusted certificate, an alarm
subscriber) the deployment provides when the stack does not: a self-signed certificate imported into the
emulator's ACM and an SQS queue standing in for the pager. After the control plane, the release step pushes
each service image into the stack's ECR repositories (:func:`tools.release.images.push_to_emulator`).

What was deployed is recorded per stack and endpoint (:mod:`tools.emulator.state`). Deploying a stack that is
recorded as deployed plans first (:mod:`tools.emulator.plan`): no change is a no-op ("0 changes"); changes are
printed as create/update/replace/delete lines and nothing is touched unless ``--replace`` (destroy, then deploy).
``destroy`` deletes in reverse dependency order and refuses protected resources unless ``--unprotect``.

Without ``--endpoint`` an emulator is started on a free 127.0.0.1 port, the deployed platform is run on it
(:mod:`tools.localplane.platform`: data stores, tasks, front door) and both serve until Ctrl-C (the emulator's
records go with it); with ``--endpoint`` the deployment goes into that emulator and the command exits, and
``run`` runs the platform of what is deployed there.
Each environment gets its own emulated account (``--account-model dedicated``, the default) or all share one
(``shared``: the most protected environment owns the account's singletons and is deployed first).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import faulthandler
import json
import logging
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lib import config as program_config
from tools import stack_config
from tools.emulator import Aws, DeploymentError, EmulatorMocks, account_aws, profiles
from tools.emulator import state as records
from tools.emulator.destroy import ProtectedResourcesError, destroy
from tools.emulator.endpoint import EndpointError, check
from tools.emulator.engine import DEFAULT_REGION, normalize
from tools.emulator.handlers import HANDLERS
from tools.emulator.handlers.tls.index import self_signed
from tools.emulator.plan import Plan, PlanMocks, diff
from tools.evaluate import Evaluation, Registration, evaluate
from tools.outputs import write_outputs
from tools.release.images import ImageRef, push_to_emulator, repositories

ENVIRONMENTS = ("dev", "staging", "prod")
#: One emulated AWS account per environment, as in a real AWS Organization (``dedicated``).
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
#: The one account every environment shares with ``--account-model shared``.
SHARED_ACCOUNT = "444444444444"
#: Which environment owns a shared account's singletons: the most protected one present.
OWNER_PREFERENCE = ("prod", "staging", "dev")
OUTPUT_ROOT = Path("cfn-outputs")
#: Certificates and keys the local deployment generated (the front door serves them); git-ignored.
SECRETS_ROOT = records.ROOT / ".deploy" / "certificates"
SAVE_EVERY = 20


class ChangesPendingError(RuntimeError):
    """A re-run found changes and was not told to replace the stack."""


class PreviousRunError(RuntimeError):
    """A previous deployment into this endpoint did not finish."""


@dataclass(frozen=True)
class Target:
    """One stack to deploy, in the account it goes to, owning the account's singletons or not."""

    stack: str
    account_id: str
    owns_singletons: bool
    owner: str = ""  # the stack that owns the account's singletons (itself when owns_singletons)


def targets(envs: Sequence[str], account_model: str) -> list[Target]:
    """Deployment order and accounts; in a shared account the singleton owner goes first (the others read its detector)."""
    if account_model == "dedicated":
        return [Target(env, ACCOUNTS[env], True, env) for env in envs]
    owner = next((e for e in OWNER_PREFERENCE if e in envs), envs[0])
    ordered = [owner, *(e for e in envs if e != owner)]
    return [Target(env, SHARED_ACCOUNT, env == owner, owner) for env in ordered]


# --- what an operator does by hand before a first deploy --------------------------------------------


def operator_certificate(env: str) -> tuple[bytes, bytes]:
    """A self-signed certificate and key for ``env``'s HTTPS listener, as PEM bytes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    host = f"{env}.scalepay.internal"
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, host), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ScalePayments")]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = self_signed(
        key,
        name,
        now - datetime.timedelta(minutes=5),
        now + datetime.timedelta(days=365),
        [
            (x509.SubjectAlternativeName([x509.DNSName(host), x509.DNSName("localhost")]), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_files(endpoint: str, stack: str) -> tuple[Path, Path]:
    """Where the certificate and key of a stack's imported certificate are kept (ACM never returns the key)."""
    directory = SECRETS_ROOT / records.endpoint_slug(endpoint) / stack
    return directory / "certificate.pem", directory / "key.pem"


def import_operator_certificate(aws: Aws, endpoint: str, stack: str) -> records.ExtraRecord:
    """Import a self-signed certificate into the account's ACM, as an operator does before a first deploy."""
    cert_pem, key_pem = operator_certificate(stack)
    arn: str = aws.client("acm").import_certificate(
        Certificate=cert_pem,
        PrivateKey=key_pem,
        Tags=[{"Key": "Stack", "Value": stack}, {"Key": "Purpose", "Value": "local-emulator-https"}],
    )["CertificateArn"]
    cert_path, key_path = certificate_files(endpoint, stack)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    return records.ExtraRecord("acm-certificate", arn, {"certificate": str(cert_path), "key": str(key_path)})


def create_local_pager(aws: Aws, stack: str) -> records.ExtraRecord:
    """An SQS queue that stands in for the on-call pager: alarms published to the topic land in it."""
    sqs = aws.client("sqs")
    name = stack_config.local_pager_queue(stack)
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # Only SNS, for this account's topics, may send to it (what the subscriber owns on a real account).
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AlarmTopicMayDeliver",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": aws.account_id}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return records.ExtraRecord("sqs-queue", url, {"arn": arn})


# --- progress and recording --------------------------------------------------------------------------


class Progress:
    """Counts created resources: one updating line on a terminal, periodic lines otherwise."""

    def __init__(self, stack: str, stream: TextIO | None = None, every: int = 25) -> None:
        self.stack = stack
        self.stream: TextIO = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.every = every
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, registration: Registration) -> None:
        """on_register callback (runs on Pulumi's worker threads)."""
        if not registration.custom:
            return
        with self._lock:
            self.count += 1
            if self.tty:
                line = f"[{self.stack}] {self.count} resources created  {registration.type} {registration.name}"
                self.stream.write(f"\r{line[:110]:<110}")
                self.stream.flush()
            elif self.count % self.every == 0:
                print(f"[{self.stack}] {self.count} resources created", file=self.stream, flush=True)

    def done(self, seconds: float) -> None:
        """Finish the progress line."""
        if self.tty:
            self.stream.write("\r" + " " * 110 + "\r")
        print(f"[{self.stack}] {self.count} resources created in {seconds:.1f} s", file=self.stream, flush=True)


class RecordingMocks(EmulatorMocks):
    """EmulatorMocks that also remember each data source's answer (a re-run's plan replays them)."""

    def __init__(self, aws: Aws) -> None:
        super().__init__(aws)
        self.answers: dict[str, dict[str, Any]] = {}

    def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Answer from the emulator and record the answer."""
        result, failures = super().call(args)
        self.answers[records.data_source_key(args.token, normalize(dict(args.args)))] = dict(result)
        return result, failures


def _resource_records(mocks: EmulatorMocks, inputs: dict[str, dict[str, Any]]) -> list[records.ResourceRecord]:
    return [
        records.ResourceRecord(
            type=c.type,
            name=c.name,
            urn=c.urn,
            id=c.id,
            inputs=inputs.get(c.urn, {}),
            state=dict(c.state),
            parent=c.parent,
            depends_on=list(c.depends_on),
            protect=c.protect,
            retain_on_delete=c.retain_on_delete,
        )
        for c in list(mocks.created)
    ]


# --- one stack ---------------------------------------------------------------------------------------


@dataclass
class StackResult:
    """What deploying one stack did."""

    stack: str
    record: records.StackRecord
    plan: Plan | None = None
    seconds: float = 0.0
    created: bool = False
    evaluation: Evaluation | None = None  # the program run that created the stack (None when unchanged)


def run_config(target: Target, account_model: str, overrides: dict[str, str]) -> dict[str, str]:
    """The stack's configuration for this run: stack files, the account model of the run, then ``--config``."""
    config = stack_config.load(target.stack)
    if account_model == "shared":
        config["scalepayments:accountModel"] = "shared"
        config["scalepayments:manageAccountSingletons"] = "true" if target.owns_singletons else "false"
        if not target.owns_singletons:
            # The owner's recorder, named by the owner's stack (lib/components/account_baseline.py).
            config["scalepayments:existingConfigRecorderName"] = f"scalepay-config-recorder-{target.owner}"
    config.update(overrides)
    config.setdefault("aws:region", DEFAULT_REGION)
    return config


def validate(stack: str, config: dict[str, str]) -> None:
    """Validate the configuration before anything is created (with the local stand-ins it would get)."""
    candidate = {**stack_config.local_stand_ins(config, stack, "000000000000", config["aws:region"]), **config}
    raw = {k.split(":", 1)[1]: v for k, v in candidate.items() if k.startswith(f"{program_config.CONFIG_NAMESPACE}:")}
    program_config.build(stack, raw, candidate.get("aws:region"))


def _stand_ins_from(record: records.StackRecord) -> dict[str, str]:
    """The stand-in config values a recorded deployment used (a re-run plans with the same ones)."""
    found = {}
    for extra in record.extras:
        if extra.kind == "acm-certificate" and "scalepayments:certificateArn" not in record.config:
            found["scalepayments:certificateArn"] = extra.id
        if extra.kind == "sqs-queue":
            found["scalepayments:alarmSubscriberArns"] = str(extra.detail["arn"])
    return found


def plan_stack(endpoint: str, target: Target, config: dict[str, str], record: records.StackRecord) -> Plan:
    """What deploying ``config`` over the recorded deployment would change (nothing is touched)."""
    needed = stack_config.local_stand_ins(config, target.stack, record.account_id, record.region)
    recorded = _stand_ins_from(record)
    run = {**{key: recorded.get(key, value) for key, value in needed.items()}, **config}
    evaluation = evaluate(target.stack, run, mocks=PlanMocks(record))
    return diff(record, evaluation)


def deploy_stack(
    endpoint: str,
    target: Target,
    config: dict[str, str],
    *,
    replace: bool = False,
    unprotect: bool = False,
    stream: TextIO | None = None,
    on_register: Callable[[Registration], None] | None = None,
) -> StackResult:
    """Deploy one stack into the emulator (plan first when it is already deployed there)."""
    stream = stream or sys.stdout
    stack = target.stack
    validate(stack, config)
    record = records.load(endpoint, stack)
    aws = account_aws(endpoint, target.account_id, config["aws:region"])
    if record is not None and record.status != records.DEPLOYED:
        raise PreviousRunError(
            f"{stack}: a previous deployment into {endpoint} did not finish ({len(record.resources)} resources created); "
            f"remove them first: make destroy ENV={stack} ENDPOINT={endpoint}"
        )
    if record is not None:
        plan = plan_stack(endpoint, target, config, record)
        if plan.changes == 0:
            print(f"[{stack}] 0 changes: {len(record.resources)} resources already deployed as configured", file=stream)
            return StackResult(stack, record, plan)
        print(f"[{stack}] {plan.summary()} against what is deployed in {endpoint}:", file=stream)
        for step in plan.steps:
            print(f"  {step.line()}", file=stream)
        if not replace:
            raise ChangesPendingError(
                f"{stack}: nothing was changed; to apply these changes, replace the stack: "
                f"make deploy ENV={stack} ENDPOINT={endpoint} REPLACE=1 (it is destroyed, then deployed again)"
            )
        print(f"[{stack}] replacing: destroying the deployed stack first", file=stream)
        destroy(record, aws, HANDLERS, unprotect=unprotect, stream=stream)
        records.remove(endpoint, stack)
    return _create_stack(endpoint, target, config, aws, stream, on_register)


def _create_stack(
    endpoint: str,
    target: Target,
    config: dict[str, str],
    aws: Aws,
    stream: TextIO,
    on_register: Callable[[Registration], None] | None,
) -> StackResult:
    stack = target.stack
    region = config["aws:region"]
    record = records.StackRecord(stack, endpoint, target.account_id, region, dict(config))
    records.save(record)
    run = dict(config)
    stand_ins = stack_config.local_stand_ins(config, stack, target.account_id, region)
    if "scalepayments:certificateArn" in stand_ins:
        extra = import_operator_certificate(aws, endpoint, stack)
        record.extras.append(extra)
        run["scalepayments:certificateArn"] = extra.id
        print(f"[{stack}] imported a self-signed certificate into ACM (what an operator does first): {extra.id}", file=stream)
    if "scalepayments:alarmSubscriberArns" in stand_ins:
        extra = create_local_pager(aws, stack)
        record.extras.append(extra)
        run["scalepayments:alarmSubscriberArns"] = str(extra.detail["arn"])
        print(f"[{stack}] alarms page the local pager queue {stack_config.local_pager_queue(stack)}", file=stream)
    records.save(record)

    mocks = RecordingMocks(aws)
    progress = Progress(stack, stream)
    inputs: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def registered(registration: Registration) -> None:
        mocks.registered(registration)
        progress(registration)
        if registration.custom:
            with lock:
                inputs[registration.urn] = registration.inputs
                if len(inputs) % SAVE_EVERY == 0:
                    record.resources = _resource_records(mocks, inputs)
                    records.save(record)
        if on_register is not None:
            on_register(registration)

    started = time.monotonic()
    try:
        evaluation = evaluate(stack, run, mocks=mocks, on_register=registered)
        if mocks.error is not None:
            raise mocks.error
    except BaseException as exc:
        mocks.quiesce()
        record.resources = _resource_records(mocks, inputs)
        record.data_sources = mocks.answers
        record.status = records.FAILED
        records.save(record)
        if mocks.error is not None:
            # Registrations still queued behind the failure end with "skipped" errors that asyncio would
            # print as "Future exception was never retrieved"; the cause is reported once, here.
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            raise mocks.error from exc
        raise
    progress.done(time.monotonic() - started)
    record.resources = _resource_records(mocks, inputs)
    record.data_sources = mocks.answers
    record.outputs = evaluation.outputs
    record.extras += push_images(aws, evaluation, stream)
    record.status = records.DEPLOYED
    records.save(record)
    return StackResult(stack, record, None, time.monotonic() - started, created=True, evaluation=evaluation)


def push_images(aws: Aws, evaluation: Evaluation, stream: TextIO) -> list[records.ExtraRecord]:
    """The release step (README, "Deploying to AWS", step 2) against the emulator: each image into its repository."""
    images = evaluation.outputs.get("serviceImages", {})
    pushed = []
    ecr = aws.client("ecr")
    for workload, repository in sorted(repositories(evaluation).items()):
        reference = str(images.get(workload, ""))
        name = str(repository.inputs["name"])
        if not reference.startswith(f"{aws.account_id}.dkr.ecr.") or f"/{name}:" not in reference:
            continue  # an image configured from elsewhere (dev may run public images): nothing to push
        tag = reference.rsplit(":", 1)[1]
        push_to_emulator(ecr, ImageRef(workload, name, reference.split("/", 1)[0], tag))
        pushed.append(records.ExtraRecord("ecr-image", f"{name}:{tag}", {"image": reference}))
    if pushed:
        print(f"[{evaluation.stack}] pushed {len(pushed)} images to the stack's ECR repositories", file=stream)
    return pushed


# --- summary ---------------------------------------------------------------------------------------------

KEY_OUTPUTS = (
    ("ALB DNS name", "albDnsName"),
    ("ECS cluster", "ecsClusterName"),
    ("Aurora writer", "auroraWriterEndpoint"),
    ("Redis primary", "redisPrimaryEndpoint"),
    ("VPC", "vpcId"),
)


def summary(result: StackResult) -> str:
    """Resources per component, the key outputs and who hears the alarms, for one stack."""
    record = result.record
    per_component = collections.Counter(
        (r.urn.split("::")[2].split("$")[-2].split(":")[-1] if "$" in r.urn else "(stack)") for r in record.resources
    )
    state = "deployed" if result.created else "unchanged"
    lines = [
        f"== {record.stack}: {len(record.resources)} resources {state} in account {record.account_id}"
        + (f" ({result.seconds:.1f} s)" if result.created else "")
    ]
    lines += [f"   {component:<20} {count:>4}" for component, count in sorted(per_component.items())]
    lines += [f"   {label:<20} {record.outputs.get(key, '')}" for label, key in KEY_OUTPUTS]
    pager = next((e for e in record.extras if e.kind == "sqs-queue"), None)
    subscribers = [
        k for k in ("alarmEmail", "alarmHttpsEndpoint", "alarmSubscriberArns") if record.config.get(f"scalepayments:{k}")
    ]
    if pager is not None:
        lines.append(f"   {'alarms page':<20} the local pager queue {pager.id}")
    elif subscribers:
        lines.append(f"   {'alarms page':<20} {', '.join(subscribers)} (as configured)")
    else:
        lines.append(f"   {'alarms page':<20} nobody: dev runs without an alarm subscriber (set alarmEmail to hear them)")
    return "\n".join(lines)


def write_endpoint(endpoint: str, region: str, accounts: dict[str, str], root: Path = OUTPUT_ROOT) -> Path:
    """cfn-outputs/endpoint.json: where the stacks run, for tests and tools."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "endpoint.json"
    known: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    merged = {**(known.get("accounts", {}) if known.get("endpoint") == endpoint else {}), **accounts}
    path.write_text(json.dumps({"endpoint": endpoint, "accounts": merged, "region": region}, indent=2, sort_keys=True) + "\n")
    profiles.write(root, endpoint, region, merged)
    return path


def deploy(
    envs: Sequence[str],
    endpoint: str,
    *,
    account_model: str = "dedicated",
    overrides: dict[str, str] | None = None,
    replace: bool = False,
    unprotect: bool = False,
    root: Path = OUTPUT_ROOT,
    stream: TextIO | None = None,
) -> list[StackResult]:
    """Deploy ``envs`` into the emulator and write their outputs, endpoint file and profiles."""
    stream = stream or sys.stdout
    results = []
    plan = targets(envs, account_model)
    for target in plan:
        config = run_config(target, account_model, dict(overrides or {}))
        result = deploy_stack(endpoint, target, config, replace=replace, unprotect=unprotect, stream=stream)
        primary = target.stack == envs[-1]
        write_outputs(result.record.outputs, root, env=target.stack, primary=primary)
        print(summary(result), file=stream, flush=True)
        results.append(result)
    region = results[0].record.region if results else DEFAULT_REGION
    write_endpoint(endpoint, region, {r.stack: r.record.account_id for r in results}, root)
    return results


def destroy_stacks(
    envs: Sequence[str], endpoint: str, *, unprotect: bool, root: Path = OUTPUT_ROOT, stream: TextIO | None = None
) -> int:
    """Destroy the recorded stacks of ``envs`` in ``endpoint``, the last deployed first; returns how many."""
    stream = stream or sys.stdout
    found = records.records(endpoint, envs)
    if not found:
        print(f"nothing recorded for {', '.join(envs)} in {endpoint}: nothing to destroy", file=stream)
        return 0
    # Protection is checked for every stack before anything is deleted (all or nothing, as one command).
    protected = {s: [r for r in rec.resources if r.protect] for s, rec in found.items()}
    if not unprotect and any(protected.values()):
        stack = next(s for s, p in protected.items() if p)
        raise ProtectedResourcesError(stack, protected[stack])
    for stack, record in reversed(list(found.items())):
        aws = account_aws(endpoint, record.account_id, record.region)
        destroy(record, aws, HANDLERS, unprotect=unprotect, stream=stream)
        records.remove(endpoint, stack)
        shutil.rmtree(root / stack, ignore_errors=True)
        cert, _ = certificate_files(endpoint, stack)
        shutil.rmtree(cert.parent, ignore_errors=True)
    return len(found)


# --- command line ----------------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="up", choices=["up", "destroy", "plan", "run"])
    parser.add_argument("--env", default="dev", choices=[*ENVIRONMENTS, "all"], help="environment (all = dev, staging, prod)")
    parser.add_argument("--endpoint", default=None, help="a running emulator (e.g. http://127.0.0.1:5000); default: start one")
    parser.add_argument(
        "--config", action="append", default=[], metavar="KEY=VALUE", help="per-run config, as pulumi up --config"
    )
    parser.add_argument("--account-model", default="dedicated", choices=["dedicated", "shared"])
    parser.add_argument(
        "--replace", action="store_true", help="apply changes to a deployed stack by destroying and redeploying it"
    )
    parser.add_argument("--unprotect", action="store_true", help="let destroy/replace delete protected resources")
    parser.add_argument("--port", type=int, default=None, help="port of the emulator this command starts (default: a free one)")
    parser.add_argument("--outputs-dir", type=Path, default=OUTPUT_ROOT)
    parser.add_argument("--no-serve", dest="serve", action="store_false", help="stop the emulator this command started, at once")
    parser.add_argument(
        "--health-check-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="run the target groups' and containers' health checks this often (default: as deployed, e.g. 30 s)",
    )
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop everything this command started, whatever the shell set up.

    A shell without job control starts background commands with SIGINT ignored, and Python then installs no
    handler of its own; a service manager stops with SIGTERM. Both must still run the cleanup.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        # `kill -USR1 <pid>` prints every thread's stack: what a stuck deployment or shutdown is waiting for.
        faulthandler.register(signal.SIGUSR1, all_threads=True)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parse(argv)
    envs = list(ENVIRONMENTS) if args.env == "all" else [args.env]
    try:
        overrides = stack_config.parse_overrides(args.config)
        for env in envs:  # every configuration error before the first resource, and before an emulator starts
            validate(env, run_config(targets([env], "dedicated")[0], args.account_model, overrides))
    except (program_config.ConfigError, stack_config.StackConfigError) as exc:
        return _fail(str(exc))
    from tools.emulator import server

    emulator = None
    if args.endpoint is None:
        if args.command != "up":
            return _fail(f"`{args.command}` needs ENDPOINT=<the emulator the stacks were deployed into>")
        emulator = server.start(args.port)
        endpoint = emulator.endpoint
        print(f"Started the moto emulator at {endpoint}", flush=True)
    else:
        try:
            endpoint = check(args.endpoint)
        except EndpointError as exc:
            return _fail(str(exc))
    try:
        return _run(args, envs, endpoint, overrides, emulator is not None)
    finally:
        if emulator is not None:
            emulator.stop()
            # The emulator's memory is gone with it: so is everything recorded for it.
            for stack in records.stacks_in(endpoint):
                records.remove(endpoint, stack)


def _run(args: argparse.Namespace, envs: list[str], endpoint: str, overrides: dict[str, str], serve: bool) -> int:
    started = time.monotonic()
    try:
        if args.command == "run":
            return run_platform(endpoint, envs, args.outputs_dir, args.health_check_interval)
        if args.command == "destroy":
            count = destroy_stacks(envs, endpoint, unprotect=args.unprotect, root=args.outputs_dir)
            print(f"Destroyed {count} stack(s) in {endpoint}")
            return 0
        if args.command == "plan":
            for target in targets(envs, args.account_model):
                record = records.load(endpoint, target.stack)
                if record is None:
                    print(f"[{target.stack}] not deployed in {endpoint}: a deploy would create it")
                    continue
                plan = plan_stack(endpoint, target, run_config(target, args.account_model, overrides), record)
                print(f"[{target.stack}] {plan.summary()}")
                for step in plan.steps:
                    print(f"  {step.line()}")
            return 0
        deploy(
            envs,
            endpoint,
            account_model=args.account_model,
            overrides=overrides,
            replace=args.replace,
            unprotect=args.unprotect,
            root=args.outputs_dir,
        )
    except DeploymentError as exc:
        failed = [s for s in envs if (r := records.load(endpoint, s)) is not None and r.status == records.FAILED]
        created = sum(len(r.resources) for s in failed if (r := records.load(endpoint, s)) is not None)
        print(
            f"\nDEPLOYMENT FAILED\n  resource:  {exc.resource}\n  operation: {exc.operation}\n  error:     {exc.message}\n"
            f"  {created} resources were created before the failure; remove them with: "
            f"make destroy ENV={failed[0] if failed else args.env} ENDPOINT={endpoint}",
            file=sys.stderr,
        )
        return 1
    except (ChangesPendingError, PreviousRunError, ProtectedResourcesError, program_config.ConfigError) as exc:
        return _fail(str(exc))
    print(f"\nDone in {time.monotonic() - started:.1f} s. Emulator endpoint: {endpoint}")
    print(profiles.usage(args.outputs_dir, envs))
    if serve and args.serve:
        print("\nStarting the platform: data stores, tasks and the front door of each environment.", flush=True)
        return run_platform(endpoint, envs, args.outputs_dir, args.health_check_interval)
    if args.endpoint is not None:
        print(f"\nRun the platform on it: make run ENV={args.env} ENDPOINT={endpoint}")
    return 0


def wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM (:func:`stop_on_signals`).

    In short waits: a signal the kernel delivers to another thread (the platform runs many) sets Python's
    flag but does not interrupt the main thread's wait, and the handler only runs when the main thread wakes.
    """
    idle = threading.Event()
    while not idle.wait(0.5):
        pass


def run_platform(endpoint: str, envs: Sequence[str], outputs_dir: Path, interval: float | None) -> int:
    """Run the deployed ``envs`` (:class:`~tools.localplane.platform.LocalPlatform`) until Ctrl-C; the exit status."""
    from tools.localplane.deployed import NotRunnableError
    from tools.localplane.platform import LocalPlatform, PlatformError, Timings

    platform = LocalPlatform(endpoint, envs, timings=Timings(interval, interval))
    written: list[Path] = []
    try:
        platform.start()
        deployed_pace = "as deployed" if interval is None else f"every {interval:g} s"
        print(f"Waiting for the health checks ({deployed_pace}) to put the tasks in rotation...", flush=True)
        ready = platform.wait_ready(timeout=300)
        written = platform.write_endpoints(outputs_dir)
        print(f"\nThe platform is running (ready after {ready:.1f} s):")
        for stack, detail in platform.describe()["stacks"].items():
            for door in detail["frontDoors"]:
                print(f"  [{stack}] front door {door['https']} (HTTP {door['http']} redirects), as {door['host']}")
        print(f"\nCreate a payment in {envs[-1]}:\n{platform.curl(envs[-1])}")
        print(f"\nWhere everything runs: {', '.join(str(p) for p in written)}\nPress Ctrl-C to stop everything.", flush=True)
        wait_for_interrupt()
    except KeyboardInterrupt:
        print("\nStopping the platform and the emulator.")
    except (NotRunnableError, PlatformError) as exc:
        return _fail(str(exc))
    finally:
        platform.stop()
        for path in written:
            path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    stop_on_signals()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: everything this command started is stopped", file=sys.stderr)
        sys.exit(130)
