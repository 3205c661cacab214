"""Device connections a gateway owns: counted, and drained on shutdown (a connection busy making
a message safe finishes it and answers the device; an idle one is closed at once)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(kw_only=True, eq=False)
class DeviceConnection:
    """One device's connection task and whether it is in the middle of a message."""

    task: asyncio.Task[None]
    busy: bool = False
    closing: bool = False


@dataclass(kw_only=True)
class ConnectionSet:
    """The open connections of one gateway."""

    open: set[DeviceConnection] = field(default_factory=set)

    def add(self, task: asyncio.Task[None]) -> DeviceConnection:
        """Track the current connection's task until it ends."""
        conn = DeviceConnection(task=task)
        self.open.add(conn)
        task.add_done_callback(lambda _: self.open.discard(conn))
        return conn

    async def drain(self, grace_s: float) -> None:
        """Close idle connections now, let busy ones finish their message, then cancel the rest."""
        for conn in list(self.open):
            conn.closing = True
            if not conn.busy:
                conn.task.cancel()
        tasks = [c.task for c in self.open]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
