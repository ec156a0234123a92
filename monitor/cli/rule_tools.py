"""``monitor rules``: check the rule files, print their JSON Schema, backtest a rule.

``monitor rules test RULE --since 14d`` runs a rule (from the config's rules folder, or
``--rules DIR``) over the articles already stored, and says how many would have fired and
which, with the explanation an alert would carry, before anyone is alerted; then what its
thresholds would have done and its precision and recall against the team's feedback
(cli/learning.py, issue 17).
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import click

from .. import dates
from ..errors import MonitorError, RuleError
from . import cli, config_option, fail, load_config
from .progress import Progress


@cli.group("rules")
def rules_group() -> None:
    """Rule files: check them, print their JSON Schema, backtest a rule on stored articles."""


@rules_group.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of rule files (for editors: yaml-language-server)."""
    from ..rules.schema import schema

    click.echo(json.dumps(schema(), indent=2, ensure_ascii=False))


@rules_group.command("check")
@config_option
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Folder of rule files (default: the config's; then no config is read and channel "
              "names are not checked).")
def check_cmd(config_path: str, rules_dir: str | None) -> None:
    """Check every rule file; print each problem with its file and line, exit 2 if any.

    The folder is the config's ``monitor.rules``, whose channel names are checked too (as
    ``monitor check`` does), unless ``--rules`` names another."""
    from .. import rules

    channels: set[str] | None = None
    has_default = True
    if rules_dir is None:
        cfg = load_config(config_path)
        folder = str(cfg.rules_dir)
        channels = {*cfg.channels, *(ch.tag for ch in cfg.channels.values())}
        has_default = bool(cfg.notify.default_channels)
    else:
        folder = rules_dir
    errors = rules.check(folder, channels, has_default=has_default)
    for e in errors:
        click.echo(f"error: {e}", err=True)
    if errors:
        raise SystemExit(2)
    loaded = rules.load(folder)
    for w in rules.warnings(loaded):  # valid, but likely not what was meant
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{folder}: {len(loaded)} rules OK")


@rules_group.command("test")
@config_option
@click.argument("rule_id")
@click.option("--since", default="14d", show_default=True, help="How far back: a number and s, m, h, d or w.")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Folder of rule files (default: the config's).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per article that would fire.")
@click.option("--limit", default=20, show_default=True, help="How many matches to list (all with --json).")
def test_cmd(config_path: str, rule_id: str, since: str, rules_dir: str | None, as_json: bool, limit: int) -> None:
    """Backtest RULE_ID on the stored articles: how many would have fired, and which."""
    from .. import rules
    from ..store import connect

    try:
        window = dates.duration(since)
    except ValueError:
        fail(f"--since {since!r}: expected a number and a unit (s, m, h, d, w), e.g. 14d")
    cfg = load_config(config_path)  # the database is the config's even when --rules names the rules
    try:
        ruleset = rules.load(rules_dir or cfg.rules_dir)
    except RuleError as e:
        fail(str(e))
    rule = ruleset.get(rule_id)
    if rule is None:
        fail(f"no rule {rule_id!r} in {ruleset.source} (rules: {', '.join(r.id for r in ruleset.rules)})")
    one = rules.RuleSet.of([rule], ruleset.concepts, ruleset.source)
    # near misses ("find what it missed"): the topic is there, the context or an exclusion kept it out
    loose = [rules.RuleSet.of([r], ruleset.concepts, ruleset.source) for r in rules.loosened(rule) or ()]
    near: list[str] = []
    now = time.time()
    try:
        store = connect(cfg.database)
    except MonitorError as e:
        fail(str(e))
    from .learning import Tally  # issue 17: tiers and the feedback's precision and recall

    try:
        tally = Tally(store, rule)
    except (MonitorError, ValueError) as e:
        fail(str(e))
    checked = fired = 0
    started = time.perf_counter()
    # On a terminal a counter with its rate (stored_articles reads in pages: no total up front).
    with Progress("checked", " articles") as bar:
        bar.start(None)
        for row, article in store.stored_articles(now - window):
            checked += 1
            bar.step()
            feed = SimpleNamespace(url=row["feed_url"], title=row["feed_title"], tags=_tags(row["tags"]))
            found = rules.match(one, article, feed, now)
            tally.see(row["id"])
            if not found:
                if loose and (topic := rules.find(loose[0], article, feed, now)):
                    why = "an exclusion (none:)" if rules.find(loose[1], article, feed, now) else "its context (all:)"
                    near.append(f"#{row['id']} {article.title[:90]}\n    {article.url or row['feed_url']}\n"
                                f"    the topic's terms: {', '.join(topic[0].terms)}; kept out by {why}\n"
                                f"    {topic[0].snippet}")
                continue
            fired += 1
            hit = found[0]
            tally.add(row["id"], hit, article.title, article.text)
            if as_json:
                bar.echo(json.dumps({"entry": row["id"], "title": article.title, "url": article.url,
                                     "feed": row["feed_url"], "terms": list(hit.terms), "field": hit.field,
                                     "score": hit.score, "snippet": hit.snippet}, ensure_ascii=False))
            elif fired <= limit:
                bar.echo(f"#{row['id']} {article.title[:90]}\n    {article.url or row['feed_url']}\n"
                         f"    terms: {', '.join(hit.terms)} (field {hit.field}, score {hit.score:g})\n"
                         f"    {hit.snippet}")
    took = time.perf_counter() - started
    summary = (f"rule {rule_id}: would have fired on {fired} of {checked} articles stored in the last {since} "
               f"({took:.2f} s)")
    if loose:
        summary += f"; near misses: {len(near)}"
    if as_json:
        click.echo(summary, err=True)
    else:
        if fired > limit:
            click.echo(f"… and {fired - limit} more (--limit, --json)")
        if near:
            click.echo(f"near misses: {len(near)} articles name the topic but the rule's context or an exclusion "
                       "kept them out (a story it may have missed: `monitor feedback ENTRY relevant --entry --rule "
                       f"{rule_id}` reports it)")
            click.echo("\n".join(near[:limit]))
            if len(near) > limit:
                click.echo(f"… and {len(near) - limit} more (--limit)")
        click.echo(summary)
    for line in tally.lines():
        click.echo(line, err=as_json)


def _tags(raw: str | None) -> tuple[str, ...]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


from . import learning as _learning  # noqa: E402,F401  (registers ``monitor rules learn`` on this group)
