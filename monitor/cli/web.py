"""``monitor web``: the console alone, against the config's database (issue 18)."""

from __future__ import annotations

import click

from . import _guard, cli, config_option, load_all, logging_for


@cli.command("web")
@config_option
@click.option("--host", default=None, help="Address to listen on (default: the config's http.host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="TCP port (default: the config's http.port; 0 picks a free one, logged).")
@click.option("--log-json", is_flag=True, help="Log one JSON object a line (overrides monitor.log_format).")
def web_cmd(config_path: str, host: str | None, port: int | None, log_json: bool) -> None:
    """Serve the team's console alone (no polling, no sending), for a node that only serves
    people; a daemon on the same database does the work. Stops on SIGTERM or Ctrl-C."""
    import asyncio

    from ..web.alone import alone

    cfg, ruleset = load_all(config_path)
    logging_for(cfg, log_json)
    _guard(lambda: asyncio.run(alone(cfg, ruleset, host or cfg.http.host,
                                     cfg.http.port if port is None else port)))
