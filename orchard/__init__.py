"""Smart-orchard command center: the shared core (settings, models, store adapters, MQTT helpers, CLI)."""

__version__ = "0.1.0"
