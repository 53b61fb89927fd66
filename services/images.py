"""A small Dockerfile reader: what an image built from a Dockerfile runs, as whom, where, with what.

:func:`read_dockerfile` returns the runtime settings (:class:`ImageSpec`) of the image one build target produces (the
stage ``docker build --target`` names; without one, the last stage): the local task runner uses it to run an image's
command as a plain process, and the image tests use it to check the hardening (non-root numeric user, health check,
``/tmp`` volume, ...). It understands what the services' Dockerfile uses and a bit more: line continuations, comments
and parser directives, multi-stage builds (a stage ``FROM`` an image starts afresh, one ``FROM`` an earlier stage
continues from that stage's settings), ``ARG``/``ENV`` substitution (``$VAR``, ``${VAR}``, ``${VAR:-default}``) in the
instructions Docker substitutes, exec and shell forms of ``CMD``/``ENTRYPOINT``/``HEALTHCHECK``, ``ENV k=v`` and legacy
``ENV k v``, relative ``WORKDIR``. It does not know the base image's own settings (its ``ENV PATH``, its default
``CMD``): only what the Dockerfile says."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

__all__ = ["DockerfileError", "Healthcheck", "ImageSpec", "Instruction", "parse_dockerfile", "parse_stages", "read_dockerfile"]


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
    """One build target's runtime settings, and the instructions that made it (its stage's and its parent stages')."""

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
        """The instructions with ``keyword`` (e.g. ``RUN``) that built this target, parent stages first, in order.

        An earlier stage the target only copies from (``COPY --from=<stage>``) is not among them.
        """
        return [i for i in self.instructions if i.keyword == keyword.upper()]


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


def _apply(spec: ImageSpec, keyword: str, rest: str, flags: Mapping[str, str], line: int) -> ImageSpec:
    """``spec`` after one instruction of its stage (ImageSpec is immutable: a stage built FROM it keeps its own copy)."""
    if keyword == "ENV":
        return replace(spec, env={**spec.env, **_key_values(rest, line)})
    if keyword == "USER":
        return replace(spec, user=rest)
    if keyword == "WORKDIR":
        return replace(spec, workdir=str(PurePosixPath(spec.workdir) / rest) if not rest.startswith("/") else rest)
    if keyword == "CMD":
        return replace(spec, cmd=_command(rest, line))
    if keyword == "ENTRYPOINT":
        return replace(spec, entrypoint=_command(rest, line))
    if keyword == "HEALTHCHECK":
        if rest.upper() == "NONE":
            return replace(spec, healthcheck=Healthcheck(None, flags))
        test_keyword, _, test = rest.partition(" ")
        if test_keyword.upper() != "CMD":
            raise DockerfileError(f"line {line}: HEALTHCHECK must be NONE or CMD ...")
        return replace(spec, healthcheck=Healthcheck(_command(test.strip(), line), flags))
    if keyword == "VOLUME":
        return replace(spec, volumes=spec.volumes + (_command(rest, line) if rest.startswith("[") else tuple(rest.split())))
    if keyword == "EXPOSE":
        return replace(spec, expose=spec.expose + tuple(rest.split()))
    return spec


def parse_stages(text: str) -> dict[str, ImageSpec]:
    """Every stage of Dockerfile ``text`` by name (``FROM ... AS <name>``; an unnamed stage by its index), in order."""
    global_args: dict[str, str] = {}
    stages: dict[str, ImageSpec] = {}
    name = ""
    args: dict[str, str] = {}
    for line, content in _logical_lines(text):
        keyword, _, raw_args = content.partition(" ")
        keyword = keyword.upper()
        raw_args = raw_args.strip()
        # FROM sees only the global ARGs (declared before the first FROM); other instructions their stage's ARG/ENV too.
        variables = global_args if keyword == "FROM" or not stages else {**global_args, **args, **stages[name].env}
        if keyword in _SUBSTITUTED:
            raw_args = _substitute(raw_args, variables)
        flags, rest = _split_flags(raw_args) if keyword in ("ADD", "COPY", "FROM", "RUN", "HEALTHCHECK") else ({}, raw_args)
        if keyword == "FROM":
            words = rest.split()
            source = words[0] if words else ""
            name = words[2].lower() if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            # Stage names are case-insensitive. FROM an earlier stage continues from it, anything else is an image.
            empty = ImageSpec(user=None, workdir="/", cmd=(), healthcheck=None, volumes=(), env={}, expose=(), base=source)
            stages[name] = stages.get(source.lower(), empty)
            args = {}
        elif not stages and keyword != "ARG":
            raise DockerfileError(f"line {line}: {keyword} before FROM")
        if keyword == "ARG":
            arg, sep, default = rest.partition("=")
            arg = arg.strip()
            value = (shlex.split(default) or [""])[0] if sep else ""
            if not stages:
                global_args[arg] = value  # before the first FROM: seen by FROM lines and re-declared in stages
                continue
            # An ARG without a default inside a stage re-imports the global value.
            args[arg] = value if sep else global_args.get(arg, "")
        spec = _apply(stages[name], keyword, rest, flags, line)
        stages[name] = replace(spec, instructions=(*spec.instructions, Instruction(keyword, rest, flags, line, len(stages) - 1)))
    if not stages:
        raise DockerfileError("no FROM instruction")
    return stages


def parse_dockerfile(text: str, target: str | None = None) -> ImageSpec:
    """Parse Dockerfile ``text``: the image ``docker build --target <target>`` builds (without a target: the last stage)."""
    stages = parse_stages(text)
    if target is None:
        return list(stages.values())[-1]
    if target.lower() not in stages:
        raise DockerfileError(f"no stage named {target!r} (stages: {', '.join(stages)})")
    return stages[target.lower()]


def read_dockerfile(path: str | Path, target: str | None = None) -> ImageSpec:
    """Parse the Dockerfile at ``path`` (the ``target`` stage, or the last one)."""
    return parse_dockerfile(Path(path).read_text(encoding="utf-8"), target)
