"""The browser's address, as the sign-in limit counts it and the session cookie is bound to it."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence


def is_trusted(peer: str, trusted: Sequence[str]) -> bool:
    """The connection's peer is one of the trusted reverse proxies."""
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in trusted)


def client_address(peer: str | None, headers: Mapping[str, str], trusted: Sequence[str]) -> str:
    """The browser's address for the per-address sign-in limit: the connection's own peer, unless that peer is
    one of the trusted reverse proxies, which say who is behind them in X-Real-IP (or the last hop of
    X-Forwarded-For). Anyone else sending those headers is ignored: they cannot pick a fresh address per try."""
    if not peer:
        return "unknown"
    if not is_trusted(peer, trusted):
        return peer
    lower = {k.lower(): v for k, v in headers.items()}
    told = lower.get("x-real-ip") or lower.get("x-forwarded-for", "").split(",")[-1]
    return told.strip()[:64] or peer
