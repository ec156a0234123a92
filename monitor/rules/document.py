"""One article as the matcher sees it: its fields tokenized, the rule atoms it contains and
where, each term's hits, and the evaluation of a rule's tree on those positions (each operator's
evaluation is declared in ``operators``).

``Engine.match`` (engine.py) makes a ``Doc``, asks it for the atoms present, has it ``locate``
them once some rule may fire, then ``eval``s each candidate rule's compiled tree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from itertools import chain, compress, count
from typing import TYPE_CHECKING, Any

from ..models import Article
from . import morph, salience
from .salience import Layout, Place, Salience, passing, weigh_counts
from .textfield import Field, Hit
from .tree import Term

if TYPE_CHECKING:
    from .engine import Engine

FIELD_NAMES = ("title", "summary", "body")
_ENDS = morph.END | morph.STAND_INS
_new = tuple.__new__  # Hit(...) without the Python-level __new__ of a NamedTuple


@dataclass(frozen=True)
class CTerm:
    term: Term
    atoms: tuple[int, ...]   # phrase: consecutive atoms; regex: one atom


class Doc:
    """One article, tokenized, with the atoms it contains and their positions."""

    def __init__(self, engine: Engine, article: Article):
        self.engine = engine
        texts = (article.title or "", article.summary or "", article.text or "")
        self.fields = [Field(name, text, morph.tokenize(text)) for name, text in zip(FIELD_NAMES, texts, strict=True)]
        self.atoms: dict[int, list[tuple[int, int]]] = {}  # atom -> (field, position)s, by ``locate``
        self.hits: dict[int, list[Hit]] = {}  # term -> its hits, by ``locate``
        self.rx_end: dict[tuple[int, int, int], int] = {}  # (regex atom, field, first token) -> end token
        self.core: list[Hit] = []  # hits of the proximity windows that made the current rule true
        self._told: dict[tuple[int, frozenset[int]], tuple[list[Hit] | None, list[Hit]]] = {}  # by concept
        self._layouts: dict[str, Layout] | None = None  # field name -> its salience layout, once a rule fired
        self._places: dict[int, tuple[tuple[Place, tuple[bool, bool]], ...]] = {}  # by ``places_of``
        self.scored: dict[Any, Salience] = {}  # salience by its evidence (engine.salience_of)
        self._weighing: tuple[tuple[bytes | None, ...], tuple[Any, ...]] | None = None  # by ``weigh_hits``
        self._about: dict[Any, set[Place]] = {}  # by ``about``: the sentences that use a rule's ``about:``
        self.total = 0  # the sentences of summary and body, counted with their layouts
        distinct: set[str] = set()
        for f in self.fields:
            distinct.update(f.words)
        distinct -= _ENDS
        self.found = engine.atoms_of(morph.keys_for(article.language), distinct)  # the words that are atoms
        self.present = set(chain.from_iterable(self.found.values()))  # the atoms in the article
        # (field, its UTF-8, the regexes found in it): RE2 works on UTF-8, and its Python
        # wrapper would encode a str again for every call
        self._fired: list[tuple[int, bytes, list[int]]] = []
        if engine.regex_set is not None:
            for fi, f in enumerate(self.fields):
                if f.text:
                    raw = f.text.encode()
                    fired = engine.regex_set.Match(raw)  # None for none
                    if fired:
                        self._fired.append((fi, raw, sorted(set(fired))))
                        self.present.update(engine.regexes[n][0] for n in fired)

    def locate(self) -> None:
        """Where each atom is: needed only once some rule has all of its requirements."""
        positions: dict[int, list[tuple[int, int]]] = defaultdict(list)
        found = self.found
        for fi, f in enumerate(self.fields):
            words, where = f.words, f.where
            # the few words that are atoms; compress and map run in C
            for i in compress(count(), map(found.__contains__, words)):
                where.setdefault(words[i], []).append(i)
            for w, places in where.items():
                for a in found[w]:
                    positions[a] += [(fi, i) for i in places]
        for located in positions.values():  # in text order when several words are one atom
            located.sort()
        for fi, raw, fired in self._fired:  # a regex's words: the tokens its matches start in
            f, regexes = self.fields[fi], self.engine.regexes
            found_at = [(regexes[n][0], m.span()) for n in fired for m in regexes[n][1].finditer(raw)]
            if len(raw) != len(f.text):  # not ASCII: from UTF-8 offsets to the text's
                found_at = [(a, (len(raw[:s].decode()), len(raw[:e].decode()))) for a, (s, e) in found_at]
            # tokens starting at or before a match's start, and before its end
            counts = iter(f.starts_before([k for _a, (s, e) in found_at for k in (s + 1, e)]))
            for atom, _span in found_at:
                first = max(0, next(counts) - 1)
                positions[atom].append((fi, first))
                # the hit covers every token the match reaches into, so the snippet marks it whole
                self.rx_end[(atom, fi, first)] = max(first + 1, next(counts))
        self.atoms = dict(positions)
        # The hits of every term that starts with an atom found: few, and found once for
        # every rule that has the term (a term is absent from ``hits`` when it has none).
        engine, hits = self.engine, self.hits
        words_of, others_of = engine.word_terms, engine.other_terms
        for atom, located in self.atoms.items():
            for tid in words_of.get(atom, ()):  # one word: a hit where the word is
                hits[tid] = [_new(Hit, (f, i, i + 1, tid)) for f, i in located]
            for tid in others_of.get(atom, ()):
                got = self._term_hits(engine.terms[tid], tid)
                if got:
                    hits[tid] = got

    def _term_hits(self, ct: CTerm, tid: int) -> list[Hit]:
        """A phrase's or regex's hits (``ct.atoms[0]`` is in ``atoms``)."""
        first = self.atoms[ct.atoms[0]]
        if len(ct.atoms) == 1:
            a, ends = ct.atoms[0], self.rx_end
            return [_new(Hit, (f, i, ends.get((a, f, i), i + 1), tid)) for f, i in first]
        atoms = self.atoms
        if not all(a in atoms for a in ct.atoms[1:]):
            return []  # a word of the phrase is not in the article
        rest = [set(atoms[a]) for a in ct.atoms[1:]]
        return [_new(Hit, (f, i, i + len(ct.atoms), tid)) for f, i in first
                if all((f, i + k) in s for k, s in enumerate(rest, 1))]

    # --- salience (salience.py): made once per article, for every rule that fired on it -----

    @property
    def layouts(self) -> dict[str, Layout]:
        """The layouts salience counts sentences in (summary, body); the title's is added by
        ``layout`` when a rule's evidence is there."""
        if self._layouts is None:
            self._layouts = {}
            for f in self.fields[1:]:
                self.layout(f)
            self.total = sum(len(lay) for lay in self._layouts.values()) or 1
        return self._layouts

    def layout(self, f: Field) -> Layout | None:
        """``f``'s layout (None for an empty field), made once."""
        lays = self.layouts if self._layouts is None else self._layouts
        got = lays.get(f.name)
        if got is None and f.text:
            got = lays[f.name] = Layout(f.text)
        return got

    def places_of(self, term: int) -> tuple[tuple[Place, tuple[bool, bool]], ...]:
        """Each hit of ``term``: its sentence and whether it is in a quote, in an aside; once
        per article, since the rules that fire share terms."""
        got = self._places.get(term)
        if got is None and salience.native is not None:  # each field's offsets to C at once
            got = self._places_native(term)
            if got is not None:
                self._places[term] = got
        if got is None:
            out = []
            fields, lays = self.fields, self.layouts  # the title's, when asked for, by ``layout``
            for h in self.hits.get(term, ()):
                f = fields[h.field]
                lay = lays.get(f.name) if h.field else self.layout(f)
                at = f.span(h.start)
                if at is not None and lay is not None:
                    k, quoted, aside, _listed = lay.spot(at[0])
                    out.append(((f.name, k), (quoted, aside)))
            got = self._places[term] = tuple(out)
        return got

    def _places_native(self, term: int) -> tuple[tuple[Place, tuple[bool, bool]], ...] | None:
        """``places_of`` by ``salience.native.places``, in the order of the term's hits; each
        place's list test is remembered by its layout, as ``Layout.spot`` does. None for a hit
        in a field without sentences (``places_of`` then asks ``Layout.spot``)."""
        fields, lays = self.fields, self.layouts
        order: list[tuple[int, int]] = []  # (field, index among that field's offsets) per hit kept
        offsets: dict[int, list[int]] = {}
        for h in self.hits.get(term, ()):
            fi = h[0]
            f = fields[fi]
            lay = lays.get(f.name) if fi else self.layout(f)
            at = f.span(h[1])
            if at is not None and lay is not None:
                if not lay.starts:  # no sentence (no word): Layout.spot's own answer
                    return None
                got = offsets.setdefault(fi, [])
                order.append((fi, len(got)))
                got.append(at[0])
        found, native = {}, salience.native
        assert native is not None
        for fi, where in offsets.items():
            lay = lays[fields[fi].name]
            found[fi] = placed = native.places(lay.text, lay.starts, where)
            for k, _q, _a, listed in placed:
                lay.remember_listed(k, listed)
        out = []
        for fi, i in order:
            k, q, a, _listed = found[fi][i]
            out.append(((FIELD_NAMES[fi], k), (q, a)))
        return tuple(out)

    def weigh_terms(self, terms: Collection[int], together: bool | None) -> Salience | None:
        """``salience.score`` of the sentences that hold a hit of ``terms`` (``engine.evidence_places``
        where the rule's parts need not meet), each with the flags of its first hit in the order
        of ``terms`` and their hits, by the C part (``weigh_hits``); None without it."""
        hits = self.hits
        got = self.weigh_hits([hits[t] for t in terms if t in hits], together)
        return got if got is not None or salience.native is None else self._weigh_offsets(terms, together)

    def _weigh_offsets(self, terms: Collection[int], together: bool | None) -> Salience:
        """``weigh_terms`` where a field has no token offsets from the C part: each hit's found
        here (``Field.span``), then each field's weighed in C (``native.weigh``)."""
        native, hits = salience.native, self.hits
        assert native is not None
        lays, fields = self.layouts, self.fields
        in_title = lead = False
        seen = prose = quoted = aside = listed = 0
        offsets: tuple[list[int], list[int], list[int]] = ([], [], [])  # summary 1, body 2
        for t in terms:
            for h in hits.get(t, ()):
                fi = h[0]
                if fi:
                    at = fields[fi].span(h[1])
                    if at is not None:
                        offsets[fi].append(at[0])
                elif not in_title and fields[0].span(h[1]) is not None:
                    in_title = True
        for fi in (1, 2):
            where = offsets[fi]
            lay = lays.get(FIELD_NAMES[fi]) if where else None
            if lay is not None and lay.starts:
                in_lead, n, p, q, a, li = native.weigh(lay.text, lay.starts, where, lay.lead_sentences, fi == 1)
                lead = lead or in_lead
                seen += n
                prose += p
                quoted += q
                aside += a
                listed += li
        return weigh_counts(in_title, lead, seen, prose, quoted > 0, aside > 0, listed > 0, self.total, together)

    def weigh_hits(self, lists: Collection[list[Hit]], together: bool | None) -> Salience | None:
        """``weigh_terms`` of the hit lists of its terms, in one call to the C part: each field's
        token offsets and layout are handed over once an article. None without the C part, or
        for a hit in a field that has no token offsets from it."""
        native = salience.native
        if native is None:
            return None
        weighing = self._weighing
        if weighing is None:
            lays = self.layouts
            weighing = self._weighing = (tuple(f.token_spans() for f in self.fields), (None, *(
                (lay.text, lay.starts, lay.lead_sentences) if (lay := lays.get(name)) else None
                for name in FIELD_NAMES[1:])))
        got = native.weigh_hits(lists, *weighing)
        return None if got is None else weigh_counts(*got, self.total, together)

    def weigh_term(self, term: int) -> Salience:
        """``salience.weigh`` of ``places_of(term)`` (most rules that fire are one term's hits,
        bench/matching.py): in one call to C (``weigh_hits``, else ``_weigh_offsets``); without
        the C part, in one pass over the term's hits with nothing built between: a title hit
        needs no layout, only its offsets; a sentence's list test comes with its place."""
        hits = self.hits.get(term)
        got = self.weigh_hits((hits,) if hits else (), None)  # in one call to C
        if got is None and salience.native is not None:
            got = self._weigh_offsets((term,), None)
        if got is not None:
            return got
        lays = self.layouts
        fields = self.fields
        in_title = lead = False
        seen = prose = quoted = aside = listed = 0
        done: set[tuple[int, int]] = set()
        for h in self.hits.get(term, ()):
            fi = h[0]
            f = fields[fi]
            if not fi:  # the title: whether a hit there has offsets (its layout would, a title with a hit has text)
                if not in_title and f.span(h[1]) is not None:
                    in_title = True
                continue
            lay = lays.get(f.name)
            if lay is None or not lay.starts:
                continue
            at = f.span(h[1])
            if at is None:
                continue
            k, q, a, on_list = lay.spot(at[0])
            if (fi, k) in done:
                continue
            done.add((fi, k))
            seen += 1
            if fi == 1 or (k < lay.lead_sentences and not on_list):
                lead = True
            listed += on_list
            quoted += q
            aside += a
            if not (on_list or q or a):
                prose += 1
        return weigh_counts(in_title, lead, seen, prose, quoted > 0, aside > 0, listed > 0, self.total, None)

    def about(self, sal: Salience, about: Any, scope: frozenset[int], evidence: Collection[Place]) -> Salience:
        """``salience.passing`` of a rule whose ``about:`` is the compiled ``about``: the sentences
        of summary and body outside the rule's ``evidence`` (as ``engine.evidence_places`` finds
        it for its salience) that use those words (where they are is found once per article and
        scope, for every rule that has them)."""
        key = (id(about), scope)
        used = self._about.get(key)
        if used is None:
            mark = len(self.core)  # the words' own proximity windows are not the rule's
            used = self._about[key] = {self.sentence_of(h) for h in self.eval(about, scope) or () if h.field}
            del self.core[mark:]
        return passing(sal, len(used.difference(evidence)))

    def sentence_of(self, hit: Hit) -> Place:
        """The sentence holding ``hit`` (the first, when its offsets are unknown)."""
        f = self.fields[hit.field]
        lay = self.layout(f)
        return (f.name, lay.at((f.span(hit.start) or (0, 0))[0]) if lay is not None else -1)

    def eval(self, node: Any, scope: frozenset[int]) -> list[Hit] | None:
        """The hits that make ``node`` true within ``scope``, or None when it is false.
        Callers only read the lists, so a term's own list is handed out, not a copy."""
        if node.__class__ is int:
            got = self.hits.get(node)
            if got and len(scope) < len(FIELD_NAMES):
                got = [h for h in got if h.field in scope]
            return got or None
        op, children, within, own = node
        sc = own if own is not None else scope
        if op is None:  # a concept: the same hits, and proximity windows, for every rule
            key = (within, sc)
            told = self._told.get(key)
            if told is None:
                mark = len(self.core)
                told = self._told[key] = (self.eval(children[0], sc), self.core[mark:])
            else:
                self.core += told[1]
            return told[0]
        return op.evaluate(self, children, within, sc)  # operators.py
