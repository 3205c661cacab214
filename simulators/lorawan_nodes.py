"""Simulated LoRaWAN light controllers (pure): a light's contract reports turned into what its
network server would publish, the decoded fields of a device profile read in reverse."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from telemetry.contract import parse_ts
from telemetry.protocols.lorawan_profile import Profile
from telemetry.protocols.lorawan_uplink import encode_chirpstack_uplink


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


@dataclass(kw_only=True)
class NodeState:
    """What a node remembers between uplinks: its frame counter and active fault bits."""

    f_cnt: int = 0
    status: int = 0


@dataclass(kw_only=True)
class LorawanNodes:
    """Encodes lights' reports as ChirpStack v4 uplinks through one device profile."""

    profile: Profile
    topic_prefix: str = ""  # a deployment's leading topic levels, e.g. "city/"
    f_port: int = field(init=False)
    states: dict[str, NodeState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.f_port = min(self.profile.fports)

    def fault_bit(self, fault: str) -> int | None:
        """The status bit the profile gives a TALQ fault, if it maps that fault."""
        if self.profile.faults is None:
            return None
        return next((b for b, name in self.profile.faults.bits.items() if name == fault), None)

    def uplinks(
        self, device_id: str, dev_eui: str, channel: str, payload: bytes
    ) -> list[tuple[str, bytes]] | None:
        """The uplinks carrying a contract energy or fault payload; None when the profile
        cannot say it (a fault it does not map), so the light reports over MQTT instead."""
        value = json.loads(payload)
        items = value if isinstance(value, list) else [value]
        state = self.states.setdefault(device_id, NodeState())
        out = []
        for item in items:
            decoded: dict[str, Any] = {}
            if channel == "fault":
                bit = self.fault_bit(item["fault"])
                if bit is None:
                    return None
                state.status = (
                    state.status | (1 << bit) if item["active"] else state.status & ~(1 << bit)
                )
            else:
                for mapping in self.profile.energy:
                    reading = item.get(mapping.contract_field)
                    if reading is not None:
                        # Rounded as a codec would print it; never past the contract's bounds
                        # once the profile scales it back (254 * 0.3937... < 100).
                        encoded = (
                            reading
                            if isinstance(reading, bool)
                            else round(reading / mapping.scale, 6)
                        )
                        _put(decoded, mapping.path, encoded)
            if self.profile.faults is not None:
                _put(decoded, self.profile.faults.path, state.status)
            state.f_cnt += 1
            topic, body = encode_chirpstack_uplink(
                dev_eui=dev_eui,
                time_ms=round(parse_ts(item["ts"]).timestamp() * 1000),
                f_port=self.f_port,
                f_cnt=state.f_cnt,
                data=state.f_cnt.to_bytes(4, "big"),  # the node's frame; the codec's output counts
                decoded=decoded,
                profile_name=self.profile.chirpstack_device_profiles[0],
            )
            out.append((self.topic_prefix + topic, body))
        return out
