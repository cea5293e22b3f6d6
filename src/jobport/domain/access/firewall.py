"""Firewall rules of a key (ranges of addresses it works from) and the caller's address
behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from jobport.domain.wire import Flag, Wire

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(value: str) -> IPAddress:
    """An IP address, with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) unwrapped to IPv4."""
    address = ipaddress.ip_address(value.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class FirewallRule(Wire):
    name: str = Field(min_length=1, max_length=200)
    start_ip: str
    end_ip: str
    enabled: Flag = True

    @field_validator("start_ip", "end_ip")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return str(parse_address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None

    @model_validator(mode="after")
    def _range(self) -> FirewallRule:
        start, end = parse_address(self.start_ip), parse_address(self.end_ip)
        if start.version != end.version:
            raise ValueError("startIp and endIp must both be IPv4 or both IPv6")
        if end < start:  # type: ignore[operator]
            raise ValueError("endIp must not be lower than startIp")
        return self

    def matches(self, address: IPAddress) -> bool:
        start, end = parse_address(self.start_ip), parse_address(self.end_ip)
        return (
            self.enabled and address.version == start.version and start <= address <= end  # type: ignore[operator]
        )


def address_allowed(rules: Iterable[FirewallRule | Mapping[str, Any]], address: str) -> bool:
    """An empty rule list allows every address; otherwise an enabled rule must match."""
    parsed = [r if isinstance(r, FirewallRule) else FirewallRule.model_validate(r) for r in rules]
    if not parsed:
        return True
    try:
        ip = parse_address(address)
    except ValueError:
        return False
    return any(rule.matches(ip) for rule in parsed)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str]
) -> str:
    """The caller's address: the socket peer, or X-Forwarded-For behind a trusted proxy.

    Walk X-Forwarded-For from the right, skipping trusted proxies: the first address that is
    not one is the client (anything further left could have been forged by it).
    """
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def trusted(value: str) -> bool:
        try:
            ip = parse_address(value)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if peer is None:
        return "unknown"
    if not forwarded_for or not trusted(peer):
        return _display(peer)
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return _display(hop)
    return _display(hops[0]) if hops else _display(peer)


def _display(value: str) -> str:
    try:
        return str(parse_address(value))
    except ValueError:
        return value
