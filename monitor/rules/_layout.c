/* Salience's layout of a text in one pass each, in C (issue 17: matching within 10 % of its
 * cost without salience). What salience.py does with Python's regexes and string methods, the
 * same answers exactly: tests/test_layout_native.py checks these functions against the Python
 * ones (salience.py keeps them, and uses them when this module is not built).
 *
 *   sentence_starts(text) -> list[int]
 *       salience.sentence_starts: where each sentence starts.
 *   line_facts(text, start, end) -> (quotes, asides, bullet, short)
 *       the line text[start:end]: its quotes (salience._QUOTES) and asides (_ASIDE) as
 *       (start, end) offsets of the text, whether it is bulleted (_BULLET.match) and whether it
 *       is short (salience._is_short).
 *   weigh(text, starts, offsets, lead_sentences, summary) -> (lead, seen, prose, quoted, aside, listed)
 *       Doc.weigh_term's loop over one field's evidence: the sentences that hold the offsets
 *       (``starts``: the field's sentence_starts), each counted once, in the lead or not, in
 *       prose, quoted, aside or on a list line.
 *   places(text, starts, offsets) -> [(sentence, quoted, aside, listed)]
 *       salience.Layout.spot of each offset.
 *   token_spans(spaced) -> bytes
 *       explain.Field.span of every token of a text on morph.tokenize's str path, from its
 *       ``Tokens.spaced``: each run of non-space there is one token, and each offset there is
 *       the text's plus two for every sentence end before it (a stand-in "ª", "º" or "¹" with a
 *       space either side, for one character). Native long long (start, end) pairs, in order.
 *   weigh_hits(hit_lists, spans, layouts) -> (in_title, lead, seen, prose, quoted, aside, listed) | None
 *       Doc.weigh_terms in one call: each hit's token offsets from ``spans`` (token_spans'
 *       bytes per field), weighed as ``weigh`` does, summary and body each with its layout.
 *   is_short(text, start, end) -> bool, bullet(text, start, end) -> bool
 *       each of those two of line_facts alone.
 *
 * Character classes are those of Python's re module on str patterns: \w is str.isalnum() or
 * "_", \s is str.isspace(), \d is str.isdecimal().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define IS_WORD(c) (Py_UNICODE_ISALNUM(c) || (c) == '_')
#define IS_SPACE(c) Py_UNICODE_ISSPACE(c)

#define SHORT_LINE 12  /* salience.SHORT_LINE: words of a line that is not short, less one */
#define QUOTE_MAX 600  /* the longest quote: salience._QUOTES' {1,600} */
#define ASIDE_MAX 400  /* salience._ASIDE's {1,400} */
#define LIST_RUN 3     /* salience.LIST_RUN: short lines in a row that make a list */

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t n;
} Text;

static int
text_of(PyObject *obj, Text *t)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "a str is needed, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyUnicode_READY(obj) < 0)
        return -1;
    t->kind = PyUnicode_KIND(obj);
    t->data = PyUnicode_DATA(obj);
    t->n = PyUnicode_GET_LENGTH(obj);
    return 0;
}

/* Each scan below is written once for a kind of string that is a constant where it is called
 * (``BY_KIND``), so the compiler makes one loop per kind with no test of the kind in it. */
#define INLINE static inline __attribute__((always_inline))
#define AT(i) PyUnicode_READ(kind, data, (i))
#define BY_KIND(fn, t, ...)                                                      \
    ((t)->kind == PyUnicode_1BYTE_KIND ? fn(PyUnicode_1BYTE_KIND, __VA_ARGS__)   \
     : (t)->kind == PyUnicode_2BYTE_KIND ? fn(PyUnicode_2BYTE_KIND, __VA_ARGS__) \
     : fn(PyUnicode_4BYTE_KIND, __VA_ARGS__))

INLINE int
is_closer(Py_UCS4 c)  /* what may stand between a sentence's end mark and the space after it */
{
    switch (c) {
    case '"': case 0x201D: case 0x00BB: case 0x201C: case 0x2019: case '\'': case ')': case ']':
        return 1;
    default:
        return 0;
    }
}

static int
append_int(PyObject *list, Py_ssize_t v)
{
    PyObject *o = PyLong_FromSsize_t(v);
    if (o == NULL)
        return -1;
    int r = PyList_Append(list, o);
    Py_DECREF(o);
    return r;
}

static int
append_span(PyObject *list, Py_ssize_t a, Py_ssize_t b)
{
    PyObject *x = PyLong_FromSsize_t(a), *y = PyLong_FromSsize_t(b), *o = NULL;
    if (x != NULL && y != NULL)
        o = PyTuple_Pack(2, x, y);
    Py_XDECREF(x);
    Py_XDECREF(y);
    if (o == NULL)
        return -1;
    int r = PyList_Append(list, o);
    Py_DECREF(o);
    return r;
}

/* The characters of one byte that may end a piece: a line end, an end mark */
static const unsigned char ENDS[256] = {['\n'] = 1, ['.'] = 1, ['!'] = 1, ['?'] = 1};

/* The characters of one byte that open a quote or an aside */
static const unsigned char OPENS[256] = {['"'] = 1, ['('] = 1, [0xAB] = 1, [0xBB] = 1};

/* The first index from ``i`` (before ``n``) of a character in ``table`` (one byte) or among
 * ``wide`` (0-terminated, above 255), or ``n``: sixteen bytes or eight characters at a time
 * where the machine has SSE2 (every x86-64), one at a time else and for the rest. */
#define WIDE_MAX 4
INLINE Py_ssize_t
next_of(const int kind, const void *data, Py_ssize_t i, Py_ssize_t n, const unsigned char *table,
        const char *narrow, const Py_UCS4 *wide)
{
#if defined(__SSE2__)
    if (kind == PyUnicode_1BYTE_KIND) {
        const unsigned char *d = data;
        __m128i want[8];
        int k = 0;
        for (; narrow[k]; k++)
            want[k] = _mm_set1_epi8(narrow[k]);
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(d + i)), hit = _mm_setzero_si128();
            for (int j = 0; j < k; j++)
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, want[j]));
            int bits = _mm_movemask_epi8(hit);
            if (bits)
                return i + __builtin_ctz((unsigned)bits);
        }
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *d = data;
        __m128i want[8 + WIDE_MAX];
        int k = 0;
        for (; narrow[k]; k++)
            want[k] = _mm_set1_epi16((short)(unsigned char)narrow[k]);
        for (int j = 0; wide[j]; j++)
            want[k++] = _mm_set1_epi16((short)wide[j]);
        for (; i + 8 <= n; i += 8) {
            __m128i v = _mm_loadu_si128((const __m128i *)(d + i)), hit = _mm_setzero_si128();
            for (int j = 0; j < k; j++)
                hit = _mm_or_si128(hit, _mm_cmpeq_epi16(v, want[j]));
            int bits = _mm_movemask_epi8(hit);
            if (bits)
                return i + __builtin_ctz((unsigned)bits) / 2;
        }
    }
#endif
    for (; i < n; i++) {
        Py_UCS4 c = AT(i);
        if (c < 256) {
            if (table[c])
                return i;
        }
        else {
            for (int j = 0; wide[j]; j++)
                if (c == wide[j])
                    return i;
        }
    }
    return n;
}

static const char ENDS_NARROW[] = "\n.!?";
static const Py_UCS4 ENDS_WIDE[] = {0x2026, 0};
static const char OPENS_NARROW[] = "\"(\xAB\xBB";
static const Py_UCS4 OPENS_WIDE[] = {0x201E, 0x201C, 0x2018, 0};

/* A sentence ends at an end mark (. ! ? …), the closers after it and the white space (not a
 * line end) after those, at least one character of it; or at a line end. Each piece between
 * two ends is a sentence when it holds a word character. */
INLINE int
starts_of(const int kind, const void *data, Py_ssize_t n, PyObject *out)
{
    Py_ssize_t begin = 0, i = 0;
    int word = 0;
    while (i < n) {
        Py_UCS4 c = AT(i);
        if ((c > '?' || c == ' ') && c != 0x2026) {  /* neither a line end nor an end mark: most characters */
            if (!word) {
                word = IS_WORD(c);
                i++;
                continue;
            }
            /* in a piece that holds a word: on to its next line end or end mark */
            i = next_of(kind, data, i + 1, n, ENDS, ENDS_NARROW, ENDS_WIDE);
            continue;
        }
        Py_ssize_t next = -1;  /* where the next piece begins, when a piece ends here */
        if (c == '\n') {
            next = i + 1;
        }
        else if (c == '.' || c == '!' || c == '?' || c == 0x2026) {
            Py_ssize_t j = i + 1;
            while (j < n && is_closer(AT(j)))
                j++;
            Py_ssize_t k = j;
            while (k < n) {
                Py_UCS4 d = AT(k);
                if (d == '\n' || !IS_SPACE(d))
                    break;
                k++;
            }
            if (k > j)
                next = k;
        }
        else if (!word) {
            word = IS_WORD(c);
        }
        if (next >= 0) {
            if (word && append_int(out, begin) < 0)
                return -1;
            begin = i = next;
            word = 0;
        }
        else {
            i++;
        }
    }
    if (word && append_int(out, begin) < 0)
        return -1;
    return 0;
}

static PyObject *
sentence_starts(PyObject *Py_UNUSED(self), PyObject *arg)
{
    Text t;
    if (text_of(arg, &t) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    if (BY_KIND(starts_of, &t, t.data, t.n, out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* salience._is_short: no end mark after the line's text, and at most SHORT_LINE words */
INLINE int
short_of(const int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t last = end - 1;
    while (last >= start && IS_SPACE(AT(last)))
        last--;
    if (last >= start) {
        Py_UCS4 c = AT(last);
        if (c == '.' || c == '!' || c == '?' || c == 0x2026 || c == ':')
            return 0;
    }
    int runs = 0, in_word = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        int w = IS_WORD(AT(i));
        if (w && !in_word && ++runs > SHORT_LINE)
            return 0;
        in_word = w;
    }
    return 1;
}

INLINE int
is_bullet_char(Py_UCS4 c)
{
    switch (c) {
    case '-': case 0x2013: case 0x2014: case 0x2022: case 0x00B7: case '*': case 0x25AA: case 0x25BA: case '+':
        return 1;
    default:
        return 0;
    }
}

/* salience._BULLET.match: white space, a bullet or one or two digits and "." or ")", then
 * white space */
INLINE int
bullet_of(const int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t i = start;
    while (i < end && IS_SPACE(AT(i)))
        i++;
    if (i >= end)
        return 0;
    Py_UCS4 c = AT(i);
    if (is_bullet_char(c)) {
        i++;
    }
    else if (Py_UNICODE_ISDECIMAL(c)) {
        i++;
        if (i < end && Py_UNICODE_ISDECIMAL(AT(i)))
            i++;
        if (i >= end || (AT(i) != '.' && AT(i) != ')'))
            return 0;
        i++;
    }
    else {
        return 0;
    }
    return i < end && IS_SPACE(AT(i));
}

/* The marks that close a quote opened by ``open`` (salience._QUOTES), which it may not hold,
 * nor a line end; 0 fills. The quotes: „ ... “ ” "   “ ... ”   « ... »   » ... «   " ... "
 * ‘ ... ’ (not followed by a word character: "‘Kursk’s" opens no quote). */
static int
closers_of(Py_UCS4 open, Py_UCS4 *x, Py_UCS4 *y, Py_UCS4 *z, Py_UCS4 *also)
{
    *x = *y = *z = 0;
    *also = 0;  /* a fourth mark the quote may not hold, that does not close it */
    switch (open) {
    case 0x201E: *x = 0x201C; *y = 0x201D; *z = '"'; return 1;
    case 0x201C: *x = 0x201D; *also = 0x201C; return 1;
    case 0x00AB: *x = 0x00BB; return 1;
    case 0x00BB: *x = 0x00AB; return 1;
    case '"': *x = '"'; return 1;
    case 0x2018: *x = 0x2019; return 1;
    default: return 0;
    }
}

/* Where the quote or aside whose opener stands at ``p`` ends (one past its closing mark), or -1
 * when none opens there: the longest run of characters it may hold (1 to QUOTE_MAX, ASIDE_MAX)
 * before ``end``, then a mark that closes it (salience._QUOTES, _ASIDE). */
INLINE Py_ssize_t
match_end(const int kind, const void *data, Py_ssize_t p, Py_ssize_t end)
{
    Py_UCS4 c = AT(p), x = ')', y = 0, z = 0, also = '(';
    int aside = c == '(';
    if (!aside)
        closers_of(c, &x, &y, &z, &also);
    Py_ssize_t q = p + 1, limit = p + 2 + (aside ? ASIDE_MAX : QUOTE_MAX);
    if (limit > end)
        limit = end;
    for (; q < limit; q++) {
        Py_UCS4 d = AT(q);
        if (d == x || d == '\n' || (y && (d == y || d == z)) || (also && d == also))
            break;
    }
    if (q - p - 1 < 1 || q - p - 1 > (aside ? ASIDE_MAX : QUOTE_MAX) || q >= end)
        return -1;
    Py_UCS4 d = AT(q);
    if (!(d == x || (y && (d == y || d == z))) || (c == 0x2018 && q + 1 < end && IS_WORD(AT(q + 1))))
        return -1;  /* not closed, or ‘...’ followed by a word character ("‘Kursk’s") */
    return q + 1;
}

/* Python's regex finditer over text[start:end] of salience._QUOTES and, apart, of _ASIDE, in one
 * pass: each pattern's matches from where its previous one ended. */
INLINE int
spans_of(const int kind, const void *data, Py_ssize_t start, Py_ssize_t end, PyObject *quotes,
         PyObject *asides)
{
    Py_ssize_t from[2] = {start, start};  /* quotes, asides */
    for (Py_ssize_t p = start; (p = next_of(kind, data, p, end, OPENS, OPENS_NARROW, OPENS_WIDE)) < end; p++) {
        int aside = AT(p) == '(';
        Py_ssize_t e = p < from[aside] ? -1 : match_end(kind, data, p, end);
        if (e >= 0) {
            if (append_span(aside ? asides : quotes, p, e) < 0)
                return -1;
            from[aside] = e;
        }
    }
    return 0;
}

/* The start of the line holding ``at`` (after the line end before it), and its end (the line
 * end, or the text's): str.find's search, which looks at many characters an instruction. */
static Py_ssize_t
line_start(PyObject *s, Py_ssize_t at)
{
    return at > 0 ? PyUnicode_FindChar(s, '\n', 0, at, -1) + 1 : 0;  /* -1 + 1: the text's start */
}

static Py_ssize_t
line_end(PyObject *s, Py_ssize_t n, Py_ssize_t at)
{
    Py_ssize_t got = at < n ? PyUnicode_FindChar(s, '\n', at, n, 1) : -1;
    return got < 0 ? n : got;
}

INLINE int
blank(const int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    for (Py_ssize_t i = start; i < end; i++)
        if (!IS_SPACE(AT(i)))
            return 0;
    return 1;
}

/* salience.Layout._near: the start of the nearest line before (step -1) or after (1) the line
 * at ``start`` that is not blank; -1 for none. */
INLINE Py_ssize_t
near_line(PyObject *s, const int kind, const void *data, Py_ssize_t n, Py_ssize_t start, int step)
{
    for (;;) {
        Py_ssize_t end;
        if (step < 0) {
            if (start == 0)
                return -1;
            end = start - 1;
            start = line_start(s, end);
        }
        else {
            end = line_end(s, n, start);
            if (end >= n)
                return -1;
            start = end + 1;
            end = line_end(s, n, start);
        }
        if (!blank(kind, data, start, end))
            return start;
    }
}

/* salience.Layout._list_line: the line at ``start`` is bulleted, or one of a run of LIST_RUN
 * or more short lines (blank lines between them do not count). */
INLINE int
list_line(PyObject *s, const int kind, const void *data, Py_ssize_t n, Py_ssize_t start, Py_ssize_t end)
{
    if (bullet_of(kind, data, start, end))
        return 1;
    if (!short_of(kind, data, start, end))
        return 0;
    int run = 1;
    for (int step = -1; step <= 1; step += 2) {
        Py_ssize_t at = start;
        while (run < LIST_RUN && (at = near_line(s, kind, data, n, at, step)) >= 0
               && short_of(kind, data, at, line_end(s, n, at)))
            run++;
    }
    return run >= LIST_RUN;
}

/* Whether ``at`` is inside a quote (bit 1) and inside an aside (bit 2) on the line from
 * ``start`` to ``end``: the matches found as line_facts finds them, up to ``at``. */
INLINE int
inside(const int kind, const void *data, Py_ssize_t start, Py_ssize_t end, Py_ssize_t at)
{
    Py_ssize_t from[2] = {start, start};  /* quotes, asides */
    int got = 0;
    for (Py_ssize_t p = start; got != 3 && (p = next_of(kind, data, p, at, OPENS, OPENS_NARROW, OPENS_WIDE)) < at; p++) {
        int aside = AT(p) == '(';
        if (p < from[aside] || (got & (1 << aside)))
            continue;
        Py_ssize_t e = match_end(kind, data, p, end);
        if (e >= 0) {
            if (at < e)
                got |= 1 << aside;  /* p < at < e: inside */
            else
                from[aside] = e;
        }
    }
    return got;
}

/* The first index of ``starts`` (a list of ints, ascending) greater than ``at``, or -1 on an
 * error. */
static Py_ssize_t
bisect_right(PyObject *starts, Py_ssize_t at)
{
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(starts);
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        Py_ssize_t v = PyLong_AsSsize_t(PyList_GET_ITEM(starts, mid));
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (at < v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* salience.Layout.spot of ``at``: the index of its sentence in ``starts`` (-1 on an error), and
 * whether it is in a quote, in an aside, and whether its sentence is on a list line (the line
 * where the sentence starts: the offset's, but for an offset before the first sentence). */
INLINE Py_ssize_t
spot_of(const int kind, const void *data, PyObject *s, Py_ssize_t n, PyObject *starts, Py_ssize_t at,
        int *q, int *a, int *on_list)
{
    Py_ssize_t k = bisect_right(starts, at);
    if (k < 0)
        return -1;
    k = k > 0 ? k - 1 : 0;
    Py_ssize_t sk = PyLong_AsSsize_t(PyList_GET_ITEM(starts, k));
    if (sk == -1 && PyErr_Occurred())
        return -1;
    if (sk < 0 || sk > n || at < 0 || at > n) {
        PyErr_SetString(PyExc_ValueError, "an offset or a sentence start outside the text");
        return -1;
    }
    Py_ssize_t ls = line_start(s, at), le = line_end(s, n, at);
    Py_ssize_t ks = sk >= ls && sk <= at ? ls : line_start(s, sk);  /* the sentence's own line */
    *on_list = list_line(s, kind, data, n, ks, ks == ls ? le : line_end(s, n, ks));
    int flags = inside(kind, data, ls, le, at);
    *q = flags & 1;
    *a = (flags & 2) >> 1;
    return k;
}

/* One offset of a field's evidence weighed: its sentence, unless ``seen`` has it (a bitmap of
 * the field's sentences), counted in ``counts`` with the offset's flags. */
INLINE int
weigh_one(const int kind, const void *data, PyObject *s, Py_ssize_t n, PyObject *starts, Py_ssize_t at,
          Py_ssize_t lead_sentences, int summary, unsigned char *seen, Py_ssize_t counts[6])
{
    /* seen already: the sentence's index alone, without the line's tests */
    Py_ssize_t k = bisect_right(starts, at);
    if (k < 0)
        return -1;
    k = k > 0 ? k - 1 : 0;
    if (seen[k / 8] & (1 << (k % 8)))
        return 0;
    seen[k / 8] |= (unsigned char)(1 << (k % 8));
    int q, a, on_list;
    if (spot_of(kind, data, s, n, starts, at, &q, &a, &on_list) < 0)
        return -1;
    counts[1]++;  /* seen */
    if (summary || (k < lead_sentences && !on_list))
        counts[0] = 1;  /* lead */
    counts[5] += on_list;
    counts[3] += q;
    counts[4] += a;
    if (!(on_list || q || a))
        counts[2]++;  /* prose */
    return 0;
}

/* salience's weighing of one field's evidence (Doc.weigh_term's loop): each offset's sentence,
 * counted once with the flags of its first offset there. */
INLINE int
weigh_of(const int kind, const void *data, PyObject *s, Py_ssize_t n, PyObject *starts, PyObject *offsets,
         Py_ssize_t lead_sentences, int summary, Py_ssize_t counts[6])
{
    Py_ssize_t m = PyList_GET_SIZE(offsets), ns = PyList_GET_SIZE(starts);
    unsigned char *seen = PyMem_Calloc((size_t)ns / 8 + 1, 1);  /* the sentences counted */
    if (seen == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int err = -1;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t at = PyLong_AsSsize_t(PyList_GET_ITEM(offsets, i));
        if ((at == -1 && PyErr_Occurred()) || weigh_one(kind, data, s, n, starts, at, lead_sentences, summary,
                                                        seen, counts) < 0)
            goto done;
    }
    err = 0;
done:
    PyMem_Free(seen);
    return err;
}

INLINE int
places_of(const int kind, const void *data, PyObject *s, Py_ssize_t n, PyObject *starts, PyObject *offsets,
          PyObject *out)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(offsets); i++) {
        Py_ssize_t at = PyLong_AsSsize_t(PyList_GET_ITEM(offsets, i));
        if (at == -1 && PyErr_Occurred())
            return -1;
        int q, a, on_list;
        Py_ssize_t k = spot_of(kind, data, s, n, starts, at, &q, &a, &on_list);
        if (k < 0)
            return -1;
        PyObject *at_k = PyLong_FromSsize_t(k), *one = NULL;
        if (at_k != NULL)
            one = PyTuple_Pack(4, at_k, q ? Py_True : Py_False, a ? Py_True : Py_False, on_list ? Py_True : Py_False);
        Py_XDECREF(at_k);
        if (one == NULL)
            return -1;
        int r = PyList_Append(out, one);
        Py_DECREF(one);
        if (r < 0)
            return -1;
    }
    return 0;
}

static PyObject *
places(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    Text t;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "places(text, starts, offsets)");
        return NULL;
    }
    if (text_of(args[0], &t) < 0)
        return NULL;
    if (!PyList_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "starts and offsets must be lists of ints");
        return NULL;
    }
    if (PyList_GET_SIZE(args[1]) == 0) {
        PyErr_SetString(PyExc_ValueError, "a text without sentences has no places");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    if (BY_KIND(places_of, &t, t.data, args[0], t.n, args[1], args[2], out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *
weigh(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "weigh(text, starts, offsets, lead_sentences, summary)");
        return NULL;
    }
    Text t;
    if (text_of(args[0], &t) < 0)
        return NULL;
    if (!PyList_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "starts and offsets must be lists of ints");
        return NULL;
    }
    if (PyList_GET_SIZE(args[1]) == 0)
        return Py_BuildValue("(Onnnnn)", Py_False, (Py_ssize_t)0, (Py_ssize_t)0, (Py_ssize_t)0,
                             (Py_ssize_t)0, (Py_ssize_t)0);
    Py_ssize_t lead = PyLong_AsSsize_t(args[3]);
    if (lead == -1 && PyErr_Occurred())
        return NULL;
    int summary = PyObject_IsTrue(args[4]);
    if (summary < 0)
        return NULL;
    Py_ssize_t counts[6] = {0, 0, 0, 0, 0, 0};  /* lead, seen, prose, quoted, aside, listed */
    if (BY_KIND(weigh_of, &t, t.data, args[0], t.n, args[1], args[2], lead, summary, counts) < 0)
        return NULL;
    PyObject *out = PyTuple_New(6);
    if (out == NULL)
        return NULL;
    PyTuple_SET_ITEM(out, 0, Py_NewRef(counts[0] ? Py_True : Py_False));
    for (int j = 1; j < 6; j++) {
        PyObject *v = PyLong_FromSsize_t(counts[j]);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, j, v);
    }
    return out;
}

/* (text, start, end) of a call with three arguments, start and end held within the text as
 * a regex's pos and endpos are */
static int
line_args(PyObject *const *args, Py_ssize_t nargs, Text *t, Py_ssize_t *start, Py_ssize_t *end)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "three arguments are needed (text, start, end), not %zd", nargs);
        return -1;
    }
    if (text_of(args[0], t) < 0)
        return -1;
    *start = PyLong_AsSsize_t(args[1]);
    if (*start == -1 && PyErr_Occurred())
        return -1;
    *end = PyLong_AsSsize_t(args[2]);
    if (*end == -1 && PyErr_Occurred())
        return -1;
    if (*start < 0)
        *start = 0;
    if (*end > t->n)
        *end = t->n;
    if (*end < *start)
        *end = *start;
    return 0;
}

static PyObject *
line_facts(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    Text t;
    Py_ssize_t start, end;
    if (line_args(args, nargs, &t, &start, &end) < 0)
        return NULL;
    PyObject *quotes = PyList_New(0), *asides = PyList_New(0);
    if (quotes == NULL || asides == NULL || BY_KIND(spans_of, &t, t.data, start, end, quotes, asides) < 0) {
        Py_XDECREF(quotes);
        Py_XDECREF(asides);
        return NULL;
    }
    PyObject *bullet = BY_KIND(bullet_of, &t, t.data, start, end) ? Py_True : Py_False;
    PyObject *isshort = BY_KIND(short_of, &t, t.data, start, end) ? Py_True : Py_False;
    PyObject *out = PyTuple_Pack(4, quotes, asides, bullet, isshort);
    Py_DECREF(quotes);
    Py_DECREF(asides);
    return out;
}

static PyObject *
is_short(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    Text t;
    Py_ssize_t start, end;
    if (line_args(args, nargs, &t, &start, &end) < 0)
        return NULL;
    return PyBool_FromLong(BY_KIND(short_of, &t, t.data, start, end));
}

static PyObject *
bullet(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    Text t;
    Py_ssize_t start, end;
    if (line_args(args, nargs, &t, &start, &end) < 0)
        return NULL;
    return PyBool_FromLong(BY_KIND(bullet_of, &t, t.data, start, end));
}

/* The sentence ends' stand-ins in Tokens.spaced (morph.STAND_INS) */
INLINE int
is_stand_in(Py_UCS4 c)
{
    return c == 0x00AA || c == 0x00BA || c == 0x00B9;
}

/* The runs of non-space in spaced[0:n]; with ``out``, each as its (start, end) in the text */
INLINE Py_ssize_t
runs_of(const int kind, const void *data, Py_ssize_t n, long long *out)
{
    Py_ssize_t runs = 0, stands = 0, i = 0;
    while (i < n) {
        while (i < n && IS_SPACE(AT(i)))
            i++;
        if (i >= n)
            break;
        Py_ssize_t start = i;
        while (i < n && !IS_SPACE(AT(i)))
            i++;
        if (out != NULL) {
            if (i - start == 1 && is_stand_in(AT(start))) {  /* the end mark, just before its stand-in */
                out[2 * runs] = start - 1 - 2 * stands;
                out[2 * runs + 1] = start - 2 * stands;
            }
            else {
                out[2 * runs] = start - 2 * stands;
                out[2 * runs + 1] = i - 2 * stands;
            }
        }
        if (i - start == 1 && is_stand_in(AT(start)))
            stands++;
        runs++;
    }
    return runs;
}

static PyObject *
token_spans(PyObject *Py_UNUSED(self), PyObject *arg)
{
    Text t;
    if (text_of(arg, &t) < 0)
        return NULL;
    Py_ssize_t runs = BY_KIND(runs_of, &t, t.data, t.n, NULL);
    PyObject *out = PyBytes_FromStringAndSize(NULL, runs * 2 * (Py_ssize_t)sizeof(long long));
    if (out == NULL)
        return NULL;
    BY_KIND(runs_of, &t, t.data, t.n, (long long *)PyBytes_AS_STRING(out));
    return out;
}

/* One field of weigh_hits: its token offsets and, for summary and body, its layout */
typedef struct {
    const long long *spans;  /* NULL: none given */
    Py_ssize_t tokens;
    PyObject *text, *starts;  /* NULL: no sentences to weigh */
    Text t;
    Py_ssize_t lead;
    unsigned char *seen;
} Weighed;

static int
weighed_field(Weighed *w, PyObject *spans, PyObject *layout)
{
    if (spans != Py_None) {
        if (!PyBytes_Check(spans) || PyBytes_GET_SIZE(spans) % (2 * (Py_ssize_t)sizeof(long long))) {
            PyErr_SetString(PyExc_TypeError, "a field's spans must be token_spans' bytes, or None");
            return -1;
        }
        w->spans = (const long long *)PyBytes_AS_STRING(spans);
        w->tokens = PyBytes_GET_SIZE(spans) / (2 * (Py_ssize_t)sizeof(long long));
    }
    if (layout == NULL || layout == Py_None)
        return 0;
    if (!PyTuple_Check(layout) || PyTuple_GET_SIZE(layout) != 3 || !PyList_Check(PyTuple_GET_ITEM(layout, 1))) {
        PyErr_SetString(PyExc_TypeError, "a layout must be (text, starts, lead_sentences), or None");
        return -1;
    }
    if (text_of(PyTuple_GET_ITEM(layout, 0), &w->t) < 0)
        return -1;
    w->lead = PyLong_AsSsize_t(PyTuple_GET_ITEM(layout, 2));
    if (w->lead == -1 && PyErr_Occurred())
        return -1;
    if (PyList_GET_SIZE(PyTuple_GET_ITEM(layout, 1)) == 0)
        return 0;  /* no sentence: nothing of this field is weighed */
    w->text = PyTuple_GET_ITEM(layout, 0);
    w->starts = PyTuple_GET_ITEM(layout, 1);
    w->seen = PyMem_Calloc((size_t)PyList_GET_SIZE(w->starts) / 8 + 1, 1);
    if (w->seen == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Doc.weigh_terms in one call: every hit of the lists in ``hit_lists`` (a hit: (field, first
 * token, ...)), in order, weighed where ``spans`` (per field: token_spans' bytes) puts it in
 * ``layouts`` (per field: None for the title, (text, starts, lead_sentences) or None for summary
 * and body). (in_title, lead, seen, prose, quoted, aside, listed), or None for a hit in a field
 * without spans or before its first token: the caller then weighs them itself. */
static PyObject *
weigh_hits(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != 3 || !PyTuple_Check(args[2])
        || PyTuple_GET_SIZE(args[2]) != 3) {
        PyErr_SetString(PyExc_TypeError, "weigh_hits(hit_lists, spans: 3-tuple, layouts: 3-tuple)");
        return NULL;
    }
    PyObject *lists = PySequence_Fast(args[0], "hit_lists must be a sequence of lists of hits");
    if (lists == NULL)
        return NULL;
    Weighed w[3];
    memset(w, 0, sizeof w);
    PyObject *out = NULL;
    int in_title = 0, fallback = 0;
    Py_ssize_t counts[6] = {0, 0, 0, 0, 0, 0};  /* lead, seen, prose, quoted, aside, listed */
    for (int f = 0; f < 3; f++)
        if (weighed_field(&w[f], PyTuple_GET_ITEM(args[1], f), f ? PyTuple_GET_ITEM(args[2], f) : NULL) < 0)
            goto done;
    for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(lists) && !fallback; j++) {
        PyObject *hits = PySequence_Fast_GET_ITEM(lists, j);
        if (!PyList_Check(hits) && !PyTuple_Check(hits)) {
            PyErr_SetString(PyExc_TypeError, "hit_lists must hold lists of hits");
            goto done;
        }
        for (Py_ssize_t h = 0; h < PySequence_Fast_GET_SIZE(hits); h++) {
            PyObject *hit = PySequence_Fast_GET_ITEM(hits, h);
            if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) < 2) {
                PyErr_SetString(PyExc_TypeError, "a hit must be a tuple (field, first token, ...)");
                goto done;
            }
            Py_ssize_t f = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 0)), i = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 1));
            if ((f == -1 || i == -1) && PyErr_Occurred())
                goto done;
            if (f < 0 || f > 2) {
                PyErr_SetString(PyExc_ValueError, "a hit's field must be 0, 1 or 2");
                goto done;
            }
            Weighed *x = &w[f];
            if (x->spans == NULL || i < 0) {
                fallback = 1;
                break;
            }
            if (i >= x->tokens)
                continue;  /* past the last token: no offsets, not evidence */
            if (f == 0) {
                in_title = 1;
                continue;
            }
            if (x->starts != NULL
                && BY_KIND(weigh_one, &x->t, x->t.data, x->text, x->t.n, x->starts, (Py_ssize_t)x->spans[2 * i],
                           x->lead, f == 1, x->seen, counts) < 0)
                goto done;
        }
    }
    if (fallback)
        out = Py_NewRef(Py_None);
    else
        out = Py_BuildValue("(OOnnOOO)", in_title ? Py_True : Py_False, counts[0] ? Py_True : Py_False, counts[1],
                            counts[2], counts[3] ? Py_True : Py_False, counts[4] ? Py_True : Py_False,
                            counts[5] ? Py_True : Py_False);
done:
    for (int f = 0; f < 3; f++)
        PyMem_Free(w[f].seen);
    Py_DECREF(lists);
    return out;
}

static PyMethodDef methods[] = {
    {"sentence_starts", sentence_starts, METH_O, "Where each sentence of a text starts (salience.sentence_starts)."},
    {"line_facts", (PyCFunction)(void (*)(void))line_facts, METH_FASTCALL,
     "line_facts(text, start, end) -> (quotes, asides, bullet, short) of the line text[start:end]."},
    {"is_short", (PyCFunction)(void (*)(void))is_short, METH_FASTCALL, "is_short(text, start, end): salience._is_short(text[start:end])."},
    {"weigh", (PyCFunction)(void (*)(void))weigh, METH_FASTCALL,
     "weigh(text, starts, offsets, lead_sentences, summary) -> (lead, seen, prose, quoted, aside, listed)."},
    {"places", (PyCFunction)(void (*)(void))places, METH_FASTCALL,
     "places(text, starts, offsets) -> [(sentence, quoted, aside, listed)]: salience.Layout.spot of each offset."},
    {"weigh_hits", (PyCFunction)(void (*)(void))weigh_hits, METH_FASTCALL,
     "weigh_hits(hit_lists, spans, layouts) -> (in_title, lead, seen, prose, quoted, aside, listed), or None: Doc.weigh_terms."},
    {"token_spans", token_spans, METH_O,
     "token_spans(spaced) -> bytes: (start, end) in the text of every token of morph.Tokens.spaced, as native long long pairs."},
    {"bullet", (PyCFunction)(void (*)(void))bullet, METH_FASTCALL, "bullet(text, start, end): salience._BULLET.match(text[start:end]) is not None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "monitor.rules._layout",
    "Salience's layout of a text in C: the same answers as salience.py's Python.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__layout(void)
{
    return PyModule_Create(&module);
}
