"""The config's notifier and rules, checked: what ``monitor check``, the daemon's start and its
SIGHUP reload all run. Kept out of the daemon so that ``monitor check`` does not import the
scheduler, the HTTP client, the store and the extraction stack (issue 16: check under 0.3 s).
"""

from __future__ import annotations

import logging

from . import rules
from .config import Config
from .notify import Notifier, channels_from


def notifier_for(config: Config) -> Notifier:
    """The Notifier of the config's channels, every URL and template checked. Raises ConfigError.
    (The digest crons are APScheduler's to parse: daemon.jobs.check_digests, which ``monitor check``
    and every start and reload run too.)"""
    return Notifier(channels_from(config.channels))


def rule_limits(config: Config) -> rules.Limits:
    return rules.Limits(config.monitor.rules_max_file_bytes, config.monitor.rules_max_total_bytes)


def load_rules(config: Config, notifier: Notifier) -> rules.RuleSet:
    """The config's rules, checked against its channels and size limits: rules.TooLarge for a
    file (or folder) over a limit, rules.Problems listing every other problem."""
    return rules.load_checked(config.rules_dir, notifier.known(), bool(config.notify.default_channels),
                              rule_limits(config))


def mask_channel_urls(config: Config) -> None:
    """Channels added by a reload: their secrets join the log filter the CLI installed."""
    urls = [u for ch in config.channels.values() for u in ch.urls]
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            mask = getattr(f, "mask_urls", None)
            if callable(mask):
                mask(urls, config.marked_secrets)
