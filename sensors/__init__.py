"""Field sensors: simulator, ingest service, payload mappings, device registry and status."""
