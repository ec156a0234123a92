"""monitor.extract: an HTML page -> Article (trafilatura), and the pure choice between the
page's text and the feed's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.errors import ExtractError
from monitor.extract import choose, is_html, page
from monitor.models import Article, Entry

BODY = [
    "Nach tagelangem Regen ist der Pegel der Mosel in Trier am Donnerstagmorgen auf über "
    "acht Meter gestiegen. Die Feuerwehr hat in der Altstadt mobile Schutzwände aufgebaut.",
    "Anwohner in den Uferstraßen wurden gebeten, Keller zu räumen und Fahrzeuge auf höher "
    "gelegene Parkplätze zu bringen. Der Schiffsverkehr ist seit Mittwochabend eingestellt.",
    "Meteorologen erwarten, dass der Scheitel des Hochwassers am Freitagnachmittag erreicht "
    "wird, bevor das Wasser langsam zurückgeht.",
]
NAV = ["Startseite", "Sportergebnisse im Überblick", "Wettervorhersage für morgen"]
FOOTER = "Impressum · Datenschutzerklärung · Kontakt zur Redaktion"

ARTICLE_PAGE = (
    '<!DOCTYPE html><html lang="de-DE"><head><meta charset="utf-8">'
    "<title>Hochwasser an der Mosel | Lokalzeitung</title>"
    '<meta name="author" content="Greta Beispiel">'
    '<meta property="article:published_time" content="2026-11-06T07:30:00+01:00">'
    "</head><body><header><nav><ul>"
    + "".join(f'<li><a href="/{i}">{n}</a></li>' for i, n in enumerate(NAV))
    + "</ul></nav></header><main><article><h1>Hochwasser an der Mosel</h1>"
    + "".join(f"<p>{p}</p>" for p in BODY)
    + f"</article></main><footer><p>{FOOTER}</p><p>© 2026 Lokalzeitung Verlag</p></footer>"
    "</body></html>"
)


def test_page_keeps_the_article_and_drops_the_boilerplate():
    art = page(ARTICLE_PAGE.encode("utf-8"), "https://lokal.example/mosel")

    for paragraph in BODY:
        assert paragraph in art.text
    for boilerplate in [*NAV, FOOTER, "Lokalzeitung Verlag"]:
        assert boilerplate not in art.text
    assert art.title == "Hochwasser an der Mosel"
    assert art.author == "Greta Beispiel"
    assert art.language == "de"
    assert art.date == "2026-11-06"
    assert art.url == "https://lokal.example/mosel"
    assert art.source == "page" and art.error is None


def test_page_accepts_str_and_the_text_outvotes_a_wrong_lang_attribute():
    html = ARTICLE_PAGE.replace('lang="de-DE"', 'lang="fr"')  # a template's wrong declaration

    art = page(html)

    assert art.language == "de"
    assert BODY[0] in art.text


def test_short_page_takes_the_lang_attribute_without_region():
    html = ('<html lang="fr-FR"><head><title>Brève</title></head><body><article>'
            "<p>Le pont est fermé.</p></article></body></html>")

    assert page(html).language == "fr"


@pytest.mark.parametrize("text,lang", [
    ("Im russischen Gebiet Kursk gehen die Kämpfe zwischen den Einheiten weiter.", "de"),
    ("Fighting continued in the Kursk region of Russia on Tuesday, officials said.", "en"),
    ("Бои в Курской области продолжаются, сообщили в министерстве обороны.", "ru"),
    ("Бої в Курській області тривають, повідомили у міністерстві оборони.", "uk"),
    ("Les combats se poursuivent dans la région de Koursk, selon les autorités.", "fr"),
    ("Walki w obwodzie kurskim trwają, poinformowało ministerstwo obrony.", "pl"),
])
def test_page_without_lang_attribute_detects_the_language(text, lang):
    html = (f"<html><head><title>t</title></head><body><article><p>{text}</p><p>{text}</p>"
            "</article></body></html>")

    assert page(html).language == lang


@pytest.mark.parametrize("html", [
    "<!DOCTYPE html><html><head><title>Nothing</title></head><body></body></html>",
    '<!DOCTYPE html><html><head><title>Gallery</title></head><body><main><article>'
    '<figure><img src="/a.jpg" alt=""></figure></article></main></body></html>',
])
def test_page_without_main_text_raises(html):
    with pytest.raises(ExtractError, match="no main text found"):
        page(html.encode())


@pytest.mark.parametrize("html", [
    '<!DOCTYPE html><html lang="en"><head><title>Portal</title></head><body><header><nav><ul>'
    '<li><a href="/">Home</a></li><li><a href="/world">World news</a></li>'
    '<li><a href="/sport">Sport results</a></li></ul></nav></header><main></main>'
    "<footer><p>Imprint · Privacy policy · Contact the newsroom</p></footer></body></html>",
    '<!DOCTYPE html><html lang="en"><head><title>App</title><script>window.boot()</script>'
    '</head><body><div id="root"></div><noscript>Please enable JavaScript.</noscript>'
    "</body></html>",
], ids=["nav-and-footer-only", "script-only"])
def test_page_of_only_boilerplate_loses_to_the_feed_summary(html):
    # trafilatura's recall fallback returns the nav links / the <noscript> notice as "text"
    # (what plain trafilatura.extract does too; tuning it is the extraction issue's job):
    # such a page is shorter than the feed's own summary, so the summary is what gets matched.
    summary = "Die Redaktion berichtet über die aktuelle Lage und die Folgen für die Region."
    try:
        got = page(html.encode())
    except ExtractError:
        got = None
    art = choose(feed_entry(summary=summary), got)
    assert art.source == "feed-summary" and art.text == summary


@pytest.mark.parametrize("body", [
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
    b"",
])
def test_bytes_that_are_not_html_raise(body):
    with pytest.raises(ExtractError, match="not parseable as HTML"):
        page(body)


@pytest.mark.parametrize(("ctype", "expected"), [
    ("text/html", True),
    ("text/html; charset=utf-8", True),
    ("Text/HTML;charset=UTF-8", True),
    ("application/xhtml+xml", True),
    ("", True),  # no Content-Type at all: try it as HTML
    ("application/pdf", False),
    ("image/png", False),
    ("text/plain; charset=utf-8", False),
    ("application/rss+xml", False),
])
def test_is_html(ctype, expected):
    assert is_html(ctype) is expected


# -- choose: pure -------------------------------------------------------------------------

def feed_entry(content: str = "", summary: str = "Kurz: Pegel steigt.") -> Entry:
    return Entry(uid="guid:m-1", title="Hochwasser an der Mosel", link="https://lokal.example/m",
                 summary=summary, content=content, published="2026-11-06T06:30:00Z")


def page_article(text: str, date: str | None = "2026-11-06") -> Article:
    return Article(title="Page title", text=text, url="https://lokal.example/m?amp=1",
                   language="de", author="Greta Beispiel", date=date, source="page")


def test_choose_page_when_at_least_as_long_as_the_feed_content():
    e = feed_entry(content="x" * 40)

    art = choose(e, page_article("p" * 40))

    assert art.source == "page" and art.error is None
    assert art.text == "p" * 40
    assert art.title == e.title and art.summary == e.summary and art.url == e.link
    assert (art.language, art.author, art.date) == ("de", "Greta Beispiel", "2026-11-06")


def test_choose_page_without_date_takes_the_entry_date():
    art = choose(feed_entry(), page_article("Seitentext, länger als die Zusammenfassung.", date=None))

    assert art.source == "page" and art.date == "2026-11-06T06:30:00Z"


def test_choose_feed_content_when_the_page_is_shorter():
    e = feed_entry(content="Der volle Text aus dem Feed, länger als die Seite.")

    art = choose(e, page_article("Bitte zustimmen."))

    assert art.source == "feed-content"
    assert art.text == e.content
    assert art.error == "page text shorter than the feed's content"
    assert art.language == "de" and art.date == e.published


def test_choose_keeps_the_given_error_when_the_page_is_shorter():
    e = feed_entry(content="Der volle Text aus dem Feed.")

    art = choose(e, page_article("kurz"), error="consent wall")

    assert art.source == "feed-content" and art.error == "consent wall"


def test_choose_feed_content_when_there_is_no_page():
    e = feed_entry(content="Der volle Text aus dem Feed.")

    art = choose(e, None, error="http-404: HTTP 404 Not Found")

    assert art.source == "feed-content" and art.text == e.content
    assert art.error == "http-404: HTTP 404 Not Found"
    assert art.language is None and art.url == e.link


def test_choose_feed_summary_when_the_page_is_shorter_than_it():
    e = feed_entry(summary="Eine ausführliche Zusammenfassung im Feed, länger als die Seite.")

    art = choose(e, page_article("Bitte zustimmen."))

    assert art.source == "feed-summary" and art.text == e.summary
    assert art.error == "page text shorter than the feed's content"


def test_choose_feed_summary_when_there_is_neither_page_nor_content():
    e = feed_entry()

    art = choose(e, None, error="not HTML (application/pdf)")

    assert art.source == "feed-summary"
    assert art.text == e.summary == art.summary
    assert art.error == "not HTML (application/pdf)"
    assert art.title == e.title and art.date == e.published


def test_page_names_its_alternate_amp_or_canonical():
    normal = ARTICLE_PAGE.replace("</head>", '<link rel="amphtml" href="/amp/mosel"></head>', 1)
    assert page(normal.encode(), "https://lokal.example/mosel").alternate == \
        "https://lokal.example/amp/mosel"
    amp = normal.replace("<html ", "<html amp ", 1).replace(
        "</head>", '<link rel="canonical" href="https://lokal.example/mosel"></head>', 1)
    assert page(amp.encode(), "https://lokal.example/amp/mosel").alternate == \
        "https://lokal.example/mosel"
    assert page(ARTICLE_PAGE.encode(), "https://lokal.example/mosel").alternate is None


LANGUAGE_TEXTS = [
    "Ein Drohnenangriff traf am Montag ein Lager bei Sudscha im Gebiet Kursk.",
    "A drone hit a warehouse near Sudzha in the Kursk region on Monday.",
    "Удар беспилотника по складу возле Суджи в Курской области.",
    "Удар безпілотника по складу поблизу Суджі в Курській області.",
    "Un drone a frappé un entrepôt près de Soudja.", "Dron uderzył w magazyn pod Sudżą.", "short"]


def test_the_language_model_mapped_and_as_arrays_answers_as_py3langid_does():
    """language.py maps the model's two big tables from its cache folder and turns two of
    py3langid's per-state lists into arrays, so that workers only read them (issue 16): every
    answer stays the one of py3langid's own model as it loads it."""
    import json
    from array import array
    from pathlib import Path

    import numpy as np
    import py3langid

    from monitor import language

    model = py3langid.langid.IDENTIFIER
    assert model is language._model and language.how in ("mapped", "cached")  # conftest's cache folder
    assert isinstance(model.nb_ptc, np.memmap) and isinstance(model.tk_nextmove, memoryview)
    assert isinstance(model._rowbase, array) and isinstance(model.tk_output, array)
    own = py3langid.langid._load_identifier()  # a second model, with py3langid's lists
    assert isinstance(own._rowbase, list)
    texts = list(LANGUAGE_TEXTS)
    truth = Path(__file__).resolve().parents[2] / "shared/corpus/articles/scrapinghub-aeb/ground-truth.json"
    if truth.exists():
        texts += [v.get("articleBody", "")[:1000] for v in json.loads(truth.read_text()).values()][:150]
    assert [model.classify(t) for t in texts] == [own.classify(t) for t in texts]
    assert language.detect(texts[0]) == "de"


LANGUAGE_PROBE = """
import json, sys
from monitor import language
maps = open("/proc/self/maps").read()
print(json.dumps({"how": language.how, "mapped": "ptc.npy" in maps,
                  "answers": [language._model.classify(t)[0] for t in json.loads(sys.argv[1])]}))
"""


def _language_in(cache: Path | str) -> dict:
    import json

    env = {**os.environ, "MONITOR_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", LANGUAGE_PROBE, json.dumps(LANGUAGE_TEXTS)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return json.loads(done.stdout)


def test_the_language_cache_is_written_once_then_mapped_and_a_broken_one_is_made_again(tmp_path):
    """A fresh process writes the cache and maps it; the next only maps it; a truncated table
    is noticed and written again; a cache folder that cannot be written leaves the model in
    memory. The answers are the same every time."""
    import py3langid

    truth = [py3langid.langid._load_identifier().classify(t)[0] for t in LANGUAGE_TEXTS]
    first = _language_in(tmp_path / "cache")
    assert first == {"how": "cached", "mapped": True, "answers": truth}
    assert _language_in(tmp_path / "cache") == {"how": "mapped", "mapped": True, "answers": truth}
    (table,) = (tmp_path / "cache").glob("langid-*/ptc.npy")
    with open(table, "r+b") as f:
        f.truncate(table.stat().st_size // 2)
    assert _language_in(tmp_path / "cache") == {"how": "cached", "mapped": True, "answers": truth}
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert _language_in(blocker / "cache") == {"how": "memory", "mapped": False, "answers": truth}
