"""The whole rule set compiled into one matcher, so an article costs what its length costs.

Compile (once per rule set):
- every distinct word of every term becomes an *atom*; a dictionary maps each key an atom
  may appear under (surface, and stem per language) to its atoms; exact words (``=KNDR``)
  have their own dictionary, prefixes (``nordkorea*``) one keyed by their first three letters;
  regex terms go into one RE2 set;
- each rule gets *requirements*: groups of atoms of which at least one must occur for the
  rule to have a chance (one group per child of the rule's top-level ``all``).

Match (per article): tokenize each field, look each distinct word up once (a few dictionary
probes, whatever the number of rules; remembered per text language, since news vocabulary
repeats), collect the atoms found, count which rules have every requirement met, and only
for those locate the atoms' words and evaluate the tree on positions (phrases, ``near``,
``same_sentence``, field scope, ``none``; ``document.Doc``), score the hits and explain the
match (``explain``).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import compress
from typing import Any

from ..models import Article, Match
from . import morph
from .document import FIELD_NAMES, CTerm, Doc
from .explain import Hit, context_of, evidence
from .filters import passes
from .operators import Operator, of
from .parts import Interned, parts
from .tree import Node, Ref, Rule, Term, Word
from .weighing import evidence_places, salience_of, topic_of

_TITLE = 0
_object_new = object.__new__
_WORD_CACHE_LIMIT = 200_000  # words per text language; a full cache is replaced by an empty one


# A compiled node: (operator, children, within, scope as field indexes or None); a concept is
# (None, (its node,), its number, None), evaluated once per article and scope. A leaf (a term) is an int.
CNode = tuple[Operator | None, tuple[Any, ...], int, frozenset[int] | None]


class Engine:
    def __init__(self, rules: list[Rule], concepts: dict[str, Node]):
        self.rules = rules
        self.concepts = concepts
        self.index: dict[str, list[int]] = defaultdict(list)
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.prefix3: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.regexes: list[tuple[int, Any]] = []  # (atom, compiled re2)
        self.regex_set: Any = None
        self._atom_ids: dict[tuple[str, str, str | None], int] = {}
        self.terms: list[CTerm] = []
        self._term_ids: dict[tuple[str, str | None], int] = {}
        self._concept_nodes: dict[str, CNode] = {}
        self.need: dict[int, list[tuple[int, int]]] = defaultdict(list)  # atom -> (rule, group)
        self.need1: dict[int, list[int]] = defaultdict(list)  # the same for rules of one group
        self.groups: list[int] = []
        self.scopes = [frozenset(FIELD_NAMES.index(f) for f in r.fields) for r in rules]
        self.filtered = [bool(r.languages or r.feeds or r.skip_feeds or r.tags or r.max_age is not None)
                         for r in rules]
        self._words: dict[morph.Keys, dict[str, tuple[int, ...]]] = {}  # text language -> word -> atoms
        self.trees = [self._node(rule.tree, rule.path) for rule in rules]
        # a rule's ``about:`` words: located like every term, never a requirement (salience.passing)
        self.about = [self._node(r.about, r.path) if r.about is not None else None for r in rules]
        self.bars = [(r.alert_at, r.digest_at) for r in rules]  # each rule's alert_at and digest_at
        # The terms of a rule that is only "any of these terms" in every field, most rules: such
        # a rule fires when one of its terms has hits, and those are its hits (``flat_of``).
        # A term written twice in one rule is taken once: the same hits twice score and read the same.
        self.flat: list[tuple[int, ...] | None] = [
            tuple(dict.fromkeys(tree[1])) if (
                tree.__class__ is not int and tree[0] is not None and tree[0].flat and tree[3] is None
                and len(scope) == len(FIELD_NAMES) and all(c.__class__ is int for c in tree[1]))
            else None for tree, scope in zip(self.trees, self.scopes, strict=True)]
        self.flat_of: dict[int, list[int]] = defaultdict(list)  # term -> the flat rules that have it
        for i, (tree, flat) in enumerate(zip(self.trees, self.flat, strict=True)):
            if flat is not None:
                for t in flat:
                    self.flat_of[t].append(i)
                self.groups.append(1)
                continue
            groups = self._groups(tree)
            self.groups.append(len(groups))
            for g, atoms in enumerate(groups):
                for a in atoms:
                    if len(groups) == 1:
                        self.need1[a].append(i)
                    else:
                        self.need[a].append((i, g))
        self.flat_of = dict(self.flat_of)
        # atom -> the terms it starts: terms of one word; phrases and regexes
        self.word_terms: dict[int, list[int]] = defaultdict(list)
        self.other_terms: dict[int, list[int]] = defaultdict(list)
        for tid, ct in enumerate(self.terms):
            one_word = len(ct.atoms) == 1 and ct.term.regex is None
            (self.word_terms if one_word else self.other_terms)[ct.atoms[0]].append(tid)
        self.word_terms, self.other_terms = dict(self.word_terms), dict(self.other_terms)
        # a rule's context clause (its own ``all:`` beside its topic), compiled: what it hits is
        # the match's ``context``, not its ``terms`` (tree.Rule.context)
        self.context = [tree[1][r.context] if r.context >= 0 and tree.__class__ is not int else None
                        for r, tree in zip(rules, self.trees, strict=True)]
        interned: Interned = {}  # rules of one shape share their parts (parts.py)
        under: dict[int, frozenset[int]] = {}  # a node's terms, by its id: concepts' nodes are shared
        self.parts = [parts(tree, clause, interned, under)
                      for tree, clause in zip(self.trees, self.context, strict=True)]
        self.flat_atoms = frozenset(self.terms[t].atoms[0] for t in self.flat_of)  # atoms a flat rule may need
        # what a rule's matches take from it, and the other fields' defaults (a dict cloned whole, not grown)
        self.given = [{"rule_id": r.id, "rule_title": r.title, "channels": r.channels, "severity": r.severity,
                       "terms": (), "field": "", "snippet": "", "score": 0, "context": (), "salience": 1.0,
                       "tier": "alert", "features": ()} for r in rules]
        if self.regexes:
            import re2

            self.regex_set = re2.Set.SearchSet()
            for _atom, rx in self.regexes:
                self.regex_set.Add(rx.pattern)
            self.regex_set.Compile()
        self.index, self.exact, self.prefix3 = dict(self.index), dict(self.exact), dict(self.prefix3)
        self.need, self.need1 = dict(self.need), dict(self.need1)

    # --- compile ------------------------------------------------------------------------

    def _atom(self, kind: str, text: str, lang: str | None) -> int:
        key = (kind, text, lang if kind == "w" else None)
        found = self._atom_ids.get(key)
        if found is not None:
            return found
        atom = self._atom_ids[key] = len(self._atom_ids)
        if kind == "w":
            langs = (lang,) if lang else morph.DEFAULT_LANGUAGES
            for k in morph.term_keys(text, langs):
                self.index[k].append(atom)
        elif kind == "x":
            self.exact[morph.fold(text)].append(atom)
        elif kind == "p":
            p = morph.fold(text)
            self.prefix3[p[:3]].append((p, atom))
        else:
            import re2

            self.regexes.append((atom, re2.compile("(?i)" + text)))
        return atom

    def _word(self, w: Word, lang: str | None) -> int:
        return self._atom("p" if w.prefix else "x" if w.exact else "w", w.text, lang)

    def _term(self, t: Term) -> int:
        key = (t.text, t.lang)
        found = self._term_ids.get(key)
        if found is not None and self.terms[found].term.concept == t.concept:
            return found
        atoms = (self._atom("r", t.regex, None),) if t.regex is not None else tuple(
            self._word(w, t.lang) for w in t.words)
        self.terms.append(CTerm(t, atoms))
        self._term_ids[key] = len(self.terms) - 1
        return len(self.terms) - 1

    def _node(self, node: Node | Term | Ref, path: str) -> Any:
        if isinstance(node, Term):
            return self._term(node)
        if isinstance(node, Ref):
            # One node per concept, shared by the rules that use it: ``Doc.eval`` finds it
            # true or false once per article and scope.
            built = self._concept_nodes.get(node.name)
            if built is None:
                inner = self._node(self.concepts[node.name], node.path)
                built = self._concept_nodes[node.name] = (None, (inner,), len(self._concept_nodes), None)
            return built
        op = of(node.op, path, node.line)  # an unknown operator is an error, not another's behaviour
        scope = frozenset(FIELD_NAMES.index(f) for f in node.scope) if node.scope else None
        children = tuple(self._node(c, path) for c in node.children)
        if op.unwrap and len(children) == 1 and scope is None:
            only = children[0]
            if only.__class__ is int or only[0] is None or not only[0].negates:
                return only  # all of one thing is that thing (a rule of only 'any' is such an 'all')
        return (op, children, node.within, scope)

    def _groups(self, node: Any) -> list[set[int]]:
        """Atom sets, each of which must have an atom in the article for ``node`` to match."""
        if isinstance(node, int):
            return [{self.terms[node].atoms[0]}]
        op, children = node[0], node[1]
        if op is None:  # a concept: its node's
            return self._groups(children[0])
        return op.require([self._groups(c) for c in children])

    # --- match --------------------------------------------------------------------------

    def atoms_of(self, keys: morph.Keys, distinct: set[str]) -> dict[str, tuple[int, ...]]:
        """Word -> the atoms it is, for the words of ``distinct`` that are atoms. Every word
        is looked up once per text language and remembered, since news vocabulary repeats."""
        cache = self._words.get(keys)
        if cache is None:
            cache = self._words[keys] = {}
        ordered = list(distinct)
        got = list(map(cache.get, ordered))  # in C; None: a word not seen yet
        if None in got:
            if len(cache) + len(ordered) > _WORD_CACHE_LIMIT:
                # A new dict, not clear(): another thread may be reading the old one.
                cache = self._words[keys] = {}
                missing = ordered
            else:
                missing = [w for w, a in zip(ordered, got, strict=True) if a is None]
            self._learn(keys, cache, missing)
            got = list(map(cache.__getitem__, ordered))
        # the words that are atoms: an empty tuple is false, so ``compress`` leaves it out
        return dict(zip(compress(ordered, got), filter(None, got), strict=True))

    def _learn(self, keys: morph.Keys, cache: dict[str, tuple[int, ...]], missing: list[str]) -> None:
        index, exact, prefix3 = self.index, self.exact, self.prefix3
        ks_of = keys.of(missing)
        for w in missing:
            ks = ks_of[w]
            atoms: list[int] = []
            for k in ks:
                by_key = index.get(k)
                if by_key:
                    atoms += by_key
            surface = ks[0]
            by_form = exact.get(surface)
            if by_form:
                atoms += by_form
            if prefix3:
                pres = prefix3.get(surface[:3])
                if pres:
                    atoms += [atom for pre, atom in pres if surface.startswith(pre)]
            # Once each: a word's surface and stem often lead to the same atom ("Regierung",
            # "regier"), and a repeated atom would repeat every hit the explanation weighs.
            cache[w] = tuple(dict.fromkeys(atoms))

    def match(self, article: Article, feed: Any = None, now: float | None = None,
              salience: bool = True) -> list[Match]:
        doc = Doc(self, article)
        if not doc.present:
            return []
        met: dict[int, set[int]] = defaultdict(set)
        ready: set[int] = set()  # rules with every requirement met
        need, need1 = self.need, self.need1
        for atom in doc.present:
            one = need1.get(atom)
            if one:
                ready.update(one)
            for ri, group in need.get(atom, ()):
                met[ri].add(group)
        groups = self.groups
        ready.update(r for r, gs in met.items() if len(gs) == groups[r])
        if not ready and doc.present.isdisjoint(self.flat_atoms):
            return []
        doc.locate()
        hits_of, flat_of = doc.hits, self.flat_of
        reached: dict[int, int] = {}  # flat rule -> its one term with hits, -1 for several
        for t in hits_of:
            for r in flat_of.get(t, ()):
                reached[r] = -1 if r in reached else t
        out = []
        # explanations by hits (and proximity windows), or by the one term whose hits they are
        told: dict[Any, tuple[tuple[str, ...], str, str]] = {}
        rules, trees, scopes, filtered, flats, given, context = \
            self.rules, self.trees, self.scopes, self.filtered, self.flat, self.given, self.context
        scored, abouts, bars = doc.scored, self.about, self.bars
        for i in sorted(ready.union(reached)):
            rule = rules[i]
            if filtered[i] and not passes(rule, article, feed, now):
                continue
            core: list[Hit] = []
            hits: list[Hit] | None
            key: Any = None
            by = reached.get(i)
            if by is None:
                doc.core = core
                hits = doc.eval(trees[i], scopes[i])
                if not hits:
                    continue
            elif by >= 0:
                hits, key = hits_of[by], by  # read only, as every hit list here; one term: its explanation
            else:  # several terms with hits: theirs in the rule's order
                hits = []
                for term in flats[i] or ():
                    got = hits_of.get(term)
                    if got:
                        hits += got
            if len(hits) == 1:
                score = rule.title_weight if hits[0].field == _TITLE else 1
            else:
                score = sum(rule.title_weight if f == _TITLE else 1 for f, _s in {(h.field, h.start) for h in hits})
            if score < rule.min_hits:
                continue
            # Rules that share a concept or a term often fire on the same hits: one explanation.
            if key is None:
                key = (tuple(hits), tuple(core))
            why = told.get(key)
            if why is None:
                why = told[key] = evidence(hits, doc.fields, self.terms, article.language, core)
            # Match(...) sets each field through the frozen dataclass's guard: three times slower
            found = _object_new(Match)
            fields = found.__dict__
            fields.update(given[i])
            fields["terms"], fields["field"], fields["snippet"], fields["score"] = why[0], why[1], why[2], score
            clause = context[i]
            around: list[Hit] = []
            if clause is not None:  # few rules: evaluated again, its concepts remembered by the Doc
                mark = len(core)
                around = doc.eval(clause, scopes[i]) or []
                words = context_of(hits, around, self.terms, article.language)
                del core[mark:]
                if words:
                    fields["terms"], fields["context"] = tuple(n for n in why[0] if n not in words), words
            if salience:  # only for the rules that fired, from the topic's own hits (issue 17)
                if key.__class__ is int and clause is None:  # one term's hits: its salience, once an article
                    sal = scored.get(key)
                    if sal is None:
                        sal = scored[key] = salience_of(doc, hits, around, core, False, key)
                else:
                    sal = salience_of(doc, hits, around, core, clause is not None, -1, self.parts[i])
                if abouts[i] is not None:  # few rules: their evidence found again (salience.passing)
                    own = topic_of(hits, around, key if key.__class__ is int else -1)
                    sal = doc.about(sal, abouts[i], scopes[i],
                                    evidence_places(doc, own, 2 if core and len(own) > 1 else 1, self.parts[i]))
                value = fields["salience"] = sal.score
                fields["features"] = sal.features
                # salience.tier, inline: a call per match is a tenth of what salience costs
                alert_at, digest_at = bars[i]
                fields["tier"] = "alert" if value >= alert_at else "digest" if value >= digest_at else "store"
            out.append(found)
        return out
