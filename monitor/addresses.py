"""Which IP addresses fetching may connect to: the SSRF guard's policy, pure (no I/O).

Feed URLs, article links and every redirect come from the open web. Without a guard, a feed
could point us at 169.254.169.254 (cloud metadata: credentials), at the database admin on
10.0.0.5, or at our own /metrics on 127.0.0.1. Only globally routable unicast addresses are
allowed, unless an operator allow-lists them (``[fetch] allow_private``; ``--allow-private``
for ``monitor parse``/``extract``, and a refusal names the one that applies). ``fetch``
applies this to the addresses a name resolved to, just before connecting (no TOCTOU window
between the check and the connect), on every redirect hop.

An allow-list entry is a network (``10.0.0.0/8``: every port), or one port of one host, so
that allowing a local feed server does not open the daemon's own /metrics or any other local
port (issue 15): an address (``127.0.0.1:8731``, ``[::1]:8731``) or a name (``localhost:8731``).
A name is matched on the host the URL names, and then trusts every address that very lookup
(the connector's own, the one it connects with) returned, on that port only; it is not
resolved at start-up, so no address can slip in between. A URL naming the address instead
(``http://127.0.0.1:8731/``) is not the name: allow the address for that.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Named first so that the refusal says why; anything else not global falls to "reserved".
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 shared address space
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the low 32 bits are an IPv4 address


_ENDPOINT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>[0-9]{1,5})$")
_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$")
_SYNTAX = "expected a network (CIDR such as 10.0.0.0/8) or a host and port (127.0.0.1:8731, [::1]:8731, localhost:8731)"


@dataclass(frozen=True)
class Allowed:
    """An allow-list, parsed: networks (every port), (address, port) and (name, port) pairs."""

    networks: tuple[Network, ...] = ()
    endpoints: frozenset[tuple[IP, int]] = frozenset()
    names: frozenset[tuple[str, int]] = frozenset()


def allow_list(entries: Iterable[str]) -> Allowed:
    """Parse ``["10.0.0.0/8", "127.0.0.1:8731", "[::1]:8731", "localhost:8731"]``; a bare
    address is its own network (all ports). ValueError names the bad entry and the syntax."""
    nets, points, names = [], set(), set()
    for entry in entries:
        text = str(entry).strip()
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        m = _ENDPOINT.match(text)
        port = int(m["port"]) if m else 0
        if not m or not 0 < port < 65536:
            raise ValueError(f"{entry!r}: {_SYNTAX}")
        host = (m["v6"] or m["host"]).lower().rstrip(".")
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            if m["v6"] or not _NAME.match(host) or legacy_ipv4(host):
                raise ValueError(f"{entry!r}: {_SYNTAX}") from None
            names.add((host, port))
            continue
        points.add((ip, port))
    return Allowed(tuple(nets), frozenset(points), frozenset(names))


def endpoint(host: str, port: int) -> str:
    """``127.0.0.1:8731``, ``[::1]:8731``: a host and port as an allow-list entry spells it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
    """``Policy(allow=["10.0.0.0/8", "127.0.0.1:8731"]).refusal(ip, port)``: None when fetching
    may connect to ``ip`` on ``port``, else why not ("loopback", "private", "cloud-metadata",
    ...). Without a port only the networks can allow an address."""

    def __init__(self, allow: Iterable[str] = ()):
        self.allow = allow_list(allow)

    def _allowed(self, ip: IP, port: int | None) -> bool:
        return (any(ip.version == n.version and ip in n for n in self.allow.networks)
                or (port is not None and (ip, port) in self.allow.endpoints))

    def refusal(self, address: str | IP, port: int | None = None) -> str | None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
        except ValueError:
            return "not an IP address"
        inner = _embedded(ip)
        if self._allowed(ip, port) or (inner is not None and self._allowed(inner, port)):
            return None
        # the IPv4 address behind a mapped one names the real target: "loopback", not "private"
        return (_class(inner) if inner is not None else None) or _class(ip)

    def trusts(self, host: str, port: int) -> bool:
        """Does a ``name:port`` entry allow whatever ``host`` resolves to, on ``port``?"""
        return (host.strip("[]").lower().rstrip("."), port) in self.allow.names


def exactly(address: str, port: int | None = None) -> str:
    """The entry that allow-lists ``address`` (the IPv4 address it stands for, if any, as
    ``Policy`` checks that one too) on ``port`` and nothing else: what a refusal tells the user
    to allow. Without a port, its one-address network."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:  # a name that resolved to nothing: nothing narrower to name
        return address
    ip = _embedded(ip) or ip
    return endpoint(str(ip), port) if port is not None else f"{ip}/{ip.max_prefixlen}"


def legacy_ipv4(host: str) -> str | None:
    """The dotted quad behind a host the C resolver would read as IPv4 (``2130706433``,
    ``0x7f.1``, ``0177.0.0.1``), or None. Such hosts never reach DNS: inet_aton decodes them."""
    if not host or ":" in host or not all(ch in "0123456789abcdefxABCDEFX." for ch in host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def is_network(text: str) -> bool:
    """``127.0.0.1``, ``::1``, ``10.0.0.0/8``: an address or a network ([web] proxy_addresses)."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True
