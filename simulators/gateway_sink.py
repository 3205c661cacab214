"""Simulated devices that reach Rasd through its gateways, as a city's real ones do: trucks (and,
as an option, buses) over Teltonika Codec 8E, a share of the lights as ChirpStack uplinks; the
rest, and every deliberately broken message, over contract v1 MQTT."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.gateway_identities import in_share, light_dev_eui, tracker_imei
from simulators.lorawan_nodes import LorawanNodes
from simulators.messages import Message
from simulators.outputs import MqttSink
from simulators.teltonika_link import TeltonikaLink, position_records
from telemetry.errors import Rejection
from telemetry.topics import Channel, Fleet, parse_topic

VIA_CHOICES = ("teltonika", "chirpstack")


@dataclass(kw_only=True)
class GatewayRoutes:
    """Which simulated devices use which gateway."""

    teltonika: tuple[Fleet, ...] = ()  # fleets whose trackers speak Teltonika
    chirpstack_share: float = 0.0  # share of the lights behind a LoRaWAN network server
    teltonika_host: str = "127.0.0.1"
    teltonika_port: int = 5027


@dataclass(kw_only=True)
class GatewaySink:
    """Sends each message the way its device would; waits for each gateway's acknowledgement."""

    mqtt: MqttSink
    routes: GatewayRoutes
    prefix: str
    nodes: LorawanNodes | None = None
    links: dict[str, TeltonikaLink] = field(default_factory=dict)
    via_teltonika: int = 0
    via_chirpstack: int = 0

    def send(self, message: Message) -> None:
        """Send one message by its device's gateway, or over MQTT."""
        if message.defect is None and self._send_via_gateway(message):
            return
        self.mqtt.send(message)

    def _send_via_gateway(self, message: Message) -> bool:
        try:
            topic = parse_topic(message.topic, self.prefix)
        except Rejection:
            return False
        if topic.channel is Channel.POSITION and topic.fleet in self.routes.teltonika:
            link = self.links.get(topic.device_id)
            if link is None:
                link = TeltonikaLink(
                    host=self.routes.teltonika_host,
                    port=self.routes.teltonika_port,
                    imei=tracker_imei(topic.device_id),
                )
                self.links[topic.device_id] = link
            link.send(position_records(message.payload))
            self.via_teltonika += 1
            return True
        if (
            self.nodes is not None
            and topic.fleet is Fleet.LIGHT
            and in_share(topic.device_id, self.routes.chirpstack_share)
        ):
            uplinks = self.nodes.uplinks(
                topic.device_id,
                light_dev_eui(topic.device_id),
                topic.channel.value,
                message.payload,
            )
            if uplinks is None:
                return False
            for uplink_topic, body in uplinks:
                self.mqtt.publisher.publish(message.device_id, uplink_topic, body)
            self.via_chirpstack += 1
            return True
        return False

    def finish(self) -> None:
        """Wait for the broker's acknowledgements and close the tracker connections."""
        self.mqtt.finish()
        for link in self.links.values():
            link.close()

    def idle(self, seconds: float) -> None:
        """Keep the MQTT connections serviced while waiting."""
        self.mqtt.idle(seconds)
