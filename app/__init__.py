"""The composition root: the `orchard` command and what an operator runs by hand (admin, demo, backup, the
embedded broker, the broker's account files). The one place besides `bench` that imports the services; it builds
each of them in a visible order and starts it. Nothing here is imported by a service or by the core."""
