"""The service images, checked from their Dockerfile targets (no Docker here): hardening, health check, CA bundle, contents.

:func:`image_problems` lists every requirement an image breaks; the real targets must have none, and each mutation
test removes or weakens one requirement and shows that it would be caught.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import pytest

from services.images import ImageSpec, Instruction, parse_dockerfile, read_dockerfile
from services.tests.support import SERVICES_DIR

SERVICES = ("api", "payment", "notification")
IMAGES = (*SERVICES, "migrate")
RUNTIME_UID_GID = "10001:10001"
BASE = "public.ecr.aws/docker/library/python:3.11-slim"
CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
CA_PATH = "/etc/ssl/certs/rds-global-bundle.pem"
HEALTHCHECK = ("python", "-m", "services.common.healthcheck")
#: The one Dockerfile of every image: build target <name> is the image of workload <name>.
DOCKERFILE = SERVICES_DIR / "Dockerfile"


def image_problems(spec: ImageSpec, name: str) -> list[str]:
    """Every image requirement ``spec`` (the Dockerfile target ``name``) breaks; empty when it is fine."""
    problems: list[str] = []
    if spec.base != BASE:
        problems.append(f"base image {spec.base!r} is not {BASE} (ECR Public mirror)")
    uid, _, gid = (spec.user or "").partition(":")
    if not (uid.isdigit() and gid.isdigit() and int(uid) != 0 and int(gid) != 0):
        problems.append(f"USER {spec.user!r} is not a non-root numeric uid:gid")
    elif spec.user != RUNTIME_UID_GID:
        problems.append(f"USER {spec.user!r} is not {RUNTIME_UID_GID}")
    for variable in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        if spec.env.get(variable) != "1":
            problems.append(f"ENV {variable}=1 missing")
    if spec.argv != ("python", "-m", f"services.{name}"):
        problems.append(f"CMD {spec.argv} is not python -m services.{name}")
    problems += _tmp_problems(spec)
    problems += _requirements_problems(spec)
    if name in SERVICES:
        if spec.healthcheck is None or spec.healthcheck.cmd != HEALTHCHECK:
            problems.append(f"HEALTHCHECK is not CMD {list(HEALTHCHECK)}")
        if spec.expose != ("8080",):
            problems.append(f"EXPOSE {spec.expose} is not 8080")
    elif spec.healthcheck is not None and spec.healthcheck.cmd is not None:
        problems.append("a one-off job must not declare a HEALTHCHECK")
    if name in ("payment", "notification", "migrate"):
        adds = [i for i in spec.stage_instructions("ADD") if i.args.split() == [CA_URL, CA_PATH]]
        if not adds:
            problems.append(f"the RDS CA bundle is not added at {CA_PATH} from {CA_URL}")
        elif not re.fullmatch(r"0?6[4-6][4-6]", adds[0].flags.get("chmod", "")):
            problems.append("the RDS CA bundle is not readable by the runtime user (ADD --chmod=0644)")
    return problems


def _tmp_problems(spec: ImageSpec) -> list[str]:
    problems = []
    if spec.volumes != ("/tmp",):
        problems.append(f"VOLUME {spec.volumes} is not exactly /tmp")
    volume_lines = [i.line for i in spec.stage_instructions("VOLUME")]
    prepared = None
    for run in spec.stage_instructions("RUN"):
        chown = re.search(rf"\bchown\s+{RUNTIME_UID_GID}\s+/tmp\b", run.args)
        chmod = re.search(r"\bchmod\s+([0-7]{3,4})\s+/tmp\b", run.args)
        if chown and chmod and int(chmod.group(1), 8) & 0o700 == 0o700:
            prepared = run.line
    if prepared is None:
        problems.append(f"/tmp is not chowned to {RUNTIME_UID_GID} and made writable (chmod) for the runtime user")
    elif not volume_lines or prepared > min(volume_lines):
        problems.append("/tmp must be prepared before VOLUME (Fargate copies the permissions at that point)")
    return problems


def _requirements_problems(spec: ImageSpec) -> list[str]:
    problems = []
    copies = [i for i in spec.stage_instructions("COPY") if i.args.split()[:1] == ["requirements.txt"]]
    if not copies:
        return ["services/requirements.txt is not copied into the image"]
    destination = copies[0].args.split()[-1]
    installs = [i for i in spec.stage_instructions("RUN") if re.search(rf"pip install .*-r {re.escape(destination)}\b", i.args)]
    if not installs:
        problems.append(f"the pinned requirements ({destination}) are not installed with pip install -r")
    return problems


def test_runtime_requirements_are_all_pinned() -> None:
    """The images install exactly one list, and every entry in it is pinned with ==."""
    lines = [line.split("#")[0].strip() for line in (SERVICES_DIR / "requirements.txt").read_text().splitlines()]
    entries = [line for line in lines if line]
    assert len(entries) == 7
    for entry in entries:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", entry), entry


@pytest.mark.parametrize("name", IMAGES)
def test_dockerfile_target_meets_every_requirement(name: str) -> None:
    """Non-root numeric USER, /tmp volume writable for it, health check module, CMD, base image, pinned deps, CA bundle."""
    spec = read_dockerfile(DOCKERFILE, name)
    assert image_problems(spec, name) == []
    assert spec.workdir == "/app"
    assert spec.env["PYTHONPATH"] == "/app"
    if name in SERVICES:
        assert spec.healthcheck is not None
        assert dict(spec.healthcheck.options) == {"interval": "30s", "timeout": "5s", "start-period": "15s", "retries": "3"}


def _drop(pattern: str) -> Callable[[str], str]:
    return lambda text: "\n".join(line for line in text.splitlines() if not re.search(pattern, line))


def _replace(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert old in text
        return text.replace(old, new)

    return mutate


MUTATIONS: dict[str, Callable[[str], str]] = {
    "no USER": _drop(r"^USER "),
    "USER root": _replace("USER 10001:10001", "USER 0:0"),
    "USER by name": _replace("USER 10001:10001", "USER scalepay"),
    "no HEALTHCHECK": _drop(r"^HEALTHCHECK "),
    "HEALTHCHECK with curl": _replace(
        'CMD ["python", "-m", "services.common.healthcheck"]', "CMD curl -f http://localhost:8080/"
    ),
    "no VOLUME": _drop(r"^VOLUME "),
    "VOLUME elsewhere": _replace('VOLUME ["/tmp"]', 'VOLUME ["/data"]'),
    "/tmp not chowned": _replace("chown 10001:10001 /tmp && ", ""),
    "/tmp not writable": _replace("chmod 1777 /tmp", "chmod 0555 /tmp"),
    "/tmp prepared after VOLUME": lambda text: _replace(
        'VOLUME ["/tmp"]', 'VOLUME ["/tmp"]\nRUN chown 10001:10001 /tmp && chmod 1777 /tmp'
    )(_drop(r"chown 10001:10001 /tmp")(text)),
    "wrong CMD": _replace('CMD ["python", "-m", "services.payment"]', 'CMD ["python", "-m", "services.api"]'),
    "shell-form CMD": _replace('CMD ["python", "-m", "services.payment"]', "CMD uvicorn services.payment.app:app"),
    "Docker Hub base": _replace(f"FROM {BASE}", "FROM python:3.11-slim"),
    "unpinned dependencies": _replace("-r /app/requirements.txt", "fastapi uvicorn"),
    "no requirements copy": _drop(r"^COPY requirements.txt"),
    "no RDS CA bundle": _drop(r"^ADD .*global-bundle.pem"),
    "CA bundle unreadable": _replace("ADD --chmod=0644 ", "ADD "),
    "bytecode writes": _drop(r"PYTHONDONTWRITEBYTECODE"),
    "no EXPOSE": _drop(r"^EXPOSE "),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_removing_a_requirement_is_caught(mutation: str) -> None:
    """Each weakening of the payment target produces at least one problem (so the test above would fail)."""
    text = DOCKERFILE.read_text()
    mutated = MUTATIONS[mutation](text)
    assert mutated != text
    assert image_problems(parse_dockerfile(mutated, "payment"), "payment") != []


def test_parser_handles_multi_stage_substitution_and_shell_forms() -> None:
    """The final stage counts; ARG/ENV substitution; relative WORKDIR; shell-form CMD; HEALTHCHECK NONE."""
    spec = parse_dockerfile(
        "\n".join(
            [
                "# syntax=docker/dockerfile:1",
                "ARG PY=3.11",
                "FROM python:${PY} AS build",
                "USER root",
                "CMD build",
                "FROM public.ecr.aws/docker/library/python:${PY}-slim",
                "ARG PY",
                "ENV APP=/srv \\",
                '    GREETING="hello world"',
                "ENV LEGACY value with spaces",
                "WORKDIR $APP",
                "WORKDIR app",
                "USER 1000:1000",
                "EXPOSE 8080/tcp 9090",
                "VOLUME /tmp /var/cache",
                "HEALTHCHECK NONE",
                'ENTRYPOINT ["tini", "--"]',
                "CMD exec python -m app",
            ]
        )
    )
    assert spec.base == "public.ecr.aws/docker/library/python:3.11-slim"
    assert spec.env == {"APP": "/srv", "GREETING": "hello world", "LEGACY": "value with spaces"}
    assert spec.workdir == "/srv/app"
    assert spec.user == "1000:1000"
    assert spec.expose == ("8080/tcp", "9090")
    assert spec.volumes == ("/tmp", "/var/cache")
    assert spec.healthcheck is not None and spec.healthcheck.cmd is None
    assert spec.cmd == ("/bin/sh", "-c", "exec python -m app")
    assert spec.argv == ("tini", "--", "/bin/sh", "-c", "exec python -m app")


def test_parser_follows_stages_built_from_earlier_stages() -> None:
    """A target continues from the stage it is built FROM (settings and instructions); a stage it copies from does not count."""
    text = "\n".join(
        [
            "FROM python:3.11-slim AS Base",
            "ENV A=1",
            "USER 10001:10001",
            "RUN chown 10001:10001 /tmp",
            "FROM base AS build",
            "RUN make",
            "FROM base AS app",
            "ENV B=2",
            "COPY --from=build /out/ /app/",
            'CMD ["app"]',
            "FROM busybox AS other",
        ]
    )
    app = parse_dockerfile(text, "app")
    assert app.base == "python:3.11-slim"
    assert (app.user, app.env, app.cmd) == ("10001:10001", {"A": "1", "B": "2"}, ("app",))
    assert [i.args for i in app.stage_instructions("RUN")] == ["chown 10001:10001 /tmp"]
    assert app.stage_instructions("COPY")[0].flags == {"from": "build"}
    # The parent's settings are copied, not shared; without a target, the last stage; an unknown target is an error.
    assert parse_dockerfile(text, "BASE").env == {"A": "1"}
    assert parse_dockerfile(text).base == "busybox" and parse_dockerfile(text).user is None
    with pytest.raises(ValueError, match="no stage named 'missing'"):
        parse_dockerfile(text, "missing")


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Whether ``relative`` (a path in the build context) is excluded by .dockerignore ``patterns``."""
    parts = relative.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        bare = pattern.removeprefix("**/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(parts[depth - 1], bare)
            ):
                return True
    return False


def _context_source(path: str, copies: list[Instruction]) -> str:
    """Where in the build context ``path`` of an earlier stage came from: that stage's (last) COPY onto it."""
    for copy in reversed(copies):
        source, target = copy.args.split()
        if path.startswith(target):
            return (PurePosixPath(source) / path.removeprefix(target)).as_posix()
    raise AssertionError(f"{path} is copied from a stage that did not copy it from the build context")


def build_image_tree(name: str, destination: Path) -> Path:
    """What the image's COPY instructions put under /app, reproduced in ``destination`` (honouring .dockerignore)."""
    patterns = [
        line.strip()
        for line in (SERVICES_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    spec = read_dockerfile(DOCKERFILE, name)
    for copy in spec.stage_instructions("COPY"):
        source, target = copy.args.split()
        if "from" in copy.flags:
            source = _context_source(source, read_dockerfile(DOCKERFILE, copy.flags["from"]).stage_instructions("COPY"))
        assert target.startswith("/app/"), target
        source_path = SERVICES_DIR / source
        assert source_path.exists(), f"{name}: COPY source {source} is not in the build context"
        target_path = destination / target.removeprefix("/app/")
        files = [source_path] if source_path.is_file() else [p for p in source_path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(SERVICES_DIR).as_posix()
            if _ignored(relative, patterns):
                continue
            out = target_path if source_path.is_file() else target_path / file.relative_to(source_path)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, out)
    return destination


def test_build_context_excludes_tests_and_caches() -> None:
    """.dockerignore keeps tests, bytecode caches and the Dockerfiles out of the images."""
    patterns = [
        line.strip()
        for line in (SERVICES_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in ("tests/test_images.py", "payment/__pycache__/app.cpython-311.pyc", "Dockerfile", "README.md"):
        assert _ignored(path, patterns), path
    for path in ("payment/app.py", "payment/migrations/0001_payments_and_ledger.sql", "requirements.txt", "common/config.py"):
        assert not _ignored(path, patterns), path


def test_each_image_contains_what_its_command_imports(tmp_path: Path) -> None:
    """Importing each image's entry module from only the files its target copies works (nothing missing)."""
    checks = {
        "api": "import services.api.__main__, services.api.app, services.common.healthcheck",
        "payment": "import services.payment.__main__, services.payment.app, services.common.healthcheck",
        "notification": "import services.notification.__main__, services.notification.app, services.common.healthcheck",
        "migrate": "import services.migrate.__main__, services.common.logs, psycopg; "
        "from services.migrate.job import discover_migrations as d; assert d('payment') and d('notification')",
    }
    trees = {name: build_image_tree(name, tmp_path / name) for name in IMAGES}
    assert not (trees["api"] / "services" / "payment").exists()
    assert not (trees["migrate"] / "services" / "payment" / "app.py").exists()
    assert not list(tmp_path.rglob("tests"))

    def run(name: str) -> subprocess.CompletedProcess[str]:
        # The package must come from the reproduced tree, not from the repository.
        origin = f"import services; assert services.__file__.startswith({str(trees[name])!r}), services.__file__; "
        return subprocess.run(
            [sys.executable, "-c", origin + checks[name]],
            cwd=trees[name],
            env={"PYTHONPATH": str(trees[name]), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(IMAGES, pool.map(run, IMAGES), strict=True))
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stderr}"
