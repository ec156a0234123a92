"""``monitor parse``, ``extract`` and ``match``: look at one input the way the daemon would,
without a daemon. A failed input is one ``error:`` line naming it; a batch goes on and exits 2
at the end (issue 14). Heavy libraries are imported in the command bodies (issue 16)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, TextIO

import click

from ..errors import MonitorError, RuleError
from ..models import why
from . import cli, config_option, fail, load_config

if TYPE_CHECKING:
    from ..fetch import Client, Limits


# parse and extract refuse a private address on their own terms: the flag is the fix there, not
# the config's [fetch] allow_private, which they do not read (issue 14).
ALLOW_FLAG_FIX = "rerun with --allow-private {entry}"
allow_private_option = click.option(
    "--allow-private", "allow_private", multiple=True, metavar="CIDR|HOST:PORT",
    help="What the SSRF guard lets fetching reach although not public (repeatable): a network "
         "(127.0.0.0/8, every port) or one host's port (127.0.0.1:8731, [::1]:8731, localhost:8731).",
)


def check_allow_private(allow_private: tuple[str, ...]) -> None:
    """A bad --allow-private entry exits 2 (whether a URL is given or not)."""
    from .. import addresses

    try:
        addresses.allow_list(allow_private)
    except ValueError as e:
        fail(f"--allow-private: {e}")


def client_limits(allow_private: tuple[str, ...]) -> Limits:
    """fetch.Limits for the one-off commands; a bad entry exits 2."""
    from ..fetch import Limits

    check_allow_private(allow_private)
    return Limits(allow_private=tuple(allow_private))


@cli.command("parse")
@click.argument("sources", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per input.")
@allow_private_option
def parse_cmd(sources: tuple[str, ...], as_json: bool, allow_private: tuple[str, ...]) -> None:
    """Parse feeds from files or URLs and print their entries. An input that fails is named on
    stderr (and in its JSON line); the rest go on, and the exit status is 2."""

    import asyncio

    from .. import opml, parse

    check_allow_private(allow_private)

    async def main() -> list[dict]:
        outs = []
        async with _client(allow_private, sources) as http:
            for src in sources:
                try:
                    body, ctype, url = await _read(http, src, page=False)
                    if opml.looks_like_page(body):
                        raise MonitorError(_page_not_feed(body, url))
                    feed = parse.parse_bytes(body, ctype, url)
                    out = {"source": src, "title": feed.title, "entries": [
                        {"id": e.uid, "title": e.title, "link": e.link,
                         "published": e.published, "summary": e.summary}
                        for e in feed.entries]}
                except MonitorError as e:
                    out = {"source": src, "error": str(e)}
                _emit(out, as_json)
                outs.append(out)
        return outs

    _exit_if_failed(asyncio.run(main()))


@cli.command("extract")
@click.argument("sources", nargs=-1, required=True)
@click.option("--url", help="The page's URL, for local files (resolves links, metadata).")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per page.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per page.")
@allow_private_option
def extract_cmd(sources: tuple[str, ...], url: str | None, as_json: bool, timeout: float,
                allow_private: tuple[str, ...]) -> None:
    """Extract the main text of HTML pages (files or URLs) in the daemon's worker pool (one page:
    in this process, with the same time limit). A page that fails is named on stderr (and in its
    JSON line); the rest go on, and the exit status is 2."""

    import asyncio

    from .. import extract
    from ..workers import InProcess, Pool

    check_allow_private(allow_private)

    async def main() -> list[dict]:
        # One page: no forkserver and workers to start (1-1.5 s); the limit is kept (workers.InProcess).
        pool = InProcess() if len(sources) == 1 else Pool(preload=("monitor.extract", "monitor.language"))
        try:
            async with _client(allow_private, sources) as http:
                results = await asyncio.gather(*(one(http, pool, s) for s in sources))
            for out in results:
                _emit(out, as_json)
            return results
        finally:
            pool.close()

    async def one(http: Client | None, pool: Pool | InProcess, src: str) -> dict:
        try:
            if src.startswith(("http://", "https://")):
                from .. import pipeline

                assert http is not None  # _client opens one when any source is a URL
                # the daemon's own path: fetch, extract, try the AMP/canonical alternate
                a, error = await pipeline.page_article(http, pool, src, timeout)  # type: ignore[arg-type]
                if a is None:
                    return {"source": src, "error": error}
            else:
                body, _, _ = await _read(http, src, page=True)
                a = await pool.run(extract.page, body, url, timeout=timeout)
            return {"source": src, "title": a.title, "text": a.text,
                    "language": a.language, "author": a.author, "date": a.date}
        except MonitorError as e:
            return {"source": src, "error": str(e)}

    _exit_if_failed(asyncio.run(main()))


@cli.command("match")
@config_option
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Folder of rule files (default: the config's; then no config is read).")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
def match_cmd(config_path: str, rules_dir: str | None, file: TextIO) -> None:
    """Match JSON lines against rules; one line out per line in.

    In: {"id", "title", "text", "summary"?, "lang"?, "date"?, "feed"?, "feed_title"?, "tags"?}.
    Out: {"id", "matches": [{"rule", "terms", "field", "score", "severity", "snippet", "salience",
    "tier", "features", "why"}]}: salience 0 to 1, tier alert | digest | store (README "Salience")."""
    from .. import rules
    from ..models import Article

    try:
        ruleset = rules.load(rules_dir or load_config(config_path).rules_dir)
    except RuleError as e:
        fail(str(e))
    for n, line in enumerate(file, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("expected a JSON object")
            article = Article(title=str(item.get("title") or ""), text=str(item.get("text") or ""),
                              summary=str(item.get("summary") or ""), language=item.get("lang"),
                              date=item.get("date"))
            feed = SimpleNamespace(url=str(item.get("feed") or ""), title=str(item.get("feed_title") or ""),
                                   tags=tuple(str(t) for t in item.get("tags") or ()))
        except (ValueError, TypeError) as e:
            click.echo(json.dumps({"id": None, "line": n, "error": f"line {n}: {e}"}))
            continue
        found = rules.match(ruleset, article, feed if item.get("feed") or item.get("tags") else None)
        click.echo(json.dumps({"id": item.get("id"), "matches": [
            {"rule": m.rule_id, "terms": list(m.terms), "field": m.field, "score": m.score,
             "severity": m.severity, "snippet": m.snippet, "salience": m.salience, "tier": m.tier,
             "features": dict(m.features), "why": why(m.features)} for m in found
        ]}, ensure_ascii=False))


def _client(allow_private: tuple[str, ...], sources: Iterable[str]) -> AbstractAsyncContextManager[Client | None]:
    """Our HTTP client when any source is a URL; None for local files only (aiohttp not loaded)."""
    if not any(s.startswith(("http://", "https://")) for s in sources):
        return nullcontext(None)
    from ..fetch import Client

    return Client(client_limits(allow_private), allow_fix=ALLOW_FLAG_FIX)


async def _read(http: object, src: str, *, page: bool) -> tuple[bytes, str, str]:
    """Bytes, content type and URL of a file or an http(s) URL, fetched by our own client."""
    if src.startswith(("http://", "https://")):
        r = await (http.page(src) if page else http.get(src))  # type: ignore[attr-defined]
        return r.body, r.content_type, r.url
    try:
        return Path(src).read_bytes(), "", ""
    except OSError as e:
        raise MonitorError(f"cannot read: {e.strerror}") from None


def _page_not_feed(body: bytes, url: str) -> str:
    """Why an HTML page is not parsed, naming the feed it advertises if any (then parse that)."""
    from ..opml import discover

    found = discover(body, url)  # a local file (no URL) names only feeds at absolute URLs
    return (f"not a feed but an HTML page; it names the feed {found[0].url}" if found
            else "not a feed but an HTML page (which names no feed)")


def _emit(out: dict, as_json: bool) -> None:
    """One input's result on stdout (a JSON line with --json); a failure also as one stderr
    line naming the input, as every user error is shown."""
    if "error" in out:
        click.echo(f"error: {out['source']}: {out['error']}", err=True)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
    elif "error" not in out:
        click.echo(f"{out['source']}: {out.get('title')!r}")
        for e in out.get("entries", []):
            click.echo(f"  {e['published'] or '-':20}  {e['title'][:70]}  {e['link'] or ''}")
        if "text" in out:
            click.echo(out["text"])


def _exit_if_failed(outs: list[dict]) -> None:
    """Exit 2 after a batch in which any input failed (each was named as it came)."""
    if any("error" in out for out in outs):
        sys.exit(2)
