"""rss-monitor: poll news feeds, extract articles, match topic rules, alert through apprise."""

__version__ = "0.1.0"
USER_AGENT = f"rss-monitor/{__version__} (+https://github.com/rss-monitor/rss-monitor)"
