"""A small Dockerfile reader: what an image built from a Dockerfile runs, as whom, where, with what.

:func:`read_dockerfile` returns the final stage's runtime settings (:class:`ImageSpec`): the local task runner uses it
to run an image's command as a plain process, and the image tests use it to check the hardening (non-root numeric
user, health check, ``/tmp`` volume, ...). It understands what these Dockerfiles use and a bit more: line
continuations, comments and parser directives, multi-stage builds (settings reset at each ``FROM``), ``ARG``/``ENV``
substitution (``$VAR``, ``${VAR}``, ``${VAR:-default}``) in the instructions Docker substitutes, exec and shell forms of
``CMD``/``ENTRYPOINT``/``HEALTHCHECK``, ``ENV k=v`` and legacy ``ENV k v``, relative ``WORKDIR``. It does not know the
base image's own settings (its ``ENV PATH``, its default ``CMD``): only what the Dockerfile says.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["DockerfileError", "Healthcheck", "ImageSpec", "Instruction", "parse_dockerfile", "read_dockerfile"]


class DockerfileError(ValueError):
    """The Dockerfile cannot be understood."""


@dataclass(frozen=True)
class Instruction:
    """One instruction after line joining: ``keyword`` upper-cased, ``flags`` (``--chown=...``) split off ``args``."""

    keyword: str
    args: str
    flags: Mapping[str, str]
    line: int
    stage: int


@dataclass(frozen=True)
class Healthcheck:
    """``HEALTHCHECK``: the test command (None for ``HEALTHCHECK NONE``) and its options (``interval`` -> ``30s``)."""

    cmd: tuple[str, ...] | None
    options: Mapping[str, str]


@dataclass(frozen=True)
class ImageSpec:
    """The final stage's runtime settings."""

    user: str | None
    workdir: str
    cmd: tuple[str, ...]
    healthcheck: Healthcheck | None
    volumes: tuple[str, ...]
    env: Mapping[str, str]
    expose: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    base: str = ""
    instructions: tuple[Instruction, ...] = field(default=(), repr=False)

    @property
    def argv(self) -> tuple[str, ...]:
        """What the container runs: ``ENTRYPOINT`` + ``CMD``."""
        return self.entrypoint + self.cmd

    def stage_instructions(self, keyword: str) -> list[Instruction]:
        """The final stage's instructions with ``keyword`` (e.g. ``RUN``), in order."""
        last = self.instructions[-1].stage if self.instructions else 0
        return [i for i in self.instructions if i.keyword == keyword.upper() and i.stage == last]


_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_SUBSTITUTED = frozenset({"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ONBUILD"})


def _substitute(text: str, variables: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = variables.get(name)
        op = match.group("op")
        if op == "-":
            return value if value else match.group("word")
        if op == "+":
            return match.group("word") if value else ""
        return value or ""

    return _VARIABLE.sub(replace, text)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continuation lines, drop comments and blank lines; (first line number, content)."""
    out: list[tuple[int, str]] = []
    buffer = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue  # comments (and parser directives) are dropped, even inside a continuation
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        out.append((start, buffer.strip()))
        buffer = ""
    if buffer.strip():
        out.append((start, buffer.strip()))
    return out


def _split_flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        token, _, remainder = rest.partition(" ")
        key, _, value = token[2:].partition("=")
        flags[key] = value
        rest = remainder.lstrip()
    return flags, rest


def _command(args: str, line: int) -> tuple[str, ...]:
    """Exec form (JSON array) as is; shell form wrapped in ``/bin/sh -c``."""
    if args.startswith("["):
        try:
            value = json.loads(args)
        except ValueError as exc:
            raise DockerfileError(f"line {line}: invalid JSON array: {args}") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DockerfileError(f"line {line}: exec form must be a JSON array of strings")
        return tuple(value)
    return ("/bin/sh", "-c", args)


def _key_values(args: str, line: int) -> dict[str, str]:
    """``ENV``/``ARG``/``LABEL`` arguments: ``k=v k2="v 2"`` or legacy ``k v``."""
    tokens = shlex.split(args, posix=True)
    if not tokens:
        raise DockerfileError(f"line {line}: missing arguments")
    if "=" not in tokens[0]:
        key, _, value = args.partition(" ")
        return {key: value.strip()}
    pairs: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            raise DockerfileError(f"line {line}: expected key=value, got {token!r}")
        pairs[key] = value
    return pairs


def parse_dockerfile(text: str) -> ImageSpec:
    """Parse Dockerfile ``text`` (see the module docstring for what is understood)."""
    global_args: dict[str, str] = {}
    instructions: list[Instruction] = []
    stage = -1
    base = ""
    user: str | None = None
    workdir = "/"
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    volumes: list[str] = []
    env: dict[str, str] = {}
    args: dict[str, str] = {}
    expose: list[str] = []
    for line, content in _logical_lines(text):
        keyword, _, raw_args = content.partition(" ")
        keyword = keyword.upper()
        raw_args = raw_args.strip()
        # FROM sees only the global ARGs (declared before the first FROM); other instructions their stage's ARG/ENV too.
        variables = global_args if keyword == "FROM" else {**global_args, **args, **env}
        if keyword in _SUBSTITUTED:
            raw_args = _substitute(raw_args, variables)
        flags, rest = _split_flags(raw_args) if keyword in ("ADD", "COPY", "FROM", "RUN", "HEALTHCHECK") else ({}, raw_args)
        if keyword == "FROM":
            stage += 1
            base = rest.split()[0] if rest else ""
            user, workdir, cmd, entrypoint, healthcheck = None, "/", (), (), None
            volumes, env, args, expose = [], {}, {}, []
        elif stage < 0 and keyword != "ARG":
            raise DockerfileError(f"line {line}: {keyword} before FROM")
        instructions.append(Instruction(keyword, rest, flags, line, max(stage, 0)))
        if keyword == "ARG":
            name, sep, default = rest.partition("=")
            name = name.strip()
            value = (shlex.split(default) or [""])[0] if sep else ""
            if stage < 0:
                global_args[name] = value
            else:
                # An ARG without a default inside a stage re-imports the global value.
                args[name] = value if sep else global_args.get(name, "")
        elif keyword == "ENV":
            env.update(_key_values(rest, line))
        elif keyword == "USER":
            user = rest
        elif keyword == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / rest) if not rest.startswith("/") else rest
        elif keyword == "CMD":
            cmd = _command(rest, line)
        elif keyword == "ENTRYPOINT":
            entrypoint = _command(rest, line)
        elif keyword == "HEALTHCHECK":
            if rest.upper() == "NONE":
                healthcheck = Healthcheck(None, flags)
            else:
                test_keyword, _, test = rest.partition(" ")
                if test_keyword.upper() != "CMD":
                    raise DockerfileError(f"line {line}: HEALTHCHECK must be NONE or CMD ...")
                healthcheck = Healthcheck(_command(test.strip(), line), flags)
        elif keyword == "VOLUME":
            volumes.extend(_command(rest, line) if rest.startswith("[") else rest.split())
        elif keyword == "EXPOSE":
            expose.extend(rest.split())
    if stage < 0:
        raise DockerfileError("no FROM instruction")
    return ImageSpec(
        user=user,
        workdir=workdir,
        cmd=cmd,
        healthcheck=healthcheck,
        volumes=tuple(volumes),
        env=env,
        expose=tuple(expose),
        entrypoint=entrypoint,
        base=base,
        instructions=tuple(instructions),
    )


def read_dockerfile(path: str | Path) -> ImageSpec:
    """Parse the Dockerfile at ``path``."""
    return parse_dockerfile(Path(path).read_text(encoding="utf-8"))
