"""The embedded MQTT 3.1.1 broker (amqtt) that `orchard demo` runs when no ORCHARD_MQTT_URL is given.

For the demo only: it keeps sessions in memory. Production uses Mosquitto with deploy/mosquitto/mosquitto.conf.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from amqtt.broker import Broker


def broker_config(port: int) -> dict[str, object]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def run_broker(port: int) -> None:
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)

    async def main() -> None:
        broker = Broker(broker_config(port))
        await broker.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        with contextlib.suppress(Exception):
            await broker.shutdown()

    asyncio.run(main())
