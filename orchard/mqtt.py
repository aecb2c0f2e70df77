"""Building paho-mqtt 2.x clients from the settings: protocol, TLS, credentials, last will."""

from __future__ import annotations

import ssl

from paho.mqtt.client import CallbackAPIVersion, Client
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from orchard.settings import parse_mqtt_url


def make_client(
    url: str,
    client_id: str,
    *,
    protocol: str = "5",
    persistent: bool = False,
    manual_ack: bool = False,
) -> Client:
    """A client ready for `connect_to`; nothing is contacted yet."""
    target = parse_mqtt_url(url)
    version = MQTTProtocolVersion.MQTTv5 if protocol == "5" else MQTTProtocolVersion.MQTTv311
    # MQTT 3.1.1 asks for a persistent session at construction; v5 at connect (clean_start).
    clean_session = None if version == MQTTProtocolVersion.MQTTv5 else not persistent
    client = Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version, manual_ack=manual_ack,
        clean_session=clean_session,
    )
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    # Retry soon after a broker restart, but not in a tight loop.
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect_to(
    client: Client, url: str, *, persistent: bool = False, session_expiry_s: int = 0, receive_maximum: int = 0
) -> None:
    """Start connecting (asynchronously; run the client's loop to complete it)."""
    target = parse_mqtt_url(url)
    if client.protocol == MQTTProtocolVersion.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = session_expiry_s
        if receive_maximum:
            props.ReceiveMaximum = min(receive_maximum, 65535)
        client.connect_async(target.host, target.port, keepalive=30, clean_start=not persistent, properties=props)
    else:
        client.connect_async(target.host, target.port, keepalive=30)


def telemetry_topic(prefix: str, site: str, plot: str, device: str) -> str:
    return f"{prefix}/{site}/{plot}/{device}/telemetry"


def status_topic(prefix: str, site: str, plot: str, device: str) -> str:
    return f"{prefix}/{site}/{plot}/{device}/status"
