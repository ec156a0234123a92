"""TOML -> validated, typed Config. Every key, its default and its one-line help live in the
pydantic models below; ``config.example.toml`` shows each of them (a test checks it).

Relative paths are resolved against the config file's folder, so the daemon behaves the same
whatever its working directory. Channel URLs may say ``${NAME}`` to take a secret from the
environment (e.g. systemd's EnvironmentFile=) or from a systemd credential (LoadCredential=)
instead of the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from . import addresses, noise, urlsecrets
from .errors import ConfigError

Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MonitorSection(_Section):
    database: str = Field("var/monitor.db", description="SQLite file (created with its folder), sqlite:///PATH, or "
                          "postgresql://USER@HOST/DB for cluster mode (README \"Running a cluster\")")
    rules: str = Field("rules", description="folder of YAML rule files")
    # A MB of rule YAML costs ~60 MB loaded and ~95 MB at a reload's peak (old and new set; measured
    # with bench/matching_rules.py, issue 15): 4 MiB keeps a reload near 500 MB in the unit's 1 GB.
    rules_max_file_bytes: int = Field(2 * 1024 * 1024, ge=1, description="largest rule file loaded; a larger "
                                      "one is refused by name and the last good rules stay")
    rules_max_total_bytes: int = Field(4 * 1024 * 1024, ge=1, description="largest size of all rule files "
                                       "together; above it the whole (re)load is refused")
    tick: Seconds = Field(30, description="seconds between dispatcher ticks")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: str = Field("text", description="text (key=value lines) or json (one JSON object a line)")
    stop_grace: Seconds = Field(15, description="seconds in-flight polls and sends may take after SIGTERM")
    busy_timeout: Seconds = Field(10, description="seconds a database write waits for another process's lock "
                                  "before it counts as failed (the event loop never waits: store/aio.py)")

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return v.upper()

    @field_validator("log_format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v.lower() not in {"text", "json"}:
            raise ValueError("expected text or json")
        return v.lower()


class PollSection(_Section):
    interval: Seconds = Field(900, description="seconds between polls of a feed until its cadence is learned")
    adaptive: bool = Field(True, description="learn each feed's publishing cadence and poll at half of it")
    min_interval: Seconds = Field(300, description="adaptive polling never polls a feed more often")
    max_interval: Seconds = Field(3600, description="adaptive polling never waits longer between polls")
    max_hint: Seconds = Field(21600, description="longest wait a server may ask for (ttl, max-age, Expires)")
    max_backoff: Seconds = Field(21600, description="longest wait after repeated errors")
    concurrency: int = Field(50, ge=1, description="feeds polled at once")
    per_host: int = Field(2, ge=1, description="feeds of one host polled at once")
    silent_after: float = Field(10, gt=1, description="a feed is silent after this many times its cadence")
    silent_min: Seconds = Field(43200, description="... and at least this long without news")
    failing_alert_after: Seconds = Field(21600, description="ops alert when a feed fails for this long")
    first_run_window: float = Field(
        86400, ge=0, description="on a feed's first poll, entries published this recently are matched and their "
        "alerts sent as one digest per channel ('while you were away'); older ones are a silent baseline; 0: none")
    fast_parse: bool = Field(True, description="parse the feeds it reads exactly as feedparser with feedparser-rs "
                             "(~10x cheaper); false: feedparser parses every feed")

    @model_validator(mode="after")
    def _bounds(self) -> PollSection:
        if self.min_interval > self.max_interval:
            raise ValueError(f"min_interval ({self.min_interval:g}) is above max_interval ({self.max_interval:g})")
        return self


class FetchSection(_Section):
    connect_timeout: Seconds = Field(10, description="seconds to open a connection")
    timeout: Seconds = Field(30, description="seconds for a whole request")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="largest body read")
    user_agent: str = Field("", description="User-Agent; empty means the project's own")
    allow_private: list[str] = Field(
        default_factory=list, description="what fetching may reach although it is loopback, private, "
        "link-local or reserved: networks (CIDR, every port) or one host's port (\"127.0.0.1:8731\", "
        "\"[::1]:8731\", \"localhost:8731\"), e.g. [\"10.0.0.0/8\"]; empty: public addresses only (SSRF guard)"
    )

    @field_validator("allow_private")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        addresses.allow_list(v)  # ValueError names the bad entry
        return v


class ExtractSection(_Section):
    pages: bool = Field(True, description="fetch each new entry's page and extract it")
    workers: int = Field(0, ge=0, description="worker processes; 0 means one per core")
    timeout: Seconds = Field(30, description="seconds one page may take to extract")


class NotifySection(_Section):
    default_channels: list[str] = Field(
        default_factory=list, description="channels for rules that name none"
    )
    retry: Seconds = Field(60, description="first retry delay for a failed alert")
    max_retry: Seconds = Field(3600, description="longest retry delay")
    timeout: Seconds = Field(30, description="seconds one delivery may take")
    max_attempts: int = Field(10, ge=1, description="attempts the service refused (a 4xx but 408/429) "
                              "before an alert is dead (kept, shown, ops alert); outages end only with max_age")
    max_age: Seconds = Field(172800, description="seconds after which an undelivered alert is dead")
    ops_channels: list[str] = Field(
        default_factory=list, description="channels for ops alerts (feed failing, recovered, gone)"
    )
    templates: str = Field("templates", description="folder of message templates overriding the built-in ones "
                           "(slack.j2, email_html.j2, json.j2, text.j2, title.j2); none there means the built-ins")


class HttpSection(_Section):
    enabled: bool = Field(True, description="serve the console (web.console), /healthz and /metrics (Prometheus)")
    host: str = Field("127.0.0.1", description="address to listen on; another one needs console users "
                      "(monitor users add) or a trusted proxy")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one (logged)")


class WebSection(_Section):
    public_url: str = Field("", description="the address people reach the daemon's [http] endpoint at "
                            "(a reverse proxy), e.g. \"https://monitor.example.org\": every alert then "
                            "carries two signed feedback links; \"\" = no links")
    secret: str = Field("", description="key that signs the links (${NAME} reads it from the environment or a "
                        "credential); \"\" = a key generated once in DATABASE.link-key (mode 0600)")
    link_days: float = Field(30, gt=0, description="days a feedback link works after its message was sent")
    console: bool = Field(True, description="serve the team's console at / on the [http] endpoint (needs "
                          "http.enabled); `monitor web` serves it alone")
    session_days: float = Field(7, gt=0, description="days a console login lasts")
    proxy_user_header: str = Field("", description="a reverse proxy's header naming the signed-in user, e.g. "
                                   "\"X-Forwarded-User\"; trusted only from proxy_addresses; \"\" = none")
    proxy_addresses: list[str] = Field(default_factory=list, description="addresses (or networks) of the proxy "
                                       "whose user header is trusted, e.g. [\"127.0.0.1\"]")
    proxy_role: Literal["viewer", "editor"] = Field("viewer", description="role of a proxy's user who is not "
                                                    "in the users table: viewer or editor")

    @field_validator("proxy_addresses")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for a in v:
            if not addresses.is_network(a):
                raise ValueError(f"{a!r}: expected an IP address or network, e.g. 127.0.0.1 or 10.0.0.0/8")
        return v

    @field_validator("public_url")
    @classmethod
    def _public(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^/\s]+(/\S*)?$", v):
            raise ValueError("expected an http:// or https:// URL, or \"\" for no feedback links")
        return v.rstrip("/")


class RetentionSection(_Section):
    days: float = Field(
        90, ge=0, description="sent alerts, articles and old entries are pruned after this many days; 0 keeps all"
    )
    every: Seconds = Field(3600, description="seconds between pruning runs")


class ChannelSection(_Section):
    urls: list[str] = Field(min_length=1, description="apprise URLs")
    tag: str = Field("", description="apprise tag; defaults to the channel's name")
    templates: str = Field("", description="folder of message templates for this channel; defaults to notify.templates")
    digest: str = Field("", description="cron (min hour day month weekday) of this channel's digest: its "
                        "non-urgent alerts go out as one message then; \"\" sends each alert at once")
    quiet_hours: str = Field("", description="HH:MM-HH:MM: alerts wait and leave as one digest at the end; "
                             "urgent ones pass")
    timezone: str = Field("UTC", description="IANA time zone of quiet_hours and digest")
    rate_limit: str = Field("", description="N/UNIT per rule (\"5/h\"): the overflow goes into a digest")
    followup_every: Seconds = Field(3600, description="other sources of a story already alerted are sent "
                                    "together at most this often (with the digest, on a digest channel)")

    @field_validator("quiet_hours", "rate_limit", "timezone", "digest")
    @classmethod
    def _noise(cls, v: str, info: Any) -> str:
        try:
            if info.field_name == "timezone":
                ZoneInfo(v)
            elif info.field_name == "digest" and v.strip() and len(v.split()) != 5:
                raise ValueError(f"expected 5 cron fields (minute hour day month weekday), got {v!r}")
            else:
                {"quiet_hours": noise.quiet_window, "rate_limit": noise.rate}.get(info.field_name, str)(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            why = f"unknown time zone {v!r}" if isinstance(e, ZoneInfoNotFoundError) else str(e)
            raise ValueError(why) from None
        return v


class FeedSection(_Section):
    url: str
    title: str = ""
    interval: Seconds | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("expected an http:// or https:// URL")
        return v


class Config(_Section):
    monitor: MonitorSection = MonitorSection()
    poll: PollSection = PollSection()
    fetch: FetchSection = FetchSection()
    extract: ExtractSection = ExtractSection()
    notify: NotifySection = NotifySection()
    http: HttpSection = HttpSection()
    web: WebSection = WebSection()
    retention: RetentionSection = RetentionSection()
    channels: dict[str, ChannelSection] = Field(default_factory=dict)
    feeds: list[FeedSection] = Field(default_factory=list)
    path: str = ""  # the file it came from; set by load()
    _marked: list[str] = PrivateAttr(default_factory=list)
    _inline: list[str] = PrivateAttr(default_factory=list)

    @property
    def marked_secrets(self) -> list[str]:  # what ${NAME} took from the environment or a credential: masked in logs
        return list(self._marked)

    @property
    def inline_secrets(self) -> list[str]:
        """Where the file itself holds a secret (``channels.hook.urls[0]: password``); [] if all are ${NAME}."""
        return list(self._inline)

    @property
    def base(self) -> Path:
        return Path(self.path).resolve().parent if self.path else Path.cwd()

    def resolve(self, p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else self.base / path

    @property
    def database(self) -> Path | str:  # the SQLite file (resolved), or a PostgreSQL URL as written
        text = self.monitor.database
        if text.startswith(("postgresql://", "postgres://")):
            return text
        return self.resolve(text.removeprefix("sqlite://") if text.startswith("sqlite:///") else text)

    @property
    def database_file(self) -> Path | None:  # None on PostgreSQL: no file of ours to lock, check or sit beside
        return db if isinstance(db := self.database, Path) else None

    @property
    def rules_dir(self) -> Path:
        return self.resolve(self.monitor.rules)

    @property
    def node_file(self) -> Path:  # lock and heartbeat (lockfile.py): one daemon per SQLite file, or per config
        return self.database_file or self.base / "monitor-node"

    @property
    def link_key_file(self) -> Path:  # [web] secret empty: beside the SQLite file, else the config (a cluster: set it)
        return Path(f"{file}.link-key") if (file := self.database_file) else self.base / "monitor.link-key"

    @property
    def feed_specs(self) -> list[tuple[str, str, float | None, tuple[str, ...]]]:
        """The config's feeds as ``Store.sync_feeds`` takes them: (url, title, interval, tags)."""
        return [(f.url, f.title, f.interval, tuple(f.tags)) for f in self.feeds]


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, where: str, path: str, marked: list[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if name in os.environ:
            marked.append(os.environ[name])
            return os.environ[name]
        # systemd's LoadCredential=NAME:FILE: the secret never enters the environment.
        if creds and (Path(creds) / name).is_file():
            marked.append((Path(creds) / name).read_text("utf-8").strip())
            return marked[-1]
        raise ConfigError(f"{path}: {where}: environment variable {name} is not set"
                          + (f" and there is no credential {name}" if creds else ""))

    return _ENV.sub(sub, value)


def _describe(err: Any, path: str) -> str:
    loc = err["loc"]
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = ", ".join(parent.model_fields) if parent else ""
        hint = f" (expected one of: {known})" if known else ""
        return f"{path}: {key}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{path}: {key}: required key is missing"
    return f"{path}: {key}: {err['msg']} (got {err.get('input')!r})"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The section model that owns the key at ``loc`` (for listing the keys it knows)."""
    if not loc:
        return Config
    if loc[0] in ("channels", "feeds"):
        return (ChannelSection if loc[0] == "channels" else FeedSection) if len(loc) == 2 else None
    f = Config.model_fields.get(str(loc[0]))
    ann = f.annotation if f and len(loc) == 1 else None
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise ConfigError with every problem found."""
    p = str(path)
    try:
        with open(p, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        # The first thing a new user meets (issue 14): say how to start, not only what is missing.
        raise ConfigError(f"{p}: no such config file\nto start: cp config.example.toml {p}, "
                          "or name another with --config FILE or MONITOR_CONFIG") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    raw.pop("path", None)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError("\n".join(_describe(err, p) for err in e.errors())) from None
    for name, ch in cfg.channels.items():
        cfg._inline += [f"channels.{name}.urls[{i}]: {what}"
                        for i, u in enumerate(ch.urls) for what in urlsecrets.inline(u)]
        ch.urls = [_expand(u, f"channels.{name}.urls", p, cfg._marked) for u in ch.urls]
        ch.tag = ch.tag or name
        # The default folder may be absent (built-in templates); a folder someone named must exist.
        folder = Path(p).resolve().parent / Path(ch.templates or cfg.notify.templates).expanduser()
        named = bool(ch.templates) or cfg.notify.templates != NotifySection.model_fields["templates"].default
        if named and not folder.is_dir():
            where = f"channels.{name}.templates" if ch.templates else "notify.templates"
            raise ConfigError(f"{p}: {where}: no such folder {folder}")
        ch.templates = str(folder) if folder.is_dir() else ""
    for key in ("default_channels", "ops_channels"):
        for name in getattr(cfg.notify, key):
            if name not in cfg.channels:
                raise ConfigError(
                    f"{p}: notify.{key}: no channel named {name!r} "
                    f"(defined: {', '.join(cfg.channels) or 'none'})"
                )
    # a PostgreSQL password: inline (a warning), ${NAME} (environment, credential), or libpq's PGPASSWORD, ~/.pgpass
    cfg._inline += [f"monitor.database: {w}" for w in urlsecrets.inline(cfg.monitor.database, paths=False)]
    cfg.monitor.database = _expand(cfg.monitor.database, "monitor.database", p, cfg._marked)
    if cfg.web.secret:
        if "${" not in cfg.web.secret:
            cfg._inline.append("web.secret: the feedback link key")
        cfg.web.secret = _expand(cfg.web.secret, "web.secret", p, cfg._marked)
    if cfg.web.public_url and not cfg.http.enabled:
        # Not implied: [http] also serves /metrics and opens a port, which an operator turns on.
        raise ConfigError(f"{p}: web.public_url: the feedback links are served by the [http] endpoint; "
                          "set http.enabled = true (or public_url = \"\")")
    seen: set[str] = set()
    for i, feed in enumerate(cfg.feeds):
        # a private feed's ?key= or user:password is a secret too; its path is not (article ids)
        cfg._inline += [f"feeds.{i}.url: {what}" for what in urlsecrets.inline(feed.url, paths=False)]
        if feed.url in seen:
            raise ConfigError(f"{p}: feeds.{i}.url: {feed.url} is listed twice")
        seen.add(feed.url)
    cfg.path = p
    return cfg


# Settings a SIGHUP cannot change in a running daemon (the scheduler, the HTTP client, the
# worker pool and the endpoint were built with them): kept, with a warning, until a restart.
RESTART_KEYS = ("monitor.database", "monitor.busy_timeout", "monitor.tick", "monitor.log_format",
                "poll.concurrency", "poll.per_host", "extract.workers", "fetch", "http", "web", "retention.every")


def hold_restart_keys(old: Config, new: Config) -> list[str]:
    """A reload: keep in ``new`` the running values of RESTART_KEYS that changed; their names."""
    changed = []
    for key in RESTART_KEYS:
        section, _, field = key.partition(".")
        holder, name = (getattr(new, section), field) if field else (new, section)
        kept = getattr(getattr(old, section), field) if field else getattr(old, section)
        if getattr(holder, name) != kept:
            setattr(holder, name, kept)
            changed.append(key)
    return changed
