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
from servers import FeedServer

from monitor.addresses import Policy, allow_list, exactly, legacy_ipv4
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


def test_a_host_and_port_entry_allows_that_port_only():
    p = Policy(["127.0.0.1:8731", "[::1]:8731", "10.0.0.0/8"])
    assert p.refusal("127.0.0.1", 8731) is None and p.refusal("::1", 8731) is None
    assert p.refusal("::ffff:127.0.0.1", 8731) is None  # the same host, mapped
    assert p.refusal("127.0.0.1", 9100) == "loopback" and p.refusal("::1", 9100) == "loopback"
    assert p.refusal("127.0.0.1") == "loopback"  # no port known: only a network can allow it
    assert p.refusal("10.1.2.3", 9100) is None  # a network keeps allowing every port


def test_a_name_entry_trusts_that_name_on_that_port_only():
    p = Policy(["localhost:8731", "Feeds.Internal.:80"])
    assert p.trusts("localhost", 8731) and p.trusts("feeds.internal", 80)
    assert not p.trusts("localhost", 9100) and not p.trusts("127.0.0.1", 8731)
    assert p.refusal("127.0.0.1", 8731) == "loopback"  # the address is not the name


@pytest.mark.parametrize("entry", ["127.0.0.1:0", "127.0.0.1:65536", "[::1]", "[localhost]:80",
                                   "localhost", "localhost:http", "0x7f.1:80", "10.0.0.0/33", "",
                                   "feeds..test:80", "http://127.0.0.1:8731/"])
def test_a_malformed_entry_is_named_with_the_syntax(entry):
    with pytest.raises(ValueError) as e:
        allow_list([entry])
    assert repr(entry) in str(e.value) and "127.0.0.1:8731" in str(e.value) and "CIDR" in str(e.value)


@pytest.mark.parametrize("address,port,entry", [("127.0.0.1", 8731, "127.0.0.1:8731"), ("::1", 80, "[::1]:80"),
                                                ("::ffff:10.0.0.1", 443, "10.0.0.1:443")])
def test_a_refusal_with_a_port_names_that_host_and_port(address, port, entry):
    assert exactly(address, port) == entry and Policy([entry]).refusal(address, port) is None
    assert Policy([entry]).refusal(address, port + 1) is not None


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
        'to allow it, add "169.254.169.254:80" to [fetch] allow_private')


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


@pytest.fixture
def other_server():
    """A second loopback HTTP server, standing for /metrics or any other local port."""
    srv = FeedServer()
    yield srv
    srv.close()


def test_a_port_entry_opens_that_port_and_no_other_on_the_same_host(feed_server, other_server):
    allow = (f"127.0.0.1:{feed_server.port}",)
    assert get(feed_server.add("/f.xml", rss([])), allow=allow).status == 200
    other = other_server.add("/metrics", "monitor_up 1\n")
    err = refused(other, allow=allow)
    assert err.detail == ("refused: 127.0.0.1 is a loopback address; "
                          f'to allow it, add "127.0.0.1:{other_server.port}" to [fetch] allow_private')
    assert other_server.log == []
    assert get(other, allow=("127.0.0.0/8",)).status == 200  # control: a network opens every port


def test_a_redirect_from_the_allowed_port_to_another_local_port_is_refused(feed_server, other_server):
    other = other_server.add("/metrics", "monitor_up 1\n")
    url = feed_server.add("/r", b"", status=302, etag=False, headers={"Location": other})
    err = refused(url, allow=(f"127.0.0.1:{feed_server.port}",))
    assert f"127.0.0.1:{other_server.port}" in err.detail and "allow_private" in err.detail
    assert [p for p, _ in feed_server.log] == ["/r"] and other_server.log == []


def test_a_name_entry_allows_what_that_name_resolves_to_on_its_port(feed_server, other_server):
    dns = MapResolver({"feeds.test": ["127.0.0.1"]})
    allow = (f"feeds.test:{feed_server.port}",)
    feed_server.add("/f.xml", rss([]))
    assert get(f"http://feeds.test:{feed_server.port}/f.xml", allow=allow, resolver=dns).status == 200
    other_server.add("/metrics", "monitor_up 1\n")
    refused(f"http://feeds.test:{other_server.port}/metrics", allow=allow, resolver=dns)
    refused(f"http://127.0.0.1:{feed_server.port}/f.xml", allow=allow, resolver=dns)  # not the name
    assert other_server.log == [] and [p for p, _ in feed_server.log] == ["/f.xml"]


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


def _config_allowing(tmp_path, feeds, allow):
    cfg = write_config(tmp_path, feeds=feeds, channels={"console": ["log://"]})
    lines = cfg.read_text("utf-8").splitlines()
    cfg.write_text("\n".join(f"allow_private = {allow}" if x.startswith("allow_private") else x
                             for x in lines) + "\n")
    return cfg


def test_the_daemon_allowed_one_local_port_polls_it_and_refuses_the_next(tmp_path, feed_server, other_server):
    ok, other = feed_server.add("/f.xml", rss([])), other_server.add("/f.xml", rss([]))
    cfg = _config_allowing(tmp_path, [ok, other], f'["127.0.0.1:{feed_server.port}"]')
    res = run_cli("once", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    rows = dict(db_rows(tmp_path / "monitor.db", "SELECT url, last_error_kind || ': ' || last_error FROM feeds"))
    assert rows[ok] is None and rows[other].startswith("blocked-address: ")
    assert rows[other].endswith(f'add "127.0.0.1:{other_server.port}" to [fetch] allow_private')
    assert other_server.log == [] and [p for p, _ in feed_server.log] == ["/f.xml"]


@pytest.mark.parametrize("entry", ["127.0.0.1:99999", "localhost"])
def test_config_names_a_malformed_allow_private_entry(tmp_path, entry):
    cfg = _config_allowing(tmp_path, [], f'["127.0.0.1:8731", "{entry}"]')
    res = run_cli("check", "--config", str(cfg))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "allow_private" in res.stderr and repr(entry) in res.stderr, res.stderr
    flag = run_cli("parse", "--allow-private", entry, "http://127.0.0.1:9/")
    assert flag.returncode == 2 and f"--allow-private: {entry!r}" in flag.stderr, flag.stderr
