"""Which IP addresses fetching may connect to: the SSRF guard's policy, pure (no I/O).

Feed URLs, article links and every redirect come from the open web. Without a guard, a feed
could point us at 169.254.169.254 (cloud metadata: credentials), at the database admin on
10.0.0.5, or at our own /metrics on 127.0.0.1. Only globally routable unicast addresses are
allowed, unless an operator allow-lists a network (``[fetch] allow_private``; ``--allow-private``
for ``monitor parse``/``extract``, and a refusal names the one that applies). ``fetch``
applies this to the addresses a name resolved to, just before connecting (no TOCTOU window
between the check and the connect), on every redirect hop.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Named first so that the refusal says why; anything else not global falls to "reserved".
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 shared address space
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the low 32 bits are an IPv4 address


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDRs such as ``127.0.0.1/32`` or ``fd00::/8``; ValueError names the bad one."""
    out = []
    for c in cidrs:
        try:
            out.append(ipaddress.ip_network(c.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{c!r} is not an IP network (expected CIDR such as 10.0.0.0/8)") from None
    return tuple(out)


def _embedded(ip: IP) -> IP | None:
    """The IPv4 address an IPv6 address stands for (mapped ::ffff:a.b.c.d, NAT64, 6to4, Teredo)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour:
        return ip.sixtofour
    return ip.teredo[1] if ip.teredo else None


def _class(ip: IP) -> str | None:
    """Why ``ip`` is not a public unicast address, or None if it is."""
    if ip in _METADATA:
        return "cloud-metadata"
    checks = (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
              ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
              ("shared (CGNAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
              ("private", ip.is_private), ("reserved", ip.is_reserved or not ip.is_global))
    return next((name for name, hit in checks if hit), None)


class Policy:
    """``Policy(allow=["127.0.0.1/32"]).refusal(ip)``: None when fetching may connect to
    ``ip``, else why not ("loopback", "private", "cloud-metadata", ...)."""

    def __init__(self, allow: Iterable[str] = ()):
        self.allow = networks(allow)

    def _allowed(self, ip: IP) -> bool:
        return any(ip.version == n.version and ip in n for n in self.allow)

    def refusal(self, address: str | IP) -> str | None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
        except ValueError:
            return "not an IP address"
        inner = _embedded(ip)
        if self._allowed(ip) or (inner is not None and self._allowed(inner)):
            return None
        # the IPv4 address behind a mapped one names the real target: "loopback", not "private"
        return (_class(inner) if inner is not None else None) or _class(ip)


def exactly(address: str) -> str:
    """The CIDR that allow-lists ``address`` and nothing else (the IPv4 address it stands for,
    if any, as ``Policy`` checks that one too): what a refusal tells the user to allow."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:  # a name that resolved to nothing: nothing narrower to name
        return address
    ip = _embedded(ip) or ip
    return f"{ip}/{ip.max_prefixlen}"


def legacy_ipv4(host: str) -> str | None:
    """The dotted quad behind a host the C resolver would read as IPv4 (``2130706433``,
    ``0x7f.1``, ``0177.0.0.1``), or None. Such hosts never reach DNS: inet_aton decodes them."""
    if not host or ":" in host or not all(ch in "0123456789abcdefxABCDEFX." for ch in host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None
