"""The SSRF guard: fetching refuses loopback, private, link-local, metadata and other
non-public addresses after DNS and on every redirect, unless ``[fetch] allow_private`` lists
them. No test sends a packet beyond loopback: the non-loopback targets are refused before any
connect, and the loopback "victims" are listeners that count the connections they get."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from conftest import db_rows, rss, run_cli, write_config

from monitor.addresses import Policy, exactly, legacy_ipv4
from monitor.errors import FetchError
from monitor.fetch import Client, Limits

ALLOW_SERVER = ("127.0.0.1/32",)  # the FeedServer; 127.0.0.2 and everything else stay refused


class Victim:
    """A TCP listener on a loopback address that is NOT allow-listed; counts connections."""

    def __init__(self, host: str = "127.0.0.2", port: int = 0):
        self.sock = socket.create_server((host, port))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.1)
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def victim():
    v = Victim()
    yield v
    v.close()


class MapResolver(AbstractResolver):
    """Made-up names -> fixed addresses (the I/O edge, injected); records each lookup."""

    def __init__(self, table: dict[str, list[str]]):
        self.table, self.asked = table, []

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"unknown test name {host}")
        return [{"hostname": host, "host": ip, "port": port, "proto": 0, "flags": 0,
                 "family": socket.AF_INET6 if ":" in ip else socket.AF_INET} for ip in self.table[host]]

    async def close(self) -> None:
        pass


def get(url: str, allow: tuple[str, ...] = ALLOW_SERVER, resolver: AbstractResolver | None = None):
    async def go():
        async with Client(Limits(connect_timeout=2, timeout=5, allow_private=allow), resolver=resolver) as http:
            return await http.get(url)

    return asyncio.run(go())


def refused(url: str, **kw) -> FetchError:
    started = time.monotonic()
    with pytest.raises(FetchError) as e:
        get(url, **kw)
    assert e.value.kind == "blocked-address", e.value
    assert time.monotonic() - started < 2  # refused at once, not a connect that timed out
    return e.value


# --- the policy, pure -------------------------------------------------------------------

@pytest.mark.parametrize("ip,why", [
    ("127.0.0.1", "loopback"), ("127.0.0.2", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("fd12::1", "private"), ("169.254.169.254", "cloud-metadata"), ("fd00:ec2::254", "cloud-metadata"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("100.64.0.1", "shared (CGNAT)"), ("240.0.0.1", "private"), ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "cloud-metadata"), ("64:ff9b::a00:1", "private"),
    ("2002:7f00:1::", "loopback"),
])
def test_policy_refuses_non_public_addresses(ip, why):
    assert Policy().refusal(ip) == why


@pytest.mark.parametrize("ip", ["93.184.216.34", "8.8.8.8", "2a00:1450:4001::1"])
def test_policy_allows_public_addresses(ip):
    assert Policy().refusal(ip) is None


def test_allow_list_opens_exactly_its_networks():
    p = Policy(["127.0.0.1/32", "10.0.0.0/8"])
    assert p.refusal("127.0.0.1") is None and p.refusal("10.9.9.9") is None
    assert p.refusal("::ffff:127.0.0.1") is None  # the same host, mapped
    assert p.refusal("127.0.0.2") == "loopback" and p.refusal("192.168.0.1") == "private"


@pytest.mark.parametrize("address,cidr", [("127.0.0.1", "127.0.0.1/32"), ("::1", "::1/128"),
                                          ("::ffff:10.0.0.1", "10.0.0.1/32"), ("fe80::1%eth0", "fe80::1/128")])
def test_a_refusal_names_the_network_that_allows_exactly_its_address(address, cidr):
    assert exactly(address) == cidr and Policy([cidr]).refusal(address) is None


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0177.0.0.1", "127.1"])
def test_legacy_numeric_hosts_are_read_as_the_address_they_are(host):
    assert legacy_ipv4(host) == "127.0.0.1"


# --- the client: literals, names, redirects ---------------------------------------------

def test_loopback_is_refused_by_default_and_nothing_is_sent(feed_server):
    url = feed_server.add("/f.xml", rss([]))
    err = refused(url, allow=())
    assert "127.0.0.1" in err.detail and "loopback" in err.detail and "allow_private" in err.detail
    assert feed_server.log == []
    assert get(url).status == 200  # allow-listed: fetched


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "127.1"])
def test_other_spellings_of_loopback_are_refused(feed_server, host):
    feed_server.add("/f.xml", rss([]))
    refused(f"http://{host}:{feed_server.port}/f.xml", allow=())
    assert feed_server.log == []


def test_redirect_to_a_loopback_address_not_allowed_is_refused_before_connecting(feed_server, victim):
    url = feed_server.add("/r", b"", status=302, etag=False,
                          headers={"Location": f"http://127.0.0.2:{victim.port}/secret"})
    err = refused(url)
    assert "127.0.0.2" in err.detail
    assert [p for p, _ in feed_server.log] == ["/r"]  # the first hop was fetched ...
    time.sleep(0.2)
    assert victim.accepted == 0  # ... the second never connected


@pytest.mark.parametrize("target", ["http://10.0.0.1/admin", "http://169.254.169.254/latest/meta-data/",
                                    "http://[fd00:ec2::254]/latest/", "http://[fe80::1]/"])
def test_redirect_to_private_or_metadata_address_is_refused(feed_server, target):
    url = feed_server.add("/r", b"", status=301, etag=False, headers={"Location": target})
    refused(url)


def test_name_resolving_to_metadata_is_refused_after_dns():
    dns = MapResolver({"metadata.test": ["169.254.169.254"]})
    err = refused("http://metadata.test/latest/meta-data/iam/", resolver=dns)
    assert dns.asked == ["metadata.test"] and err.detail == (
        "refused: metadata.test resolves to 169.254.169.254, which is a cloud-metadata address; "
        'to allow it, add "169.254.169.254/32" to [fetch] allow_private')


def test_name_resolving_to_a_refused_loopback_never_connects(victim):
    dns = MapResolver({"sneaky.test": ["127.0.0.2"]})
    refused(f"http://sneaky.test:{victim.port}/", resolver=dns)
    time.sleep(0.2)
    assert victim.accepted == 0


def test_redirect_to_a_name_that_resolves_private_is_refused(feed_server, victim):
    dns = MapResolver({"feeds.test": ["127.0.0.1"], "internal.test": ["127.0.0.2"]})
    feed_server.add("/r", b"", status=307, etag=False,
                    headers={"Location": f"http://internal.test:{victim.port}/"})
    refused(f"http://feeds.test:{feed_server.port}/r", resolver=dns)
    assert dns.asked == ["feeds.test", "internal.test"]
    time.sleep(0.2)
    assert victim.accepted == 0


def test_only_the_allowed_addresses_of_a_name_are_used(feed_server):
    """A name with a refused and an allowed address connects to the allowed one only."""
    victim = Victim(port=feed_server.port)  # same port on 127.0.0.2: tried first if not filtered
    try:
        dns = MapResolver({"both.test": ["127.0.0.2", "127.0.0.1"]})
        feed_server.add("/f.xml", rss([]))
        assert get(f"http://both.test:{feed_server.port}/f.xml", resolver=dns).status == 200
        time.sleep(0.2)
        assert victim.accepted == 0
    finally:
        victim.close()


# --- through the daemon: the refusal is the feed's health ------------------------------

def test_blocked_feed_is_recorded_in_feed_health(tmp_path, feed_server):
    url = feed_server.add("/f.xml", rss([]))
    cfg = write_config(tmp_path, feeds=[url], channels={"console": ["log://"]})
    text = cfg.read_text("utf-8")
    cfg.write_text("\n".join(x for x in text.splitlines() if not x.startswith("allow_private")) + "\n")
    res = run_cli("once", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    [(status, kind, error)] = db_rows(tmp_path / "monitor.db",
                                      "SELECT last_status, last_error_kind, last_error FROM feeds")
    assert (status, kind) == ("error", "blocked-address") and "loopback" in error
    assert feed_server.log == []
