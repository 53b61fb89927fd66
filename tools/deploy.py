"""Deploy the real Pulumi program into the local moto AWS emulator (``make deploy``).

    python -m tools.deploy [--env dev|staging|prod|all] [--endpoint URL] [--keep-serving | --no-serve]

Without ``--endpoint`` a moto server is started on a free 127.0.0.1 port and, after the deployment,
kept serving until Ctrl-C (unless ``--no-serve``). With ``--endpoint`` the deployment goes into that
running emulator and the command exits.

Each environment gets its own emulated AWS account (STS AssumeRole into its ``scalepay-deployer``
role), the program runs under Pulumi's mock runtime with :class:`~tools.emulator.EmulatorMocks`,
and the stack outputs are written where the integration tests read them:
``cfn-outputs/<env>/flat-outputs.json``, ``cfn-outputs/flat-outputs.json`` (the last environment
deployed) and ``cfn-outputs/endpoint.json``.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.emulator import Aws, DeploymentError, EmulatorMocks, account_aws
from tools.emulator.engine import DEFAULT_REGION, TEST_CREDENTIALS
from tools.evaluate import Evaluation, Registration, default_config, evaluate
from tools.outputs import write_outputs

ENVIRONMENTS = ("dev", "staging", "prod")
# One emulated AWS account per environment, as in a real AWS Organization.
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
OUTPUT_ROOT = Path("cfn-outputs")


def operator_certificate(env: str, region: str = DEFAULT_REGION) -> tuple[bytes, bytes]:
    """A self-signed certificate and key for ``env``'s HTTPS listener, as PEM bytes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    host = f"{env}.scalepay.internal"
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, host), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ScalePayments")]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def import_operator_certificate(aws: Aws, env: str) -> str:
    """Import a self-signed certificate into the account's ACM, as an operator does before a first deploy."""
    cert_pem, key_pem = operator_certificate(env, aws.region)
    arn: str = aws.client("acm").import_certificate(
        Certificate=cert_pem,
        PrivateKey=key_pem,
        Tags=[{"Key": "Environment", "Value": env}, {"Key": "Purpose", "Value": "local-emulator-https"}],
    )["CertificateArn"]
    return arn


class Progress:
    """Counts created resources: one updating line on a terminal, periodic lines otherwise."""

    def __init__(self, env: str, stream: TextIO = sys.stdout, every: int = 25) -> None:
        self.env = env
        self.stream = stream
        self.tty = stream.isatty()
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
                line = f"[{self.env}] {self.count} resources created  {registration.type} {registration.name}"
                self.stream.write(f"\r{line[:110]:<110}")
                self.stream.flush()
            elif self.count % self.every == 0:
                print(f"[{self.env}] {self.count} resources created", file=self.stream, flush=True)

    def done(self, seconds: float) -> None:
        """Finish the progress line."""
        if self.tty:
            self.stream.write("\r" + " " * 110 + "\r")
        print(f"[{self.env}] {self.count} resources created in {seconds:.1f} s", file=self.stream, flush=True)


def deploy_environment(
    endpoint: str,
    env: str,
    region: str = DEFAULT_REGION,
    account_id: str | None = None,
    stream: TextIO = sys.stdout,
    mocks: EmulatorMocks | None = None,
) -> Evaluation:
    """Deploy one environment into the emulator at ``endpoint``; raises :class:`DeploymentError` on failure.

    ``mocks`` (default: new ones for the account) end up holding every created resource in ``mocks.created``.
    """
    aws = account_aws(endpoint, account_id or ACCOUNTS[env], region)
    config = default_config(env)
    config["aws:region"] = region
    if "scalepayments:certificateArn" in config:
        # staging/prod refuse HTTPS without a trusted certificate: provide one the way an operator would.
        config["scalepayments:certificateArn"] = import_operator_certificate(aws, env)
        print(f"[{env}] imported a self-signed certificate into ACM: {config['scalepayments:certificateArn']}", file=stream)
    mocks = EmulatorMocks(aws) if mocks is None else mocks
    progress = Progress(env, stream)

    def on_register(registration: Registration) -> None:
        mocks.registered(registration)  # completes the record of what was created (URN, dependencies)
        progress(registration)

    started = time.monotonic()
    try:
        evaluation = evaluate(env, config, mocks=mocks, on_register=on_register)
    except Exception as exc:
        if mocks.error is not None:
            # Registrations still queued behind the failure end with "skipped" errors that asyncio would
            # print as "Future exception was never retrieved"; the cause is reported once, here.
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            raise mocks.error from exc
        raise
    if mocks.error is not None:
        raise mocks.error
    progress.done(time.monotonic() - started)
    return evaluation


KEY_OUTPUTS = (
    ("ALB DNS name", "albDnsName"),
    ("ECS cluster", "ecsClusterName"),
    ("Aurora writer", "auroraWriterEndpoint"),
    ("Aurora reader", "auroraReaderEndpoint"),
    ("Redis primary", "redisPrimaryEndpoint"),
    ("VPC", "vpcId"),
)


def summary(env: str, evaluation: Evaluation, seconds: float) -> str:
    """Resources per component and the key outputs of one deployed environment."""
    per_component = collections.Counter(r.component.split(":")[-1] or "(stack)" for r in evaluation.custom())
    account = evaluation.outputs.get("accountId", "?")
    lines = [f"== {env}: {sum(per_component.values())} resources in account {account} ({seconds:.1f} s)"]
    lines += [f"   {component:<20} {count:>4}" for component, count in sorted(per_component.items())]
    lines += [f"   {label:<20} {evaluation.outputs.get(key, '')}" for label, key in KEY_OUTPUTS]
    return "\n".join(lines)


def how_to_connect(endpoint: str, region: str, envs: Sequence[str]) -> str:
    """How to point the aws CLI and boto3 at the emulator."""
    accounts = ", ".join(f"{e}={ACCOUNTS[e]}" for e in envs)
    return "\n".join(
        [
            f"Emulator endpoint: {endpoint}  (region {region}; accounts {accounts})",
            "Point the aws CLI / boto3 at it:",
            f"  export AWS_ENDPOINT_URL={endpoint} AWS_DEFAULT_REGION={region}",
            f"  export AWS_ACCESS_KEY_ID={TEST_CREDENTIALS['aws_access_key_id']} "
            f"AWS_SECRET_ACCESS_KEY={TEST_CREDENTIALS['aws_secret_access_key']}",
            "Each environment lives in its own account: assume its deployer role, e.g.",
            f"  aws sts assume-role --role-arn arn:aws:iam::{ACCOUNTS[envs[-1]]}:role/scalepay-deployer --role-session-name me",
            "(or send the header x-moto-account-id: <account> with every request).",
        ]
    )


def write_endpoint(endpoint: str, region: str, root: Path = OUTPUT_ROOT) -> Path:
    """cfn-outputs/endpoint.json: where the stacks run, for tests and tools."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "endpoint.json"
    path.write_text(json.dumps({"endpoint": endpoint, "accounts": dict(ACCOUNTS), "region": region}, indent=2) + "\n")
    return path


def deploy(
    envs: Sequence[str], endpoint: str, region: str = DEFAULT_REGION, root: Path = OUTPUT_ROOT, stream: TextIO = sys.stdout
) -> dict[str, Evaluation]:
    """Deploy ``envs`` in order into the emulator and write their outputs; returns the evaluations."""
    write_endpoint(endpoint, region, root)
    results: dict[str, Evaluation] = {}
    for env in envs:
        started = time.monotonic()
        evaluation = deploy_environment(endpoint, env, region, stream=stream)
        paths = write_outputs(evaluation.outputs, root, env=env, primary=env == envs[-1])
        print(summary(env, evaluation, time.monotonic() - started), file=stream)
        print(f"   outputs: {', '.join(str(p) for p in paths)}", file=stream, flush=True)
        results[env] = evaluation
    return results


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--env", default="dev", choices=[*ENVIRONMENTS, "all"], help="environment to deploy (all = dev, staging, prod)"
    )
    parser.add_argument("--endpoint", default=None, help="a running emulator (e.g. http://127.0.0.1:5000); default: start one")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--port", type=int, default=None, help="port for the emulator this command starts (default: a free one)")
    parser.add_argument("--outputs-dir", type=Path, default=OUTPUT_ROOT)
    serve = parser.add_mutually_exclusive_group()
    serve.add_argument(
        "--keep-serving", dest="serve", action="store_true", default=True, help="keep the emulator up until Ctrl-C (default)"
    )
    serve.add_argument("--no-serve", dest="serve", action="store_false", help="stop the emulator after deploying")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parse(argv)
    envs = list(ENVIRONMENTS) if args.env == "all" else [args.env]
    from tools.emulator import server

    started = time.monotonic()
    emulator = None
    endpoint = args.endpoint
    if endpoint is None:
        emulator = server.start(args.port)
        endpoint = emulator.endpoint
        print(f"Started the moto emulator at {endpoint}", flush=True)
    else:
        endpoint = endpoint.rstrip("/")
        try:
            server.wait_until_up(endpoint)  # an emulator started in the background a moment ago may still be booting
        except RuntimeError as exc:
            print(f"no emulator answers at {endpoint}: {exc}", file=sys.stderr)
            return 1
    try:
        try:
            deploy(envs, endpoint, args.region, args.outputs_dir)
        except DeploymentError as exc:
            print(
                f"\nDEPLOYMENT FAILED\n  resource:  {exc.resource}\n  operation: {exc.operation}\n  error:     {exc.message}",
                file=sys.stderr,
            )
            return 1
        print(f"\nDeployed {', '.join(envs)} in {time.monotonic() - started:.1f} s")
        print(how_to_connect(endpoint, args.region, envs))
        if emulator is not None and args.serve:
            print("\nServing; press Ctrl-C to stop the emulator.", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("\nStopping the emulator.")
        return 0
    finally:
        if emulator is not None:
            emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
