"""Fan-out of live positions to WebSocket clients: shared board, per-interval tickers, streams.

Each client's send loop runs in its own task and owns only a cursor into the board, so a slow
client blocks nobody: while it is stuck in a send, its pending changes keep coalescing in the
board (one entry per vehicle, the newest), and it receives them in one frame when it is ready.
Clients with the same filter and cursor share one encoded frame per tick.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.filters import VehicleFilter
from api.live.board import Change, PositionBoard, VehiclePosition, iso_ms

Send = Callable[[str], Awaitable[None]]


class Ticker:
    """Wakes every client of one frame interval at the same moment."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self.users = 0
        self._event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def fire(self) -> None:
        """Wake the current waiters; later waiters wait for the next tick."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, within_s: float) -> bool:
        """Wait for the next tick; False when none comes within ``within_s``."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Tick forever on a fixed schedule (no drift from slow iterations)."""
        period = self.interval_ms / 1000
        next_at = time.monotonic() + period
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + period, time.monotonic())
            self.fire()


def relevant(change: Change, filt: VehicleFilter) -> bool:
    """A change matters to a client if the vehicle matches now or matched before (it left)."""
    if filt.matches(change.position):
        return True
    return filt.bbox is not None and change.previous is not None and filt.matches(change.previous)


def frame_json(kind: str, vehicles: Iterable[VehiclePosition], seq: int, **extra: Any) -> str:
    """A positions frame as JSON text (docs/api.md)."""
    body: dict[str, Any] = {"type": kind, "seq": seq, "server_ts": iso_ms(datetime.now(UTC))}
    body.update(extra)
    body["vehicles"] = [v.as_frame_item() for v in vehicles]
    return json.dumps(body, separators=(",", ":"))


def merge_snapshot(
    stored: Iterable[VehiclePosition], live: Iterable[VehiclePosition]
) -> list[VehiclePosition]:
    """Newest fix per vehicle of the database rows and the board (which may be ahead)."""
    newest: dict[str, VehiclePosition] = {}
    for position in (*stored, *live):
        held = newest.get(position.device_id)
        if held is None or position.time > held.time:
            newest[position.device_id] = position
    return sorted(newest.values(), key=lambda p: p.device_id)


@dataclass(slots=True)
class _Cached:
    text: str
    seq: int
    count: int


class PositionHub:
    """The board, the tickers and the frame cache of one API process."""

    def __init__(self, max_vehicles: int) -> None:
        self.board = PositionBoard(max_vehicles)
        self.clients = 0
        self.received = 0
        self._tickers: dict[int, Ticker] = {}
        self._cache: dict[tuple[VehicleFilter, int], _Cached] = {}
        self._cache_seq = -1

    def publish(self, positions: Iterable[VehiclePosition]) -> int:
        """Put fixes on the board (event-loop thread only); returns how many were newer."""
        changed = 0
        for position in positions:
            self.received += 1
            changed += self.board.put(position)
        return changed

    def ticker(self, interval_ms: int) -> Ticker:
        """The shared ticker for an interval, started on first use."""
        ticker = self._tickers.get(interval_ms)
        if ticker is None:
            ticker = Ticker(interval_ms)
            ticker.task = asyncio.create_task(ticker.run(), name=f"ticker-{interval_ms}ms")
            self._tickers[interval_ms] = ticker
        ticker.users += 1
        return ticker

    def release(self, ticker: Ticker) -> None:
        """Stop a ticker nobody uses any more."""
        ticker.users -= 1
        if ticker.users <= 0 and self._tickers.get(ticker.interval_ms) is ticker:
            del self._tickers[ticker.interval_ms]
            if ticker.task is not None:
                ticker.task.cancel()

    def frame(self, filt: VehicleFilter, cursor: int) -> tuple[str | None, int]:
        """The frame of changes after ``cursor`` for ``filt`` (None if none) and the new cursor."""
        seq = self.board.seq
        if seq == cursor:
            return None, cursor
        if seq != self._cache_seq:
            self._cache.clear()
            self._cache_seq = seq
        key = (filt, cursor)
        cached = self._cache.get(key)
        if cached is None:
            changes = [c.position for c in self.board.changes_since(cursor) if relevant(c, filt)]
            text = frame_json("positions", changes, seq) if changes else ""
            cached = _Cached(text, seq, len(changes))
            self._cache[key] = cached
        return (cached.text or None), cached.seq

    async def close(self) -> None:
        """Stop every ticker."""
        tasks = [t.task for t in self._tickers.values() if t.task is not None]
        self._tickers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def stream_positions(
    hub: PositionHub,
    filt: VehicleFilter,
    *,
    cursor: int,
    snapshot: list[VehiclePosition],
    send: Send,
    interval_ms: int,
    heartbeat_s: float,
    snapshot_extra: dict[str, Any],
    on_frame: Callable[[int], None] | None = None,
) -> None:
    """Send the snapshot, then a frame of changes at each tick, heartbeats when idle; forever."""
    await send(frame_json("snapshot", snapshot, cursor, **snapshot_extra))
    # Changes made between taking the cursor and reading the database may be older than what
    # the snapshot already holds; the first frame drops those.
    held = {p.device_id: p.time for p in snapshot}
    ticker = hub.ticker(interval_ms)
    last_sent = time.monotonic()
    try:
        while True:
            await ticker.wait(within_s=max(0.05, heartbeat_s - (time.monotonic() - last_sent)))
            if held:
                changes = [
                    c.position
                    for c in hub.board.changes_since(cursor)
                    if relevant(c, filt) and newer_than_held(c.position, held)
                ]
                new_cursor = hub.board.seq
                text = frame_json("positions", changes, new_cursor) if changes else None
                held = {}
            else:
                text, new_cursor = hub.frame(filt, cursor)
            cursor = new_cursor
            if text is not None:
                await send(text)
                last_sent = time.monotonic()
                if on_frame is not None:
                    on_frame(len(text))
            elif time.monotonic() - last_sent >= heartbeat_s:
                await send(heartbeat_json(cursor))
                last_sent = time.monotonic()
    finally:
        hub.release(ticker)


def newer_than_held(position: VehiclePosition, held: dict[str, datetime]) -> bool:
    """True when the snapshot did not already hold this fix or a newer one."""
    seen = held.get(position.device_id)
    return seen is None or position.time > seen


def heartbeat_json(seq: int) -> str:
    """An idle frame, so browser clients (which cannot see pings) know the link is alive."""
    return json.dumps(
        {"type": "heartbeat", "seq": seq, "server_ts": iso_ms(datetime.now(UTC))},
        separators=(",", ":"),
    )
