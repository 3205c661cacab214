"""Drain-rate benchmark of MqttSession: ``python -m bench.mqtt_session_drain [--messages N]``.

Preloads N QoS 1 messages (the city mix of ``bench.harness.traffic``) into offline persistent
sessions on a private Mosquitto with queue limits lifted, then times, one after the other,
draining them with acks:
(a) ``mosquitto_sub -q 1 -c`` (the C client: the ceiling);
(b) paho-mqtt with manual acks, one ``ack`` per message from its network thread;
(c) MqttSession, ``receive_batch`` then one ``ack`` per message (acks of a turn in one write);
(d) MqttSession, ``async for message in session.messages()`` and ``ack`` per message.
Every consumer uses Receive Maximum 20000 (mosquitto_sub: its default, 65535). Publishing
(MqttSession, QoS 1, 20,000 in flight) happens before any timing, so the publisher never
competes with a consumer. Afterwards each MqttSession reconnects once to check that its
acks all reached the broker (nothing is redelivered).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from bench.harness import BenchmarkError
from bench.harness.mqtt import (
    drain_batches,
    drain_mosquitto_sub,
    drain_paho,
    make_mosquitto_sub_session,
    make_session,
    private_broker,
    publish_all,
    queued_session,
)
from bench.harness.traffic import FILTER, city_mix

BATCH_ID = "bench-rasd-batch"
STREAM_ID = "bench-rasd-stream"


async def _drain_stream(port: int, count: int) -> float:
    started = time.perf_counter()
    async with queued_session(port, STREAM_ID, FILTER) as session:
        received = 0
        async with asyncio.timeout(600):
            async for message in session.messages():
                session.ack(message)
                received += 1
                if received == count:
                    break
        elapsed = time.perf_counter() - started
    return elapsed


def drain_rasd(port: int, count: int, *, stream: bool) -> float:
    """MqttSession's drain time for ``count`` queued messages (in its own event loop)."""
    if stream:
        return asyncio.run(_drain_stream(port, count))
    return asyncio.run(drain_batches(port, count, BATCH_ID, FILTER))


async def _create_session(port: int, client_id: str) -> None:
    async with queued_session(port, client_id, FILTER):
        pass


async def _left_over(port: int, client_id: str) -> int:
    async with queued_session(port, client_id, FILTER) as session:
        await asyncio.sleep(1.0)
        return session.stats.messages_received


def main(argv: list[str] | None = None) -> int:
    """Preload, run the four drains, print msg/s and the ratios."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.mqtt_session_drain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=200_000)
    count = parser.parse_args(argv).messages
    traffic = city_mix(count)
    with private_broker() as port:
        make_mosquitto_sub_session(port, FILTER)
        make_session("bench-paho", port, FILTER)
        for client_id in (BATCH_ID, STREAM_ID):
            asyncio.run(_create_session(port, client_id))
        print(f"loading {count} messages into 4 offline sessions ...", flush=True)
        load_s = asyncio.run(publish_all(port, traffic.messages))
        print(f"  published in {load_s:.1f} s ({count / load_s:,.0f} msg/s)", flush=True)
        results = {
            "a mosquitto_sub -q 1 -c": drain_mosquitto_sub(port, FILTER, count),
            "b paho, manual acks": drain_paho(port, count),
            "c MqttSession, batches": drain_rasd(port, count, stream=False),
            "d MqttSession, async for": drain_rasd(port, count, stream=True),
        }
        for client_id in (BATCH_ID, STREAM_ID):
            left = asyncio.run(_left_over(port, client_id))
            if left:
                raise BenchmarkError(f"{client_id}: {left} messages redelivered after the drain")
    rate = {name: count / seconds for name, seconds in results.items()}
    print(f"\n{count} messages, {os.cpu_count()} cores")
    for name, seconds in results.items():
        print(f"  {name:<26} {seconds:7.2f} s  {rate[name]:>9,.0f} msg/s")
    a, b, c, d = rate.values()
    print(f"  ratio c/a = {c / a:.2f}   c/b = {c / b:.2f}   d/a = {d / a:.2f}   d/b = {d / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
