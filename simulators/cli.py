"""``python -m simulators``: run, record, replay, registry, equipment, network, scenarios."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import ValidationError

from simulators.clock import (
    Pacer,
    ingest_window_warning,
    iso_local,
    parse_duration,
    parse_start,
)
from simulators.devices import build_devices, registry_records
from simulators.engine import Engine, Shard
from simulators.equipment import equipment_register
from simulators.errors import SimulatorError
from simulators.gateway_sink import VIA_CHOICES, GatewayRoutes, GatewaySink
from simulators.lorawan_nodes import LorawanNodes
from simulators.messages import Message
from simulators.network import network_file
from simulators.outputs import MqttSink, RecordSink, Sink, StdoutSink
from simulators.publish import MqttPublisher
from simulators.record import BrokerRecorder, Header, RecordingWriter, read_recording
from simulators.replay import replay_stream, span, time_offset
from simulators.scenario import load_scenario, shipped_scenarios
from telemetry.equipment.files import render_assets_csv, render_models_csv
from telemetry.protocols.lorawan_profile import load_profiles, shipped_profiles_folder
from telemetry.registry import render_devices_csv
from telemetry.settings import Settings
from telemetry.topics import Fleet, subscription_filter


def _speed_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--speed", type=float, help="time factor: 1 real time, 60 a minute per s")
    group.add_argument("--fast", action="store_true", help="as fast as possible, no waiting")


def _publish_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefix", help="topic prefix (default: RASD_TOPIC_PREFIX, rasd/v1)")
    parser.add_argument(
        "--connections",
        type=int,
        default=4,
        help="shared MQTT connections (default 4), devices spread over them",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=1000,
        help="unacknowledged QoS 1 messages per connection (default 1000)",
    )
    parser.add_argument(
        "--device-credentials",
        type=Path,
        metavar="JSON",
        help='{"device_id": "password"}: one connection per device, own account',
    )
    parser.add_argument(
        "--protocol",
        choices=("5", "3.1.1"),
        default="5",
        help="MQTT version to publish with (default 5)",
    )


def _gateway_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--via",
        default="",
        help="comma-separated gateways the devices use instead of contract v1 MQTT: "
        "teltonika (trucks' trackers), chirpstack (a share of the lights); default none",
    )
    parser.add_argument(
        "--via-buses", action="store_true", help="with --via teltonika: buses' trackers too"
    )
    parser.add_argument(
        "--chirpstack-share",
        type=float,
        default=0.25,
        help="with --via chirpstack: share of the lights behind ChirpStack (default 0.25)",
    )
    parser.add_argument(
        "--gateway-host",
        default="127.0.0.1",
        help="the Teltonika gateway's host (port: RASD_GATEWAY_TELTONIKA_PORT)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="simulate a scenario and publish (or print) its messages")
    run.add_argument("scenario", help="shipped scenario name (city, smoke, ...) or TOML path")
    run.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    _speed_options(run)
    run.add_argument("--duration", help="simulated time: seconds or 10m, 2h, 1d")
    run.add_argument("--start", help="'now' or ISO time (no offset: Marrakech local time)")
    out = run.add_mutually_exclusive_group()
    out.add_argument("--stdout", action="store_true", help="print JSON lines, do not publish")
    out.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="write a recording (.jsonl.gz) with simulated timing, do not publish",
    )
    run.add_argument("--shard", default="0/1", help="INDEX/COUNT: this process's part of the city")
    _publish_options(run)
    _gateway_options(run)

    record = sub.add_parser("record", help="capture broker traffic into a recording")
    record.add_argument("file", type=Path)
    record.add_argument("--duration", help="stop after this wall time (default: Ctrl-C)")
    record.add_argument("--count", type=int, help="stop after this many messages")
    record.add_argument("--topic", help="topic filter (default: PREFIX/+/+/+)")
    record.add_argument("--prefix", help="topic prefix recorded in the header")

    replay = sub.add_parser("replay", help="publish a recording again")
    replay.add_argument("file", type=Path)
    _speed_options(replay)
    replay.add_argument(
        "--keep-time",
        action="store_true",
        help="leave payload timestamps as recorded (default: move them to now)",
    )
    replay.add_argument("--stdout", action="store_true", help="print JSON lines, do not publish")
    _publish_options(replay)

    registry = sub.add_parser("registry", help="write the devices CSV of a scenario")
    registry.add_argument("scenario")
    registry.add_argument("-o", "--output", type=Path, help="file (default: stdout)")

    equipment = sub.add_parser(
        "equipment",
        help="write the equipment register (assets and models CSV) of a scenario, "
        "for python -m telemetry assets import-models / import",
    )
    equipment.add_argument("scenario")
    equipment.add_argument("--assets", type=Path, required=True, help="assets CSV file")
    equipment.add_argument("--models", type=Path, required=True, help="models CSV file")

    network = sub.add_parser(
        "network",
        help="write the network file (lines, stops, headways, truck rounds) of a scenario, "
        "for python -m alerts routes import",
    )
    network.add_argument("scenario")
    network.add_argument("-o", "--output", type=Path, help="file (default: stdout)")

    sub.add_parser("scenarios", help="list the shipped scenarios")
    return parser


def _settings(prefix: str | None) -> Settings:
    try:
        return Settings() if prefix is None else Settings(topic_prefix=prefix)
    except ValidationError as exc:
        raise SimulatorError(f"settings: {exc.errors(include_url=False)[0]['msg']}") from None


def _speed(args: argparse.Namespace, default: float) -> float | None:
    if args.fast:
        return None
    speed = args.speed if args.speed is not None else default
    if speed <= 0:
        raise SimulatorError("--speed must be positive")
    return float(speed)


class _Stop:
    """SIGTERM/SIGINT end the stream cleanly: what was published is still acknowledged."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def _publisher(args: argparse.Namespace, settings: Settings) -> MqttPublisher:
    credentials = None
    if args.device_credentials is not None:
        try:
            credentials = json.loads(args.device_credentials.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise SimulatorError(f"--device-credentials: {exc}") from None
        if not isinstance(credentials, dict) or not all(
            isinstance(v, str) for v in credentials.values()
        ):
            raise SimulatorError('--device-credentials: expected {"device_id": "password", ...}')
    return MqttPublisher(
        settings,
        connections=args.connections,
        window=args.window,
        credentials=credentials,
        protocol=args.protocol,
    )


def _pump(messages: Iterator[Message], sink: Sink, pacer: Pacer, stop: _Stop) -> int:
    count = 0
    wait = pacer.wait
    send = sink.send
    idle = sink.idle
    for message in messages:
        if stop.requested:
            break
        wait(message.at, idle)
        send(message)
        count += 1
    return count


def _run_sink(
    args: argparse.Namespace,
    stack: ExitStack,
    settings: Settings,
    engine: Engine,
    speed: float | None,
) -> Sink:
    """Where ``run`` sends its messages: stdout, a recording, or the broker."""
    if args.stdout:
        return StdoutSink()
    if args.record is not None:
        header = Header(
            settings.topic_prefix,
            engine.start,
            "simulator",
            {
                "scenario": engine.scenario.name,
                "seed": engine.seed,
                "start": iso_local(engine.start),
                "duration_s": None if math.isinf(engine.end) else engine.end - engine.start,
                "shard": args.shard,
            },
        )
        return RecordSink(RecordingWriter(args.record, header))
    warning = ingest_window_warning(
        engine.start,
        None if math.isinf(engine.end) else engine.end,
        speed,
        time.time(),
        settings.max_age_s,
        settings.max_future_s,
    )
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    mqtt = MqttSink(stack.enter_context(_publisher(args, settings)))
    return _gateway_sink(args, settings, mqtt) if args.via else mqtt


def _gateway_sink(args: argparse.Namespace, settings: Settings, mqtt: MqttSink) -> Sink:
    via = {v.strip() for v in args.via.split(",") if v.strip()}
    unknown = via - set(VIA_CHOICES)
    if unknown:
        raise SimulatorError(f"--via: unknown {', '.join(sorted(unknown))}; use {VIA_CHOICES}")
    if not 0 <= args.chirpstack_share <= 1:
        raise SimulatorError("--chirpstack-share must be between 0 and 1")
    fleets = (Fleet.TRUCK, Fleet.BUS) if args.via_buses else (Fleet.TRUCK,)
    routes = GatewayRoutes(
        teltonika=fleets if "teltonika" in via else (),
        chirpstack_share=args.chirpstack_share if "chirpstack" in via else 0.0,
        teltonika_host=args.gateway_host,
        teltonika_port=settings.gateway_teltonika_port,
    )
    nodes = None
    if "chirpstack" in via:
        folder = settings.gateway_lorawan_profiles
        profiles = load_profiles(Path(folder) if folder else shipped_profiles_folder())
        if not profiles.profiles:
            raise SimulatorError("--via chirpstack: no LoRaWAN device profile to speak")
        # Under the same leading levels the gateway's filter expects (none by default).
        chirpstack_filter = settings.gateway_chirpstack_topics
        head = chirpstack_filter[: chirpstack_filter.find("application/")]
        nodes = LorawanNodes(profile=profiles.profiles[0], topic_prefix=head)
    return GatewaySink(mqtt=mqtt, routes=routes, prefix=settings.topic_prefix, nodes=nodes)


def _run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    settings = _settings(args.prefix)
    seed = scenario.seed if args.seed is None else args.seed
    start = parse_start(args.start or scenario.start)
    duration_text = args.duration if args.duration is not None else scenario.duration
    duration = None if duration_text is None else parse_duration(duration_text)
    # A recording keeps simulated timing itself: writing it needs no waiting.
    speed = None if args.record is not None else _speed(args, scenario.speed)
    engine = Engine(
        scenario,
        seed=seed,
        start=start,
        duration=duration,
        prefix=settings.topic_prefix,
        shard=Shard.parse(args.shard),
    )
    began = time.monotonic()
    with ExitStack() as stack:
        stop = stack.enter_context(_Stop())
        sink = _run_sink(args, stack, settings, engine, speed)
        count = _pump(engine.messages(), sink, Pacer(start, speed), stop)
        sink.finish()
    elapsed = time.monotonic() - began
    print(
        f"{scenario.name}: {count} messages in {elapsed:.1f} s "
        f"({count / max(elapsed, 1e-9):.0f}/s), seed {seed}, start {iso_local(start)}",
        file=sys.stderr,
    )
    return 130 if stop.requested else 0


def _record(args: argparse.Namespace) -> int:
    settings = _settings(args.prefix)
    topic = args.topic or subscription_filter(settings.topic_prefix)
    limit = None if args.duration is None else parse_duration(args.duration)
    started = time.monotonic()
    header = Header(settings.topic_prefix, time.time(), "broker", {"filter": topic})
    with _Stop() as stop, RecordingWriter(args.file, header) as writer:
        recorder = BrokerRecorder(settings, topic, writer, started)
        recorder.start()
        print(f"recording {topic}", file=sys.stderr, flush=True)
        try:
            while not stop.requested:
                if limit is not None and time.monotonic() - started >= limit:
                    break
                if args.count is not None and recorder.count >= args.count:
                    break
                time.sleep(0.05)
        finally:
            recorder.stop()
    print(f"recorded {writer.count} messages from {topic} into {args.file}", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    settings = _settings(args.prefix)
    header, records = read_recording(args.file)
    bounds = span(records)
    if bounds is None:
        print(f"{args.file}: no messages", file=sys.stderr)
        return 0
    first, last = bounds
    speed = _speed(args, 1.0)
    now = time.time()
    shift = 0 if args.keep_time else time_offset(header, first, last, now, speed)
    header, records = read_recording(args.file)
    stream = replay_stream(
        header, records, prefix=settings.topic_prefix, shift=shift, first_t=first, speed=speed
    )
    messages = (
        Message(r.delay, r.topic, r.payload, r.topic.rsplit("/", 2)[-2], r.defect, r.rejects)
        for r in stream
    )
    began = time.monotonic()
    with ExitStack() as stack:
        stop = stack.enter_context(_Stop())
        sink: Sink
        if args.stdout:
            sink = StdoutSink(trusted_json=False)
        else:
            sink = MqttSink(stack.enter_context(_publisher(args, settings)))
        count = _pump(messages, sink, Pacer(0.0, speed), stop)
        sink.finish()
    elapsed = time.monotonic() - began
    print(
        f"replayed {count} messages from {args.file} in {elapsed:.1f} s "
        f"(timestamps moved {shift} s)",
        file=sys.stderr,
    )
    return 130 if stop.requested else 0


def _registry(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    text = render_devices_csv(registry_records(build_devices(scenario), scenario))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, "utf-8")
        print(f"{text.count(chr(10)) - 1} devices written to {args.output}", file=sys.stderr)
    return 0


def _equipment(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    register = equipment_register(build_devices(scenario), scenario)
    args.models.write_text(render_models_csv(register.models), "utf-8")
    args.assets.write_text(render_assets_csv(register.assets), "utf-8")
    print(
        f"{len(register.models)} models written to {args.models}, "
        f"{len(register.assets)} assets to {args.assets}",
        file=sys.stderr,
    )
    return 0


def _network(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    data = network_file(scenario, build_devices(scenario))
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, "utf-8")
        print(
            f"{len(data['routes'])} lines, {len(data['stops'])} stops and "
            f"{len(data['rounds'])} rounds written to {args.output}",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one simulators command; returns the process exit code."""
    args = _parser().parse_args(argv)
    commands = {
        "run": _run,
        "record": _record,
        "replay": _replay,
        "registry": _registry,
        "equipment": _equipment,
        "network": _network,
    }
    try:
        if args.command == "scenarios":
            print("\n".join(shipped_scenarios()))
            return 0
        return commands[args.command](args)
    except SimulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0  # e.g. piped into head
