"""monitor.parse: feed bytes -> Entries (RSS 2.0, Atom 1.0, RSS 1.0), entry identity,
canonical URLs, and the hostile or broken inputs a feed server can send."""

from __future__ import annotations

import html
import json
import time
import tracemalloc

import pytest

from monitor.errors import ParseError
from monitor.parse import canonical_url, parse_bytes
from monitor.text import html_to_text

RSS20 = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Stadtanzeiger &amp; Umland</title>
  <link>https://stadt.example/</link>
  <description>Lokales</description>
  <item>
    <title>Brücke &amp; Tunnel gesperrt</title>
    <link>/lokales/bruecke-17?utm_source=rss&amp;utm_medium=feed&amp;id=17#kommentare</link>
    <guid isPermaLink="false">stadt-17</guid>
    <description>&lt;p&gt;Die &lt;b&gt;Brücke&lt;/b&gt; bleibt bis Freitag zu &amp;amp; der Tunnel auch.&lt;/p&gt;
      &lt;p&gt;Umleitung über die Ringstra&amp;szlig;e.&lt;/p&gt;</description>
    <content:encoded><![CDATA[<p>Wegen <em>Bauarbeiten</em> bleibt die Brücke gesperrt.</p>
      <script>track()</script>]]></content:encoded>
    <pubDate>Mon, 02 Nov 2026 08:15:00 +0100</pubDate>
  </item>
  <item>
    <title>Markt eröffnet</title>
    <link>HTTPS://Stadt.Example:443/lokales/markt?fbclid=XYZ&amp;tag=herbst</link>
    <pubDate>Tue, 03 Nov 2026 17:45:30 GMT</pubDate>
  </item>
</channel>
</rss>
""".encode()

ATOM10 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">Harbour &lt;i&gt;Log&lt;/i&gt;</title>
  <id>urn:uuid:6f0c2a7e-harbour-log</id>
  <updated>2026-11-04T09:00:00Z</updated>
  <entry>
    <title>Ferry timetable changes</title>
    <id>urn:uuid:ferry-0001</id>
    <link rel="alternate" href="posts/ferry?gclid=abc123&amp;page=2"/>
    <link rel="enclosure" href="https://harbour.example/audio/ferry.mp3"/>
    <published>2026-11-04T08:00:00-05:00</published>
    <updated>2026-11-04T09:30:00+01:00</updated>
    <summary type="html">
      &lt;p&gt;Fish &amp;amp; chips &lt;script&gt;steal()&lt;/script&gt;at the pier&lt;/p&gt;</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">
      <p>The <em>winter</em> timetable starts on Monday.</p></div></content>
  </entry>
  <entry>
    <title>Lighthouse repainted</title>
    <id>urn:uuid:lighthouse-0002</id>
    <link href="https://harbour.example/posts/lighthouse"/>
    <updated>2026-11-05T00:00:00Z</updated>
    <summary>Red and white again.</summary>
  </entry>
</feed>
"""

RSS10 = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://observatory.example/">
    <title>Observatory notes</title>
    <link>https://observatory.example/</link>
    <description>Sky</description>
    <items><rdf:Seq><rdf:li resource="https://observatory.example/n/comet"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://observatory.example/n/comet">
    <title>Comet visible before dawn</title>
    <link>https://observatory.example/n/comet?utm_campaign=sky</link>
    <description>Look &lt;b&gt;east&lt;/b&gt; at 5 am &amp;mdash; binoculars help.</description>
    <dc:date>2026-11-03T10:00:00+02:00</dc:date>
  </item>
</rdf:RDF>
"""


def rss_items(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://t.example/</link><description>d</description>"
        + "".join(f"<item>{i}</item>" for i in items)
        + "</channel></rss>"
    ).encode()


# -- the three formats --------------------------------------------------------------------

def test_rss20_entries():
    parsed = parse_bytes(RSS20, "application/rss+xml", "https://stadt.example/feed.xml")

    assert parsed.version == "rss20"
    assert parsed.title == "Stadtanzeiger & Umland"
    first, second = parsed.entries
    assert first.title == "Brücke & Tunnel gesperrt"
    # Relative link resolved against the feed URL, tracking parameters and fragment gone.
    assert first.link == "https://stadt.example/lokales/bruecke-17?id=17"
    assert first.summary == ("Die Brücke bleibt bis Freitag zu & der Tunnel auch.\n"
                             "Umleitung über die Ringstraße.")
    assert first.content == "Wegen Bauarbeiten bleibt die Brücke gesperrt."
    assert first.published == "2026-11-02T07:15:00Z"
    assert first.guid == "stadt-17"
    assert first.uid == "guid:stadt-17"
    assert second.link == "https://stadt.example/lokales/markt?tag=herbst"
    assert second.published == "2026-11-03T17:45:30Z"
    assert second.uid == "link:https://stadt.example/lokales/markt?tag=herbst"
    assert second.content == "" and second.summary == ""


def test_atom10_entries():
    parsed = parse_bytes(ATOM10, "application/atom+xml", "https://harbour.example/blog/feed.atom")

    assert parsed.version == "atom10"
    assert parsed.title == "Harbour Log"
    ferry, lighthouse = parsed.entries
    assert ferry.title == "Ferry timetable changes"
    assert ferry.uid == "guid:urn:uuid:ferry-0001"
    # rel="alternate" is the link, not the enclosure; relative to the feed's URL.
    assert ferry.link == "https://harbour.example/blog/posts/ferry?page=2"
    assert ferry.summary == "Fish & chips at the pier"
    assert "steal" not in ferry.summary and "<" not in ferry.summary
    assert ferry.content == "The winter timetable starts on Monday."
    # published wins over updated; offsets folded into UTC.
    assert ferry.published == "2026-11-04T13:00:00Z"
    assert lighthouse.link == "https://harbour.example/posts/lighthouse"
    assert lighthouse.published == "2026-11-05T00:00:00Z"
    assert lighthouse.summary == "Red and white again."


def test_rss10_entries():
    parsed = parse_bytes(RSS10, "application/rdf+xml")

    assert parsed.version == "rss10"
    assert parsed.title == "Observatory notes"
    [comet] = parsed.entries
    assert comet.title == "Comet visible before dawn"
    assert comet.link == "https://observatory.example/n/comet"
    assert comet.summary == "Look east at 5 am \u2014 binoculars help."
    assert comet.published == "2026-11-03T08:00:00Z"
    assert comet.uid == "guid:https://observatory.example/n/comet"


# -- identity -------------------------------------------------------------------------------

def test_identity_guid_then_link_then_hash():
    body = rss_items(
        "<title>With guid</title><link>https://t.example/a</link><guid isPermaLink='false'>x-1</guid>",
        "<title>Link only</title><link>https://T.example:443/b?utm_term=q#top</link>",
        "<title>Neither</title><description>Just words.</description>",
    )

    guid, link, neither = parse_bytes(body).entries

    assert guid.uid == "guid:x-1"
    assert link.uid == "link:https://t.example/b" and link.guid is None
    assert neither.uid.startswith("hash:") and neither.link is None and neither.guid is None
    assert neither.uid == f"hash:{neither.content_hash}"
    assert len(neither.content_hash) == 32


def test_hash_identity_is_stable_and_depends_on_the_text():
    body = rss_items("<title>Neither</title><description>Just words.</description>")
    other = rss_items("<title>Neither</title><description>Other words.</description>")

    first = parse_bytes(body).entries[0].uid
    again = parse_bytes(body).entries[0].uid

    assert first == again
    assert parse_bytes(other).entries[0].uid != first


def test_entry_without_any_text_or_link_is_dropped():
    body = rss_items("<title></title>", "<title>Kept</title>")

    assert [e.title for e in parse_bytes(body).entries] == ["Kept"]


@pytest.mark.parametrize("link", ["javascript:alert(1)", "JavaScript:void(0)",
                                  "data:text/html,hello", "/relative/without/base"])
def test_non_http_link_becomes_none(link):
    body = rss_items(f"<title>Odd link</title><link>{link}</link>")

    [entry] = parse_bytes(body).entries

    assert entry.link is None
    assert entry.uid.startswith("hash:")


# -- canonical URLs ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://news.example/a?utm_source=x&utm_medium=y&utm_campaign=z",
         "https://news.example/a"),
        ("https://news.example/a?id=7&fbclid=abc&gclid=def&page=2",
         "https://news.example/a?id=7&page=2"),
        ("https://news.example/a?UTM_Source=x&keep=1", "https://news.example/a?keep=1"),
        ("https://news.example/a#comments", "https://news.example/a"),
        ("HTTPS://News.EXAMPLE/Path/Case", "https://news.example/Path/Case"),
        ("http://news.example:80/a", "http://news.example/a"),
        ("https://news.example:443/a", "https://news.example/a"),
        ("https://news.example:8443/a", "https://news.example:8443/a"),
        ("http://news.example:443/a", "http://news.example:443/a"),
        ("https://news.example", "https://news.example/"),
        ("  https://news.example/a  ", "https://news.example/a"),
        ("https://news.example/a?b=2&a=1&empty=", "https://news.example/a?b=2&a=1&empty="),
        ("https://news.example/s?q=kursk+front&lang=de", "https://news.example/s?q=kursk+front&lang=de"),
    ],
)
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent():
    once = canonical_url("HTTP://Example.ORG:80/x/?utm_medium=a&z=1&a=2#frag")

    assert canonical_url(once) == once


def test_canonical_url_keeps_ipv6_brackets():
    assert canonical_url("http://[::1]:8080/x?utm_source=a") == "http://[::1]:8080/x"


# -- hostile and broken input -------------------------------------------------------------

def entity_feed(prefix: str = "", refs: int = 5000, size: int = 1000) -> str:
    """An internal entity of ``size`` bytes, referenced ``refs`` times (5 MB expanded)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + prefix
        + '<!DOCTYPE rss [\n<!ENTITY boom "' + "B" * size + '">\n]>\n'
        + '<rss version="2.0"><channel><title>Entities</title><item><title>'
        + "&boom;" * refs + "</title><link>https://e.example/1</link></item></channel></rss>"
    )


def assert_not_expanded(body: bytes) -> None:
    started = time.monotonic()
    parsed = parse_bytes(body, "application/rss+xml")
    elapsed = time.monotonic() - started

    assert elapsed < 2
    longest = max((len(e.title) + len(e.summary) for e in parsed.entries), default=0)
    assert longest < 100_000, f"entity expanded to {longest} characters"
    assert "B" * 1000 not in "".join(e.title for e in parsed.entries)


def test_entity_declared_in_doctype_is_not_expanded():
    assert_not_expanded(entity_feed().encode())


def test_entity_declared_on_the_doctype_line_is_not_expanded():
    body = entity_feed().replace("[\n<!ENTITY", "[<!ENTITY").replace('">\n]>', '">]>')

    assert_not_expanded(body.encode())


def test_entity_declared_after_64_kb_of_prolog_is_not_expanded():
    assert_not_expanded(entity_feed(prefix="<!--" + " " * 70_000 + "-->\n").encode())


def test_entity_declared_in_utf16_feed_is_not_expanded():
    body = entity_feed(refs=2000).replace('encoding="utf-8"', 'encoding="utf-16"')

    assert_not_expanded(body.encode("utf-16"))


def test_billion_laughs_is_not_expanded():
    lols = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
                                       for i in range(1, 10)]
    body = ('<?xml version="1.0"?>\n<!DOCTYPE rss [' + "\n".join(lols) + "]>\n"
            '<rss version="2.0"><channel><title>Laughs</title><item><title>&lol9;</title>'
            "<link>https://e.example/lol</link></item></channel></rss>")
    started = time.monotonic()
    parsed = parse_bytes(body.encode(), "application/rss+xml")
    assert time.monotonic() - started < 2
    assert "lollol" not in "".join(e.title for e in parsed.entries)


def test_quadratic_blowup_stays_small_in_memory():
    """../shared/LIBRARY-NOTES.md: a 68 KB feed with one large entity referenced thousands of times became
    888 MB. Stripped, parsing it costs a few MB."""
    body = entity_feed(refs=6000, size=10_000).encode()  # 60 MB if expanded
    tracemalloc.start()
    try:
        assert_not_expanded(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("junk", [b"<!ENTITY " * 200_000, b'<!ENTITY "' * 200_000,
                                  b"<!ENTITY x '" + b"a" * 1_000_000])
def test_unterminated_entity_declarations_are_stripped_in_linear_time(junk):
    """A regex over ``<!ENTITY ...>`` backtracked to the end for each of them (32 s for 90 KB)."""
    started = time.monotonic()
    with pytest.raises(ParseError):
        parse_bytes(b'<?xml version="1.0"?><!DOCTYPE rss [' + junk, "application/rss+xml")
    assert time.monotonic() - started < 2


def test_entity_declaration_with_quoted_gt_is_stripped_whole():
    body = entity_feed(refs=3).replace('"' + "B" * 1000 + '"', "'B>B' \"x>\"")
    parsed = parse_bytes(body.encode(), "application/rss+xml")
    assert [e.link for e in parsed.entries] == ["https://e.example/1"]


def test_html_page_is_not_a_feed():
    page = (b"<!DOCTYPE html><html><head><title>Startseite</title></head><body>"
            b"<h1>Willkommen</h1><p>Dies ist eine Webseite, kein Feed.</p></body></html>")

    for ctype in ("text/html; charset=utf-8", ""):
        with pytest.raises(ParseError, match="^not a feed"):
            parse_bytes(page, ctype)


@pytest.mark.parametrize("body", [b"", b"   \n  ", b'{"not": "xml"}', b"\x00\x01\x02"])
def test_empty_or_garbage_bytes_raise_parse_error(body):
    with pytest.raises(ParseError, match="^not a feed"):
        parse_bytes(body, "application/rss+xml")


def test_bozo_feed_with_undefined_entity_still_yields_entries():
    body = rss_items(
        "<title>&ldquo;Kein Kommentar&rdquo;, sagt der B&uuml;rgermeister</title>"
        "<link>https://t.example/zitat</link>",
        "<title>Second story</title><link>https://t.example/zwei</link>",
    )

    parsed = parse_bytes(body, "application/rss+xml")

    assert [e.link for e in parsed.entries] == ["https://t.example/zitat", "https://t.example/zwei"]
    assert parsed.entries[0].title == "\u201cKein Kommentar\u201d, sagt der Bürgermeister"


def test_feed_served_with_wrong_content_type_still_yields_entries():
    for ctype in ("text/html; charset=utf-8", "text/plain", "application/octet-stream"):
        parsed = parse_bytes(RSS20, ctype, "https://stadt.example/feed.xml")
        assert [e.uid for e in parsed.entries] == [
            "guid:stadt-17", "link:https://stadt.example/lokales/markt?tag=herbst"
        ], ctype


@pytest.mark.parametrize("ctype", ["application/rss+xml", "text/xml", "application/xml", ""])
def test_iso_8859_1_feed_decodes_umlauts(ctype):
    body = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<rss version="2.0"><channel>'
        "<title>Grüße aus Köln</title><item><title>Überschwemmung an der Straße</title>"
        "<link>https://koeln.example/a</link><description>Bürger äußern Sorge.</description>"
        "</item></channel></rss>"
    ).encode("iso-8859-1")
    assert "ü".encode() not in body  # really Latin-1 on the wire

    parsed = parse_bytes(body, ctype)

    assert parsed.title == "Grüße aus Köln"
    [entry] = parsed.entries
    assert entry.title == "Überschwemmung an der Straße"
    assert entry.summary == "Bürger äußern Sorge."


# -- aggregator links -------------------------------------------------------------------------

def _google_news_id(target: bytes) -> str:
    import base64

    length = len(target)
    varint = bytes([length]) if length < 128 else bytes([(length & 0x7F) | 0x80, length >> 7])
    raw = b"\x08\x13\x22" + varint + target + b"\xd2\x01\x00"
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("target", [
    "https://www.example.org/politik/kursk-lage-123.html",
    "https://www.example.org/" + "sehr-langer-pfad/" * 12 + "artikel.html",  # 2-byte length
])
def test_google_news_links_are_unwrapped_to_the_publisher(target):
    from monitor.parse import unwrap

    gid = _google_news_id(target.encode())
    assert unwrap(f"https://news.google.com/rss/articles/{gid}?oc=5") == target
    assert unwrap(f"https://news.google.com/articles/{gid}") == target


def test_redirect_and_undecodable_aggregator_links():
    from monitor.parse import unwrap

    assert unwrap("https://www.google.com/url?rct=j&url=https://www.example.org/a%3Fb%3D1&ct=ga") \
        == "https://www.example.org/a?b=1"
    assert unwrap("https://www.bing.com/news/apiclick.aspx?ref=FexRss&url=https%3a%2f%2fexample.org%2fx") \
        == "https://example.org/x"
    newer = "https://news.google.com/rss/articles/CBMiAU_yqLPqZ0kz9RXmNq0rTtTnB7xEHn0Qm?oc=5"
    assert unwrap(newer) == newer  # needs Google's servers: left as it is
    assert unwrap("https://www.google.com/url?url=javascript:alert(1)") == \
        "https://www.google.com/url?url=javascript:alert(1)"
    assert unwrap("https://example.org/news/articles/CBMiM2h0dHBzOi8vd3d3") == \
        "https://example.org/news/articles/CBMiM2h0dHBzOi8vd3d3"


def test_feed_entry_links_are_unwrapped_and_canonical():
    target = "https://www.example.org/welt/bericht.html"
    gid = _google_news_id((target + "?utm_source=gn").encode())
    body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>GN</title><item>'
            f"<title>Bericht</title><link>https://news.google.com/rss/articles/{gid}?oc=5</link>"
            "</item></channel></rss>").encode()
    [e] = parse_bytes(body).entries
    assert e.link == target and e.uid == f"link:{target}"


# -- JSON Feed ---------------------------------------------------------------------------------

JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Lokales &amp; Welt",
    "home_page_url": "https://json.example/",
    "feed_url": "https://json.example/feed.json",
    "items": [
        {"id": "j-1", "url": "/2026/11/kursk.html?utm_medium=json",
         "title": "Lage im Gebiet Kursk", "content_html": "<p>Erster <b>Absatz</b>.</p>",
         "summary": "Kurz gesagt", "date_published": "2026-11-02T10:15:00+01:00"},
        {"id": 42, "external_url": "https://other.example/b", "content_text": "Nur Text",
         "date_modified": "2026-11-03T08:00:00Z"},
        {"content_text": "ohne id und link"},
        "not an item",
        {},
    ],
}


def test_json_feed_items_become_entries():
    parsed = parse_bytes(json.dumps(JSON_FEED).encode(), "application/feed+json")
    assert parsed.title == "Lokales & Welt" and parsed.version.endswith("/1.1")
    first, second, third = parsed.entries
    assert first.uid == "guid:j-1" and first.link == "https://json.example/2026/11/kursk.html"
    assert (first.title, first.summary, first.content) == ("Lage im Gebiet Kursk", "Kurz gesagt",
                                                           "Erster Absatz.")
    assert first.published == "2026-11-02T09:15:00Z"
    assert second.uid == "guid:42" and second.link == "https://other.example/b"
    assert second.content == "Nur Text" and second.published == "2026-11-03T08:00:00Z"
    assert third.uid.startswith("hash:") and third.link is None


def test_json_feed_is_recognised_without_a_json_content_type():
    parsed = parse_bytes(b"  \n" + json.dumps(JSON_FEED).encode(), "text/plain")
    assert len(parsed.entries) == 3


@pytest.mark.parametrize("body,kind", [
    (b'{"version": "https://jsonfeed.org/version/1", "items": "no"}', "not-a-feed"),
    (b'{"title": "just json", "items": []}', "not-a-feed"),
    (b'{"version": "https://jsonfeed.org/version/1", "items": [', "parse-error"),
    (b"[" * 100_000 + b"]" * 100_000, "parse-error"),
])
def test_broken_json_feeds_are_parse_errors(body, kind):
    with pytest.raises(ParseError) as err:
        parse_bytes(body, "application/json")
    assert err.value.kind == kind


def test_json_feed_with_lone_surrogate_escapes_parses_to_text_utf8_can_hold():
    """Found by hypothesis: "\\ud800" in a JSON string decodes to a lone surrogate, which
    crashed hashing the entry (UnicodeEncodeError) instead of becoming text or a ParseError."""
    body = (b'{"version": "https://jsonfeed.org/version/1.1", "title": "J\\udb00", "items": '
            b'[{"id": "1", "url": "http://example.org/a/1", "title": "Kursk \\ud800", "summary": "x\\udc00y"}]}')
    feed = parse_bytes(body, "application/feed+json", "http://example.org/feed.json")
    [entry] = feed.entries
    assert entry.title == "Kursk ?" and entry.summary == "x?y" and feed.title == "J?"
    entry.content_hash.encode("utf-8")


@pytest.mark.parametrize(("fragment", "text"), [
    ("plain words stay", "plain words stay"),
    ("  runs \t of\u00a0\u00a0 spaces ", "runs of spaces"),
    ("line one \n\n  \n line two\r\n", "line one\nline two"),
    ("<p>One</p><p>Two &amp; <b>three</b></p>", "One\nTwo & three"),
    ("Caf&eacute;  &lt;b&gt;", "Café <b>"),
    ("kept]]>", "kept]]>"),  # a CDATA end is dropped only where markup or references are read
    ("a &amp; b]]>", "a & b"),
    ("<script>x()</script>Text<!-- note -->", "Text"),
])
def test_html_to_text(fragment, text):
    """Feed HTML as the text stored (monitor/text.py): one space per run, one newline per paragraph."""
    assert html_to_text(fragment) == text


def test_the_block_tags_are_the_names_listed():
    """text._BLOCK_TAG's tree of names matches the tags _BLOCK lists, in any case, and no other
    (a name it lists with a letter more, or one letter less, is no block)."""
    import re

    from monitor import text

    names = [n for n in text._BLOCK.split("|") if n != "h[1-6]"] + [f"h{i}" for i in range(1, 7)]
    listed = re.compile(f"</?(?:{text._BLOCK})\\b[^>]*>", re.I)
    for name in names + ["a", "span", "b", "i", "h7", "hx", "tbody", "th", "td", "dl", "pr", "fig", "lis", "headers",
                         "footers", "figures", "section2", "articles", "h", "d", "s", "f", "t"]:
        for tag in (name, name.upper(), name.title(), name + "x", name[:-1]):
            for form in (f"<{tag}>", f"</{tag}>", f"<{tag} class='c'>", f"<{tag}/>", f"<{tag}-x>"):
                assert bool(text._BLOCK_TAG.fullmatch(form)) == bool(listed.fullmatch(form)), form
    assert text._BLOCK_TAG.fullmatch("<P>") and not text._BLOCK_TAG.fullmatch("<a>")


@pytest.mark.parametrize("fragment", ["<SCRIPT src=x>y</script>z", "<Style>p{}</style>z", "a <!-- c -->b",
                                      "<noscript>n</noscript>z", "<template>t</template>z",
                                      "<head><title>h</title></head>z", "<scripts>kept</scripts>",
                                      "<heading>kept</heading>", "<\u017ftyle>s</style>z"])
def test_dropped_elements_are_found_by_their_start(fragment):
    """html_to_text runs _DROP only where _DROP_START finds where it could match: the same text."""
    from monitor import text

    assert bool(text._DROP_START.search(fragment)) == bool(text._DROP.search(fragment))
    dropped = text._DROP.sub(" ", fragment)
    expected = text.squeeze(html.unescape(text._TAG_PLAIN.sub("", text._BLOCK_TAG.sub("\n", dropped))))
    assert html_to_text(fragment) == expected


def test_squeeze_is_one_space_per_run_and_one_newline_per_run_with_a_newline():
    """text.squeeze against its rule written plainly: white space (\\t \\r \\f \\v and no-break
    spaces are spaces) in runs; a run holding a newline becomes one newline, any other one space;
    none at either end. (The implementation does it in an order that costs less.)"""
    import random
    import re

    from monitor.text import _ODD_SPACES, squeeze

    assert _ODD_SPACES == "\t\r\f\v\u00a0"  # what squeeze folds, unrolled

    def rule(text: str) -> str:
        text = re.sub("[\t\r\f\v\u00a0]", " ", text)
        return re.sub("[ \n]+", lambda m: "\n" if "\n" in m.group() else " ", text).strip(" \n")
    rng = random.Random(16)
    for _ in range(20000):
        text = "".join(rng.choice(" \n\t\r\f\v\u00a0ab.\u2019") for _ in range(rng.randint(0, 14)))
        assert squeeze(text) == rule(text), repr(text)
    long = "  <p>\n    One  two\n\n   </p>\n \n\tThree \u00a0 four  \n"
    assert squeeze(long) == rule(long) == "<p>\nOne two\n</p>\nThree four"


def test_unescape_is_html_unescape():
    """text.unescape replaces "&nbsp;", "&#32;" and "&#39;" before html.unescape reads the rest: the same
    text, whatever stands around them (references cut short, names that are a known one's prefix,
    numbers, ";")."""
    import html
    import random

    from monitor.text import unescape

    parts = ["&nbsp;", "&#32;", "&#39;", "&amp", "&amp;", "&not", "&notit;", "&#39", "&#x", "&", ";", "#", "a", "1",
             " ", "\u00a0", "&nbsp", "&#32", "x;", "&lt;", "nbsp;"]
    rng = random.Random(16)
    for _ in range(20000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
        assert unescape(text) == html.unescape(text), repr(text)
