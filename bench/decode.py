"""Decoder micro-benchmark: ``python -m bench.decode [--messages N] [--repeat R]``.

Decodes the benchmarks' city mix (``bench.harness.traffic.city_mix``: 60 % bus positions,
15 % truck positions of which 5 % are batches of 10, 24 % energy, 1 % faults) with the pydantic
path (``fast_path=False``, the decoder as it was) and the msgspec fast path, in the same
process, alternating, and prints the best of R rounds in microseconds per message. A share of
refused messages (``--bad``, a quarter each null island, a string for a number, a NaN, a ts
too old) shows what the general path costs when the fast path hands over.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from bench.harness.traffic import PREFIX, city_mix
from telemetry.decoding import Limits, MessageDecoder
from telemetry.topics import Fleet


def _spoil(messages: list[tuple[str, bytes]], share: float) -> list[tuple[str, bytes]]:
    """Replace every ``1/share``-th message by a refused one of the same topic."""
    if share <= 0:
        return messages
    step = max(1, round(1 / share))
    spoilt = list(messages)
    for n, index in enumerate(range(0, len(spoilt), step)):
        topic, payload = spoilt[index]
        body = json.loads(payload)
        first = body[0] if isinstance(body, list) else body
        kind = n % 4
        if kind == 0 and "lat" in first:
            first["lat"] = first["lon"] = 0
        elif kind == 1:
            first["ts"] = str(first["ts"])
        elif kind == 3:
            first["ts"] = 1
        raw = json.dumps(body).encode()
        if kind == 2:
            raw = raw.replace(b'"ts":', b'"x": NaN, "ts":', 1)
        spoilt[index] = (topic, raw)
    return spoilt


def _round(
    decoder: MessageDecoder,
    messages: list[tuple[str, bytes]],
    received: datetime,
    registry: Mapping[str, Fleet],
) -> tuple[float, int]:
    decode = decoder.decode
    started = time.perf_counter()
    rows = 0
    for topic, payload in messages:
        out = decode(topic, payload, received, registry)
        rows += len(out.positions) + len(out.energy) + len(out.faults) + len(out.dead_letters)
    return time.perf_counter() - started, rows


def main(argv: list[str] | None = None) -> int:
    """Time both paths over the same messages and print us/message and the speed-up."""
    parser = argparse.ArgumentParser(prog="python -m bench.decode", description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bad", type=float, default=0.0, help="share of refused messages")
    args = parser.parse_args(argv)
    traffic = city_mix(args.messages)
    messages = _spoil(traffic.messages, args.bad)
    registry = {d.device_id: d.fleet for d in traffic.devices}
    limits = Limits(prefix=PREFIX, max_age=timedelta(days=2))
    received = datetime.now(UTC)
    paths = {
        "pydantic (before)": MessageDecoder(limits, fast_path=False),
        "msgspec (after)": MessageDecoder(limits),
    }
    best = dict.fromkeys(paths, float("inf"))
    counts: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, decoder in paths.items():
            seconds, counts[name] = _round(decoder, messages, received, registry)
            best[name] = min(best[name], seconds)
    if len(set(counts.values())) != 1:
        print(f"paths disagree on the number of rows and dead letters: {counts}")
        return 1
    print(f"{len(messages)} messages ({args.bad:.0%} refused), best of {args.repeat}")
    for name, seconds in best.items():
        print(f"  {name:<18} {seconds / len(messages) * 1e6:6.2f} us/message")
    before, after = best.values()
    print(f"  speed-up {before / after:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
