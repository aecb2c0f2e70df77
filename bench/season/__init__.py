"""`orchard bench season`: the rule pack measured on seasons it was not tuned on. A weather model of its own
(weather.py), truth from the literature definitions (truth.py), the engine driven through each season with an
injected clock (run.py)."""
