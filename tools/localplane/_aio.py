"""asyncio helpers shared by the local servers: cancelling tasks and closing streams without leaking either."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has finished (their exceptions, cancellation included, are dropped)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def cancel_other_tasks() -> None:
    """Cancel every other task of the running loop and wait for them: what to do before stopping the loop."""
    await cancel_and_wait(t for t in asyncio.all_tasks() if t is not asyncio.current_task())


async def close_stream(writer: asyncio.StreamWriter) -> None:
    """Close a stream and wait until it is closed, ignoring the errors of a connection that is already broken."""
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
