"""Which apprise plugins are loaded: only those of the schemes the channels use (issue 16).

apprise 2.3 knows its ~190 plugins only by importing every one of them: the first lookup of any
scheme (``Apprise.add(url)``, or registering our ``log://`` plugin) runs its plugin manager's
``load_modules()``, 120 ms and ~10 MB, for a config that uses one or two schemes. Its manager has
no way to load one plugin by scheme, so ``ready`` does what ``load_modules`` does, module by
module: it imports ``apprise.plugins.<module>`` for each scheme asked for, checks that the
plugin class found there claims that scheme, and maps it, exactly as apprise's own loop would.
A URL is then still read by its own plugin's parser and constructor (``Apprise.add``): check
is as strict as before.

Whatever ``ready`` cannot place this way gets apprise's full set: a scheme that is not in the
table below and not the name of a module (an unknown scheme: apprise says so), a plugin that
does not claim the scheme it was asked for (a newer apprise moved it), and http(s)://, which
apprise reads by asking every plugin whether the URL is one of its services' own (a pasted
hooks.slack.com URL). tests/test_plugins.py checks the table against apprise's full load.

This touches apprise's manager's private maps (``_module_map``, ``_schema_map``, ``_loaded``),
so the pin stays ``apprise>=2.3,<3`` and the test above fails first if they change.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterable

from apprise.plugins import N_MGR

# apprise 2.3's plugin module of each scheme that is not the module's own name, or its name
# plus "s" (ircs -> irc): `module: "scheme scheme ..."`.
MODULES = {
    "africas_talking": "atalk", "apprise_api": "apprise apprises", "bluesky": "bsky", "burstsms": "kudosity",
    "cliq": "zcliq zohocliq", "custom_form": "form forms", "custom_json": "json jsons", "custom_xml": "xml xmls",
    "d7networks": "d7sms", "dbus": "kde qt", "email": "mailto mailtos", "fortysixelks": "46elks elks",
    "glib": "gio", "google_chat": "gchat", "home_assistant": "hassio hassios", "kakaotalk": "kakao",
    "kaleyra": "klr", "kodi": "xbmc xbmcs", "lfgalarm": "lfg", "mastodon": "toot toots",
    "mattermost": "mmost mmosts", "messagebird": "msgbird", "mobilemessage": "mobilemsg",
    "nextcloud": "ncloud nclouds", "nextcloudtalk": "nctalk nctalks", "office365": "azure o365",
    "one_signal": "onesignal", "parseplatform": "parsep parseps", "pushbullet": "pbul", "pushjet": "pjet pjets",
    "pushover": "pover", "pushplus": "wecom", "pushsafer": "psafer psafers", "ringcentral": "ringc",
    "rocketchat": "rocket rockets", "serverchan": "schan", "signal_api": "signal signals", "simplepush": "spush",
    "smsmanager": "smsmgr", "sogs": "session sessions", "splunk": "victorops", "streamlabs": "strmlabs",
    "techuluspush": "push", "telegram": "tgram", "twitter": "tweet x", "vonage": "nexmo",
    "webexteams": "webex wxteams", "workflows": "workflows workflow",
}
_BY_SCHEME = {scheme: module for module, schemes in MODULES.items() for scheme in schemes.split()}
_MODULE_NAME = re.compile(r"^(?!base|_)[a-z0-9_]+$")  # what apprise's load_modules imports
_lock = threading.Lock()
_ours: list[tuple[str, Callable[[], object]]] = []  # our own plugins (log://): scheme, how to register it
_registered = 0  # how many of _ours the manager holds
_partial = False  # the manager holds the plugins ``ready`` placed, not apprise's full set


def candidates(scheme: str) -> list[str]:
    """The plugin modules that may hold ``scheme``, most likely first. Pure."""
    names = [_BY_SCHEME.get(scheme, scheme)]
    if scheme.endswith("s") and scheme not in _BY_SCHEME:
        names.append(scheme[:-1])
    return [n for n in names if _MODULE_NAME.match(n)]


def ours(scheme: str, register: Callable[[], object]) -> None:
    """Register a plugin of our own for ``scheme`` (an ``@apprise.decorators.notify`` call) when
    the manager is ready: registering it before would make apprise load every plugin."""
    _ours.append((scheme, register))


def ready(schemes: Iterable[str]) -> None:
    """apprise's plugin manager knows every one of ``schemes`` that apprise has a plugin for,
    and our own plugins: only their modules are imported, unless one cannot be placed (then
    apprise loads all of them itself). Thread-safe; the manager is process-wide, so is what it
    loads."""
    global _partial, _registered
    with _lock:
        if not N_MGR or _partial:
            with N_MGR._lock:
                if not N_MGR:
                    N_MGR._module_map, N_MGR._schema_map, N_MGR._custom_module_map = {}, {}, {}
                    N_MGR._loaded.add(N_MGR.module_path)  # apprise's load_modules() now finds it done
                    _partial = True
                wanted = sorted({s.lower() for s in schemes} - set(N_MGR._schema_map) - {s for s, _ in _ours})
                if not all([_place(s) for s in wanted]):
                    for name in _all_modules():  # the rest, in the order apprise's own loop takes
                        _load(name)
                    _partial = False
                N_MGR._build_dep_counter()
        for _, register in _ours[_registered:]:
            register()
        _registered = len(_ours)


def _place(scheme: str) -> bool:
    return any(scheme in _load(name) for name in candidates(scheme))


def _load(name: str) -> set[str]:
    """The schemes of apprise's plugin module ``name``, now mapped as its load_modules() maps
    them; none if apprise has no such module. Called with the manager's lock held."""
    if name in N_MGR._module_map:
        return {s for p in N_MGR._module_map[name]["plugin"] for s in p.schemas(p)}
    try:
        module = importlib.import_module(f"{N_MGR.module_name_prefix}.{name}")
    except ImportError:  # no such module; or one whose import fails, which apprise's loop skips too
        return set()
    for attr in (a for a in dir(module) if N_MGR.module_filter_re.match(a)):
        plugin = getattr(module, attr)
        if not hasattr(plugin, "app_id"):
            continue
        N_MGR._module_map[name] = {"plugin": {plugin}, "module": module, "path": module.__name__, "native": True}
        fn = getattr(plugin, "schemas", None)
        schemes = set(fn(plugin)) if callable(fn) else set()
        for scheme in schemes:
            N_MGR._schema_map.setdefault(scheme, plugin)
        return schemes
    return set()


def _all_modules() -> list[str]:
    """apprise's plugin modules as its load_modules() finds them (its pattern, its order)."""
    import os

    pattern = re.compile(r"^(?P<name>(?!base|_)[a-z0-9_]+)(\.py)?$", re.I)
    return [m.group("name") for f in os.listdir(N_MGR.module_path) if (m := pattern.match(f))]
