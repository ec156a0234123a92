"""``monitor alerts``: the outbox as people see it (pending, sending, sent, failed, dead), one
alert in full with the team's verdicts on it, sending again; ``monitor feedback``: a verdict on
an alert (issue 17); ``monitor notify-test``: one test message through a channel, printing
exactly what the service answered."""

from __future__ import annotations

import getpass
import json
import socket
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from .. import dates
from ..errors import MonitorError, NotifyError
from ..models import Alert, why
from . import cli, config_option, fail, load_config

if TYPE_CHECKING:
    from ..notify import Preview
    from ..store import StoreAPI

STATES = ("pending", "sending", "sent", "failed", "dead", "held", "digest")


def _store(config_path: str) -> StoreAPI:
    from .. import config as config_mod
    from ..store import connect

    try:
        return connect(config_mod.load(config_path).database)
    except MonitorError as e:
        fail(str(e))


def _id(value: str) -> int:
    if not value.isdigit():
        fail(f"alert ID must be a number (see 'monitor alerts'), got {value!r}")
    return int(value)


_when = dates.local  # 2026-11-01 09:00:00 on this machine's clock, "-" when unknown


def _json(a: Alert) -> str:
    return json.dumps(asdict(a), ensure_ascii=False)


@cli.group("alerts", invoke_without_command=True)
@config_option
@click.option("--state", help="Only alerts in this state: pending, sending, sent, failed, dead, held (waiting "
              "for a digest) or digest (in a digest being sent).")
@click.option("--limit", default=50, show_default=True, help="Show at most this many (newest first).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert.")
@click.pass_context
def alerts_cmd(ctx: click.Context, config_path: str, state: str | None, limit: int, as_json: bool) -> None:
    """List alerts, newest first, with their delivery state, attempts, next attempt and last
    error. Subcommands show one alert and send alerts again."""
    if ctx.invoked_subcommand is not None:
        return
    if state is not None and state not in STATES:
        fail(f"--state: expected one of {', '.join(STATES)}, got {state!r}")
    store = _store(config_path)
    rows = store.alerts(state, limit)
    store.close()
    if as_json:
        for a in rows:
            click.echo(_json(a))
        return
    click.echo(f"{'ID':>6}  {'STATE':8} {'CHANNEL':12} {'TRIES':>5}  {'CREATED':19}  {'NEXT / SENT':19}  RULE: TITLE")
    for a in rows:
        when = a.sent_at if a.state == "sent" else a.dead_at if a.state == "dead" else a.next_attempt_at
        click.echo(f"{a.id:>6}  {a.state:8} {a.channel[:12]:12} {a.attempts:>5}  {_when(a.created_at):19}  "
                   f"{_when(when):19}  {a.rule_id}: {a.title[:60]}")
        if a.last_error and a.state != "sent":
            click.echo(f"{'':8}last error: {a.last_error[:150]}")


@alerts_cmd.command("show")
@config_option
@click.argument("alert_id")
@click.option("--json", "as_json", is_flag=True, help="As one JSON object.")
def show_cmd(config_path: str, alert_id: str, as_json: bool) -> None:
    """Show one alert in full: its story, rule, channel, state and delivery history."""
    store = _store(config_path)
    a = store.alert(_id(alert_id))
    sources = store.followups(a.id) if a else []
    members = store.members(a.id) if a and a.digest_id == a.id else []
    verdicts = store.feedback(a.id) if a else []
    story = store.story(a.id) if a and any(v.verdict == "not" or v.kept for v in verdicts) else None
    silenced = story["silenced"] if story else []  # rules whose later sources of the story are not sent
    store.close()
    if a is None:
        fail(f"no alert with ID {alert_id}")
    if as_json:
        click.echo(json.dumps({**asdict(a), "followups": sources, "digest_of": [m.id for m in members],
                               "feedback": [v._asdict() for v in verdicts], "silenced": silenced},
                              ensure_ascii=False))
        return
    for label, value in [
        ("id", a.id), ("state", a.state), ("channel", a.channel), ("severity", a.severity),
        ("rules", "; ".join(f"{r.title} ({r.rule_id}): {', '.join(r.terms)}"
                            + (f" · context: {', '.join(r.context)}" if r.context else "")
                            for r in a.rules) or f"{a.rule_title} ({a.rule_id})"),
        ("title", a.title), ("link", a.link or "-"), ("source", f"{a.feed_title or '-'} · {a.published or '-'}"),
        ("terms", ", ".join(a.terms)), ("created", _when(a.created_at)), ("revived", _when(a.revived_at)),
        ("attempts", a.attempts), ("last attempt", _when(a.last_attempt_at)),
        ("next attempt", _when(a.next_attempt_at) if a.state in ("pending", "failed") else "-"),
        ("sent", _when(a.sent_at)), ("dead", _when(a.dead_at)),
        ("last status", a.last_status if a.last_status is not None else "-"), ("last error", a.last_error or "-"),
    ]:
        click.echo(f"{label + ':':14} {value}")
    for k, r in enumerate(r for r in a.rules if r.features):  # how much the story is about each rule's topic
        click.echo(f"{'' if k else 'why:':14} {r.rule_id}: {r.tier} · salience {r.salience:.2f} · {why(r.features)}")
    if a.snippet:
        click.echo(f"{'snippet:':14} {a.snippet}")
    if a.held:
        click.echo(f"{'held:':14} {a.held}" + (f" (in digest {a.digest_id})" if a.digest_id else ""))
    if sources:  # the same story via other feeds (noise.py): follow-ups, not alerts of their own
        click.echo(f"{'followups:':14} {len(sources)} more sources")
        for f in sources:
            click.echo(f"  {_when(f['created_at'])}  {f['how']:9}  {f['feed']}: {f['title']}  {f['link'] or ''}"
                       f"  · {', '.join(f['delivery']) or 'not sent'}")
    if members:
        click.echo(f"{'digest of:':14} {len(members)} alerts")
        for m in members:
            click.echo(f"  {m.id:>6}  {m.held or '-':8}  {m.rule_id}: {m.title[:60]}")
    if verdicts:  # on the story, from any of its alerts; a replaced verdict is history
        click.echo(f"{'feedback:':14} {sum(v.replaced_at is None for v in verdicts)} verdicts")
        story_rules = {r.rule_id for r in a.rules} or {a.rule_id}
        for v in verdicts:
            kept = dict(v.kept)
            on = "" if set(v.rules) == story_rules and not kept else \
                "  on " + ", ".join(f"{r} ({kept[r]}, kept)" if r in kept else r for r in v.rules)
            click.echo(f"  {_when(v.at)}  {v.verdict:8}  by {v.given_by} ({v.via})" + on
                       + (f"  replaced {_when(v.replaced_at)}" if v.replaced_at else "")
                       + (f"  note: {v.note}" if v.note else ""))
    if silenced:
        click.echo(f"{'not told:':14} its other sources are no longer sent for {', '.join(silenced)} "
                   "(judged not relevant)")


@cli.command("feedback")
@config_option
@click.argument("alert_id", metavar="ALERT")
@click.argument("verdict", metavar="relevant|not")
@click.option("--note", help="Why, in a few words (kept with the verdict).")
@click.option("--by", "given_by", help="Who gives it (default: your login name).")
@click.option("--match", "on_match", is_flag=True,
              help="ALERT is a match ID (the console's search shows them): judge a story that did not alert.")
@click.option("--rule", "rule", metavar="RULE",
              help="Judge the story for this rule only (one of the rules that fired on it); your verdicts on "
                   "its other rules stay.")
@click.option("--entry", "on_entry", is_flag=True,
              help="ALERT is a stored entry's ID (the console's search gives them) that RULE (--rule) did not "
                   "match: 'relevant' reports that it should have, 'not' takes your report back.")
def feedback_cmd(config_path: str, alert_id: str, verdict: str, note: str | None, given_by: str | None,
                 on_match: bool, rule: str | None, on_entry: bool) -> None:
    """Mark an alert (its ID from 'monitor alerts') relevant or not. The verdict applies to the
    alert's story and every rule that fired on it, or with --rule to that rule only (a story
    about one topic that mentions another); a later verdict of yours on the same story replaces
    yours (the earlier one is kept as history). With --match, a story that matched but never
    alerted (stored only, or held for the digest): 'relevant' says it should have alerted. With
    --entry --rule RULE, a stored story that RULE did not match at all: 'relevant' reports that
    it should have (the rules page, 'rules test' and the playground count it)."""
    if verdict not in ("relevant", "not"):
        fail(f"verdict must be 'relevant' or 'not', got {verdict!r}")
    number = _id(alert_id)
    try:
        by = given_by or getpass.getuser()
    except (KeyError, OSError):
        fail("cannot tell who you are: name yourself with --by NAME")
    if not by.strip():
        fail("--by: expected a name, got an empty one")
    if rule is not None and not rule.strip():
        fail("--rule: expected a rule ID, got an empty one")
    if on_entry:
        _report_miss(config_path, number, verdict, by.strip(), (rule or "").strip(), note, on_match)
        return
    from .. import learn

    store = _store(config_path)
    try:
        judge = store.judge_match if on_match else store.give_feedback
        given = judge(number, verdict, by.strip(), time.time(), note or None, rule=rule and rule.strip())
        try:  # recorded: a database that fails now costs only the learning lines
            learning = [learn.progress(r, store.judged(r)) for r in given.rules] \
                if given is not None and given.outcome in ("recorded", "replaced") else []
        except MonitorError as e:
            learning = [f"(how far each rule is from learning: not known, {e})"]
    except MonitorError as e:
        fail(str(e))
    finally:
        store.close()
    if given is None:
        fail(f"no {'match' if on_match else 'alert'} with ID {alert_id}")
    if given.outcome == "no-rule":
        fail(f"--rule {rule}: that rule did not fire on {'match' if on_match else 'alert'} {number}'s story "
             f"(its rules: {', '.join(given.rules)})")
    what = f"replaced your {given.earlier!r}" if given.outcome == "replaced" else "recorded"
    where = f"match {number} (alert {given.alert_id})" if on_match and given.alert_id is not None else \
        f"match {number} (no alert)" if on_match else f"alert {number}"
    click.echo(f"{where}: {verdict} by {by.strip()} {what} (rules: {', '.join(given.rules)})")
    for line in filter(None, [learn.effect(verdict, given.rules), *learning]):
        click.echo(f"  {line}")


def _report_miss(config_path: str, entry_id: int, verdict: str, by: str, rule: str, note: str | None,
                 on_match: bool) -> None:
    """``feedback ENTRY relevant|not --entry --rule RULE``: a story RULE should have matched."""
    from .. import rules

    if on_match:
        fail("--entry and --match: choose one (an entry ID, or a match ID)")
    if not rule:
        fail("--entry needs --rule RULE: the rule that should have matched the entry")
    try:
        ids = [r.id for r in rules.load(load_config(config_path).rules_dir).rules]
    except MonitorError as e:
        fail(str(e))
    if rule not in ids:
        fail(f"--rule {rule}: no such rule (rules: {', '.join(ids)})")
    store = _store(config_path)
    try:
        if verdict == "not":
            if not store.withdraw_miss(entry_id, rule, by):
                fail(f"entry {entry_id}: {by} had not reported that {rule} missed it")
            click.echo(f"entry {entry_id}: {by}'s report that {rule} missed it withdrawn")
            return
        outcome = store.report_miss(entry_id, rule, by, time.time(), note or None)
    except MonitorError as e:
        fail(str(e))
    finally:
        store.close()
    if outcome is None:
        fail(f"no entry with ID {entry_id}")
    if outcome == "matched":
        fail(f"{rule} did match entry {entry_id}: judge that match instead (--match with its ID, from the search)")
    click.echo(f"entry {entry_id}: {rule} should have matched it, says {by} "
               f"({'recorded' if outcome == 'recorded' else 'your earlier report updated'})")


@alerts_cmd.command("retry")
@config_option
@click.argument("alert_id", required=False)
@click.option("--dead", is_flag=True, help="Every dead alert.")
def retry_cmd(config_path: str, alert_id: str | None, dead: bool) -> None:
    """Send an alert again (pending, due now, attempts and max_age counted afresh): one failed
    or dead alert by ID, or every dead one with --dead. A running daemon sends it within seconds."""
    if (alert_id is None) == (not dead):
        fail("give an alert ID or --dead (not both)")
    store = _store(config_path)
    now = time.time()
    try:
        if dead:
            click.echo(f"{store.revive(now)} dead alerts back to pending")
            return
        a = store.alert(_id(str(alert_id)))
        if a is None:
            fail(f"no alert with ID {alert_id}")
        if a.state in ("sent", "sending"):
            fail(f"alert {a.id} is {a.state}" + (f" (at {_when(a.sent_at)}): nothing to retry" if a.sent_at else
                                                  ": being delivered right now"))
        store.revive(now, a.id)
        click.echo(f"alert {a.id} ({a.state}, {a.attempts} attempts) back to pending")
    finally:
        store.close()


@cli.command("notify-test")
@click.argument("channel")
@config_option
@click.option("--dry-run", is_flag=True, help="Print what would be sent, URL by URL (the HTTP requests apprise "
              "would make; for email and other kinds the message); send nothing on any kind.")
def notify_test_cmd(channel: str, config_path: str, dry_run: bool) -> None:
    """Send a test alert through a configured channel and print exactly what the service
    answered (HTTP status and body, or the mail server's reply); exit 1 if it failed."""
    from .. import config as config_mod
    from ..loading import notifier_for

    try:
        cfg = config_mod.load(config_path)
        notifier = notifier_for(cfg)
    except MonitorError as e:
        fail(str(e))
    if channel not in cfg.channels:
        fail(f"{config_path}: no channel named {channel!r} (defined: {', '.join(cfg.channels) or 'none'})")
    title = "rss-monitor test alert"
    body = (f"A test message from 'monitor notify-test {channel}' on {socket.gethostname()} "
            f"at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}. If you read this, alerts reach this channel.")
    targets = ", ".join(notifier.describe(channel))
    if dry_run:
        _print_dry_run(notifier.dry_run(channel, title, body))
        return
    try:
        answer = notifier.send_text(channel, title, body)
    except NotifyError as e:
        click.echo(f"{channel}: FAILED via {targets}")
        click.echo(f"answer: {e}")
        raise SystemExit(1) from None
    click.echo(f"{channel}: sent via {targets}")
    click.echo(f"answer: {answer.detail}")


def _print_dry_run(previews: list[Preview]) -> None:
    """Each URL of the channel (privacy form), then the requests apprise built for it (host only:
    a path may hold a secret) or, for a URL that does not speak HTTP, the message itself."""
    for p in previews:
        if p.requests is None:
            click.echo(f"{p.target}: would send (dry run: not handed to apprise)")
            click.echo(f"title: {p.title}")
            click.echo(f"body: {p.body}")
            continue
        click.echo(f"{p.target}: would send {len(p.requests)} HTTP request(s)")
        for req in p.requests:
            host = req.url.split("://", 1)[-1].split("/", 1)[0]
            click.echo(f"{req.method} {host} (path hidden: it may hold a secret)")
            click.echo(req.body.decode("utf-8", "replace"))
