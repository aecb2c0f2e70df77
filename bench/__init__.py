"""Benchmarks (`orchard bench ...`) and the local servers they and the tests start (Mosquitto, InfluxDB,
PostgreSQL, natively, on free loopback ports). Outside the production packages: no service imports it."""
