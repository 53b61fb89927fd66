"""File-system helpers shared by the local servers: directories owned by the server's uid, reachable by it."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def make_private_dir(path: Path, ids: tuple[int, int] | None, mode: int = 0o700) -> None:
    """Create ``path`` (if needed) with ``mode``, owned by ``ids`` (uid, gid) when given."""
    path.mkdir(parents=True, exist_ok=True)
    if ids is not None:
        os.chown(path, ids[0], ids[1])
    os.chmod(path, mode)


def check_traversable(path: Path, ids: tuple[int, int] | None) -> None:
    """Raise PermissionError unless uid/gid ``ids`` may search every ancestor directory of ``path``.

    The servers run as an unprivileged uid when we are root, and a root-only ancestor (pytest's
    /tmp/pytest-of-root is 0700, for one) makes their data directory unreachable for them. Failing here with the
    offending directory beats a cryptic "could not change directory" in the server log. Nothing is chmod-ed
    automatically: the directories are outside the server's base directory, which it must not touch.
    """
    if ids is None:
        return
    uid, gid = ids
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid == uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise PermissionError(
                f"{parent} (mode {stat.filemode(st.st_mode)}) is not searchable by uid {uid}, which the local server "
                f"runs as; put the base directory under one that is (e.g. tempfile.mkdtemp() chmod 0711)"
            )


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty if missing), for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
