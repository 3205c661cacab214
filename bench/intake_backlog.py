"""Intake memory under a backlog: ``python -m bench.intake_backlog [--messages N]``.

Preloads N QoS 1 messages (the city mix of ``bench.harness.traffic``) into an offline
persistent session on a private Mosquitto, then drains it through ``MqttIntake`` (Receive
Maximum ``--receive-maximum``) with a consumer thread that takes up to 5,000 messages, holds
them ``--hold-ms`` (a slow commit) and acks them. Every 0.2 s it samples the inbox length, the
session's unacked count and the process's resident memory; it prints their maxima: flow
control keeps the inbox under Receive Maximum however deep the broker's queue is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time

from bench.harness.mqtt import make_session, private_broker, publish_all
from bench.harness.services import rss_kib
from bench.harness.traffic import FILTER, city_mix
from telemetry.mqtt_intake import IntakeOptions, MqttIntake
from telemetry.settings import Settings

CLIENT_ID = "bench-intake-backlog"


def _rss_mib() -> float:
    return rss_kib(os.getpid()) / 1024


def main(argv: list[str] | None = None) -> int:
    """Preload, drain through the intake with a slow consumer, print the sampled maxima."""
    parser = argparse.ArgumentParser(prog="python -m bench.intake_backlog", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--receive-maximum", type=int, default=20_000)
    parser.add_argument("--hold-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    count = args.messages
    with private_broker() as port:
        make_session(CLIENT_ID, port, FILTER)
        # Published in slices: the generated payloads of a million messages are big themselves.
        published = 0.0
        for start in range(0, count, 200_000):
            traffic = city_mix(min(200_000, count - start), seed=start)
            published += asyncio.run(publish_all(port, traffic.messages))
            del traffic
        print(f"preloaded {count} messages in {published:.1f} s; rss {_rss_mib():.0f} MiB")
        settings = Settings(mqtt_url=f"mqtt://127.0.0.1:{port}")
        options = IntakeOptions(
            client_id=CLIENT_ID,
            topic_filter=FILTER,
            session_expiry_s=3600,
            receive_maximum=args.receive_maximum,
            wake_at=5000,
        )
        drained = 0
        done = threading.Event()
        intake = MqttIntake(settings, options)

        def consume() -> None:
            nonlocal drained
            while drained < count:
                intake.wake.wait(0.2)
                intake.wake.clear()
                batch = intake.take(5000)
                if batch:
                    time.sleep(args.hold_ms / 1000)
                    intake.ack(batch)
                    drained += len(batch)
            done.set()

        max_inbox = max_rss = 0.0
        started = time.perf_counter()
        with intake:
            threading.Thread(target=consume, daemon=True).start()
            while not done.wait(0.2):
                max_inbox = max(max_inbox, len(intake.inbox))
                max_rss = max(max_rss, _rss_mib())
                if time.perf_counter() - started > 900:
                    print(f"gave up after {drained} messages")
                    return 1
        elapsed = time.perf_counter() - started
    print(
        f"drained {drained} in {elapsed:.1f} s ({drained / elapsed:,.0f} msg/s), "
        f"receive maximum {args.receive_maximum}: inbox at most {max_inbox:.0f} messages, "
        f"rss at most {max_rss:.0f} MiB (now {_rss_mib():.0f} MiB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
