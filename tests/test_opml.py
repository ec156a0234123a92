"""monitor.opml: OPML as real readers write it, refused safely when hostile; feed discovery in
HTML that may be garbage; feed sniffing. Every document is written here, no network."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

import pytest

from monitor.errors import MonitorError
from monitor.opml import FeedRef, OPMLError, discover, looks_like_feed, read_opml, read_opml_report, write_opml

FEEDLY = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Alice subscriptions in feedly Cloud</title></head>
  <body>
    <outline text="News" title="News">
      <outline type="rss" text="BBC World" title="BBC World" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"
               htmlUrl="https://www.bbc.co.uk/news"/>
      <outline text="Europe" title="Europe">
        <outline type="rss" text="DW" title="Deutsche Welle" xmlUrl="https://rss.dw.com/rdf/rss-en-all"
                 category="/Languages/English,press"/>
      </outline>
    </outline>
    <outline text="Tech" title="Tech">
      <outline type="rss" text="LWN" title="LWN.net" xmlUrl="https://lwn.net/headlines/rss"/>
    </outline>
    <outline type="rss" text="Top level" title="Top level" xmlUrl="http://example.org/feed"/>
  </body>
</opml>
"""


def _opml(body: str, version: str = "2.0") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="{version}"><head><title>t</title></head>'
            f"<body>{body}</body></opml>").encode()


def test_feedly_export_nested_folders_and_categories():
    feeds = read_opml(FEEDLY, "feedly.opml")

    assert [f.url for f in feeds] == ["https://feeds.bbci.co.uk/news/world/rss.xml", "https://rss.dw.com/rdf/rss-en-all",
                                      "https://lwn.net/headlines/rss", "http://example.org/feed"]
    assert feeds[0] == FeedRef("https://feeds.bbci.co.uk/news/world/rss.xml", "BBC World", ("News",))
    # title wins over text; all ancestor folders, then the category's path parts and words
    assert feeds[1].title == "Deutsche Welle"
    assert feeds[1].tags == ("News", "Europe", "Languages", "English", "press")
    assert feeds[2].tags == ("Tech",)
    assert feeds[3].tags == () and feeds[3].interval is None


def test_inoreader_style_text_only():
    data = _opml('<outline text="Science"><outline text="Nature" type="rss" '
                 'xmlUrl="https://www.nature.com/nature.rss" htmlUrl="https://www.nature.com"/></outline>')

    assert read_opml(data) == [FeedRef("https://www.nature.com/nature.rss", "Nature", ("Science",))]


def test_opml_1_0_and_attribute_case_variants():
    data = _opml('<outline text="A" xmlurl="https://a.example/rss"/>'
                 '<outline TEXT="B" XMLURL="https://b.example/rss"/>'
                 '<outline text="C" xmlUrl="  https://c.example/rss  "/>', version="1.0")

    feeds = read_opml(data)

    assert [(f.url, f.title) for f in feeds] == [("https://a.example/rss", "A"), ("https://b.example/rss", "B"),
                                                 ("https://c.example/rss", "C")]


def test_deep_nesting_does_not_overflow_the_stack():
    depth = 5000
    data = _opml('<outline text="f">' * depth + '<outline text="deep" xmlUrl="https://deep.example/"/>'
                 + "</outline>" * depth + '<outline text="after" xmlUrl="https://after.example/"/>')

    feeds = read_opml(data)

    assert [f.title for f in feeds] == ["deep", "after"]
    assert feeds[0].tags == ("f",) and feeds[1].tags == ()


def test_duplicates_keep_the_first_and_are_reported():
    data = _opml('<outline text="One" xmlUrl="https://x.example/feed"/>'
                 '<outline text="Folder"><outline text="Two" xmlUrl="https://X.EXAMPLE/feed"/></outline>'
                 '<outline text="Three" xmlUrl="https://x.example/feed"/>')

    feeds, notes = read_opml_report(data)

    assert feeds == [FeedRef("https://x.example/feed", "One")]
    assert len(notes) == 2 and all("duplicate" in n for n in notes)
    assert "'Two'" in notes[0]


def test_non_http_and_empty_outlines_are_skipped_with_notes():
    data = _opml('<outline text="Files" xmlUrl="ftp://files.example/feed.xml"/>'
                 '<outline text="Local" xmlUrl="file:///etc/passwd"/>'
                 '<outline text="just a note"/>'
                 '<outline text="Empty folder"></outline>'
                 '<outline text="Ok" xmlUrl="https://ok.example/rss"/>')

    feeds, notes = read_opml_report(data, "mine.opml")

    assert feeds == [FeedRef("https://ok.example/rss", "Ok")]
    assert "outline 'Files': not an http(s) URL: ftp://files.example/feed.xml" in notes
    assert "outline 'Local': not an http(s) URL: file:///etc/passwd" in notes
    assert any("'just a note'" in n and "no xmlUrl" in n for n in notes)
    assert read_opml(data) == feeds


def test_title_that_is_only_the_url_counts_as_no_title():
    data = _opml('<outline text="https://u.example/rss" xmlUrl="https://u.example/rss"/>')

    assert read_opml(data) == [FeedRef("https://u.example/rss", "")]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<opml version="2.0"><head><title>&lol9;</title></head><body><outline text="&lol9;" xmlUrl="https://a.example/"/></body></opml>
"""


def test_billion_laughs_is_refused_quickly():
    start = time.monotonic()

    with pytest.raises(OPMLError, match="evil.opml: not OPML: .*DOCTYPE"):
        read_opml(BILLION_LAUGHS, "evil.opml")

    assert time.monotonic() - start < 1


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?><!doctype opml SYSTEM "http://attacker.example/x.dtd"><opml/>',
    b'<?xml version="1.0"?><opml><!ENTITY x "y"><body/></opml>',
    # UTF-16: invisible to a byte scan for ASCII, so expat's own DOCTYPE handler must stop it
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE opml [<!ENTITY x "y">]><opml><body/></opml>'.encode("utf-16"),
    '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE opml><opml><body/></opml>'.encode("utf-16-be"),
])
def test_any_dtd_or_entity_declaration_is_refused(data):
    with pytest.raises(OPMLError, match="DOCTYPE or ENTITY"):
        read_opml(data)


def test_utf16_opml_without_dtd_is_read():
    data = ('<?xml version="1.0" encoding="UTF-16"?><opml version="2.0"><body>'
            '<outline text="Новости" xmlUrl="https://ru.example/rss"/></body></opml>').encode("utf-16")

    assert read_opml(data) == [FeedRef("https://ru.example/rss", "Новости")]


def test_oversized_input_is_refused_before_parsing():
    with pytest.raises(OPMLError, match="big.opml: not OPML: .*more than"):
        read_opml(b" " * (20 * 1024 * 1024 + 1), "big.opml")


def test_not_xml_names_file_and_line():
    with pytest.raises(OPMLError) as e:
        read_opml(b"<opml>\n<body>\n<outline text='a' </body></opml>", "broken.opml")

    assert isinstance(e.value, MonitorError)
    assert str(e.value).startswith("broken.opml:3: not OPML: not well-formed XML")
    assert e.value.line == 3


@pytest.mark.parametrize("data", [b"", b"just some text", b"\x00\xff\xfe garbage", b'{"version": 1}'])
def test_non_xml_is_refused(data):
    with pytest.raises(OPMLError, match="not OPML"):
        read_opml(data)


def test_garbage_raises_only_opml_error():
    rng = random.Random(3)
    pieces = [b"<opml>", b"<body>", b"<outline ", b"xmlUrl=", b'"http://[', b"/>", b"</body></opml>", b"&", b"&#0;",
              b'<?xml version="1.0" encoding="x-nope"?>', b'<?xml version="1.0" encoding="cp1251"?>', b"\xff\xfe"]
    for _ in range(300):
        data = b"".join(rng.choice(pieces) if rng.random() < 0.6 else rng.randbytes(rng.randint(1, 12))
                        for _ in range(rng.randint(0, 30)))
        try:
            feeds, _ = read_opml_report(data)
        except OPMLError:
            continue
        assert all(f.url.startswith(("http://", "https://")) for f in feeds)


def test_root_that_is_not_opml_is_refused():
    with pytest.raises(OPMLError, match=r"feed.xml: not OPML: the root element is <rss>, not <opml>"):
        read_opml(b'<rss version="2.0"><channel><title>x</title></channel></rss>', "feed.xml")


def test_opml_without_body_is_refused():
    with pytest.raises(OPMLError, match="no <body>"):
        read_opml(b'<opml version="2.0"><head/></opml>')


WORDS = ["Новости", "Мир", "Größe", "Übersicht", "Straße", "tech", "Café", "日本", "a & b", "<x>", 'say "hi"']


def _generated(n: int) -> list[FeedRef]:
    rng = random.Random(1)
    feeds = []
    for i in range(n):
        title = f"{rng.choice(WORDS)} {rng.choice(WORDS)} #{i}"
        tags = tuple(dict.fromkeys(rng.sample(WORDS, rng.randint(0, 3))))
        interval = rng.choice([None, 300.0, 1800.5])
        feeds.append(FeedRef(f"https://site{i % 37}.example/feed/{i}?q=ä&x=1", title, tags, interval))
    return feeds


def test_round_trip_of_200_feeds_with_unicode_titles_and_tags():
    feeds = _generated(200)

    data = write_opml(feeds, title="Мои ленты")
    back = read_opml(data, "roundtrip.opml")

    # written grouped by first tag, so compared by URL rather than by position
    assert sorted(f.url for f in back) == sorted(f.url for f in feeds) and len(back) == 200
    by_url = {f.url: f for f in back}
    for f in feeds:
        got = by_url[f.url]
        assert (got.title, set(got.tags), got.interval) == (f.title, set(f.tags), f.interval), f.url
    assert read_opml_report(data)[1] == []


def test_write_opml_shape():
    feeds = [FeedRef("https://a.example/rss", "A", ("News", "World")), FeedRef("https://b.example/rss"),
             FeedRef("https://c.example/rss", "C", ("News",)), FeedRef("https://d.example/rss", "D", ("Tech",))]

    data = write_opml(feeds)
    text = data.decode("utf-8")

    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert "<title>rss-monitor feeds</title>" in text
    created = text.split("<dateCreated>")[1].split("</dateCreated>")[0]
    assert parsedate_to_datetime(created).tzinfo is not None
    # one folder per first tag, in order of first appearance; untagged at the top level
    assert text.index('<outline text="News" title="News">') < text.index('text="https://b.example/rss"')
    assert text.count('<outline text="News"') == 1
    assert text.index('text="https://b.example/rss"') < text.index('<outline text="Tech" title="Tech">')
    assert 'type="rss" text="A" title="A" xmlUrl="https://a.example/rss" category="News,World"' in text
    assert "\n    <outline" in text  # pretty-printed
    assert read_opml(data) == [  # document order: the News folder holds a and c
        FeedRef("https://a.example/rss", "A", ("News", "World")), FeedRef("https://c.example/rss", "C", ("News",)),
        FeedRef("https://b.example/rss", ""), FeedRef("https://d.example/rss", "D", ("Tech",))]


# --- discovery -----------------------------------------------------------------------------

@pytest.mark.parametrize("rel", ["alternate", "ALTERNATE", "alternate feed", "feed alternate", " Alternate\tfeed "])
def test_discover_rel_token_variants(rel):
    html = f'<html><head><link rel="{rel}" type="Application/RSS+XML" href="/rss.xml" title="Main"></head></html>'

    assert discover(html, "https://news.example/") == [FeedRef("https://news.example/rss.xml", "Main")]


def test_discover_multiple_types_in_document_order_deduplicated():
    html = b"""<html><head>
      <link rel="stylesheet" type="text/css" href="/style.css">
      <link rel="alternate" type="application/atom+xml" href="atom.xml" title="Atom">
      <link rel="alternate" type="application/rss+xml; charset=utf-8" href="https://news.example/rss" title="RSS">
      <link rel="alternate" type="application/feed+json" href="/feed.json" title="JSON">
      <link rel="alternate" type="application/json" href="/wp-json/" title="API">
      <link rel="alternate" type="text/html" hreflang="de" href="/de/">
      <link rel="alternate" type="application/rss+xml" href="/rss#top" title="Again">
      <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
    </head><body><a href="/other.rss">x</a></body></html>"""

    feeds = discover(html, "https://news.example/section/page.html")

    assert feeds == [FeedRef("https://news.example/section/atom.xml", "Atom"),
                     FeedRef("https://news.example/rss", "RSS"),
                     FeedRef("https://news.example/feed.json", "JSON"),
                     FeedRef("https://news.example/wp-json/", "API")]


def test_discover_relative_href_with_base():
    html = ('<head><base href="https://cdn.example/blog/"><link rel=alternate type=application/rss+xml '
            'href="feed.xml"></head>')

    assert discover(html, "https://www.example/x/y") == [FeedRef("https://cdn.example/blog/feed.xml")]


def test_discover_relative_base_is_resolved_against_page_url():
    html = '<link rel="alternate" type="application/atom+xml" href="atom"><base href="/blog/">'

    assert discover(html, "https://www.example/x/y") == [FeedRef("https://www.example/blog/atom")]


def test_discover_a_fallback_only_without_links():
    html = b"""<body>
      <a href="/news/rss">RSS <b>feed</b></a>
      <a href="feed/">Subscribe</a>
      <a href="https://WWW.example/atom.xml" title="Atom title"></a>
      <a href="https://other.example/feed.rss">Elsewhere</a>
      <a href="/about">About</a>
      <a href="/sitemap.xml">Sitemap</a>
      <a href="/data/feed.json">JSON</a>
      <a href="/news/rss">again</a>
    </body>"""

    feeds = discover(html, "https://www.example/blog/")

    assert feeds == [FeedRef("https://www.example/news/rss", "RSS feed"),
                     FeedRef("https://www.example/blog/feed/", "Subscribe"),
                     FeedRef("https://WWW.example/atom.xml", "Atom title"),
                     FeedRef("https://www.example/data/feed.json", "JSON")]
    with_link = b'<link rel="alternate" type="application/rss+xml" href="/main.rss">' + html
    assert discover(with_link, "https://www.example/blog/") == [FeedRef("https://www.example/main.rss")]


def test_discover_nothing():
    assert discover("<html><body><p>No feeds here</p></body></html>", "https://x.example/") == []
    assert discover(b"", "https://x.example/") == []


def test_discover_honours_meta_charset():
    html = '<meta charset="windows-1251"><link rel="alternate" type="application/rss+xml" href="/r" title="Новости">'

    feeds = discover(html.encode("cp1251"), "https://ru.example/")

    assert feeds == [FeedRef("https://ru.example/r", "Новости")]
    utf8 = html.replace("windows-1251", "utf-8").encode()
    assert discover(utf8, "https://ru.example/")[0].title == "Новости"


def test_discover_survives_garbage():
    rng = random.Random(7)
    pieces = [b"<", b">", b"</", b"<!", b"<!--", b"<?", b"&#", b"&#x", b"<a href=", b"<link rel=alternate ",
              b"type=application/rss+xml href=", b'"', b"'", b"<base href=", b"http://[", b"\x00", b"\xff",
              b"<![CDATA[", b"<script>", b"</script>", b"=", b" ", b"/feed"]
    for _ in range(300):
        data = b"".join(rng.choice(pieces) if rng.random() < 0.5 else rng.randbytes(rng.randint(1, 20))
                        for _ in range(rng.randint(0, 80)))
        result = discover(data, "https://g.example/")
        assert discover(rng.randbytes(500), "https://g.example/") == []
        assert all(isinstance(f, FeedRef) and f.url.startswith(("http://", "https://")) for f in result)


# --- sniffing ------------------------------------------------------------------------------

RSS = b'<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet href="s.xsl"?>\n<!-- c -->\n<rss version="2.0">'
ATOM = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>'
RDF = b'<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
JSON_FEED = b'  {\n "title": "x",\n "version": "https://jsonfeed.org/version/1.1", "items": []}'
HTML = b"<!DOCTYPE html>\n<html><head><title>Feed</title></head><body><rss></rss></body></html>"


@pytest.mark.parametrize("body,ctype,expected", [
    (RSS, "text/xml", True),
    (RSS, "text/html; charset=utf-8", True),  # servers that mislabel feeds
    (ATOM, "application/xml", True),
    (RDF, "", True),
    (JSON_FEED, "application/json", True),
    (b'{"version": "https:\\/\\/jsonfeed.org\\/version\\/1", "items": []}', "text/plain", True),
    (b'{"version": "1.0", "items": []}', "application/json", False),
    (HTML, "text/html", False),
    (HTML, "application/rss+xml", False),  # an HTML error page behind a feed type
    (b"<html><body>hi</body></html>", "", False),
    (b"\xef\xbb\xbf" + RSS, "", True),
    (b"\xef\xbb\xbf  \n" + ATOM, "application/octet-stream", True),
    ("<?xml version='1.0' encoding='UTF-16'?><rss>".encode("utf-16"), "", True),
    (b"", "application/atom+xml", True),
    (b"", "", False),
    (b"<feedback>not a feed</feedback>", "", False),
    (b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"><rss version="0.91">', "", True),
])
def test_looks_like_feed(body, ctype, expected):
    assert looks_like_feed(body, ctype) is expected
