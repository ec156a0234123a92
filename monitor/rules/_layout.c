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
 *   is_short(text, start, end) -> bool, bullet(text, start, end) -> bool
 *       each of those two of line_facts alone.
 *
 * Character classes are those of Python's re module on str patterns: \w is str.isalnum() or
 * "_", \s is str.isspace(), \d is str.isdecimal().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define IS_WORD(c) (Py_UNICODE_ISALNUM(c) || (c) == '_')
#define IS_SPACE(c) Py_UNICODE_ISSPACE(c)

#define SHORT_LINE 12  /* salience.SHORT_LINE: words of a line that is not short, less one */
#define QUOTE_MAX 600  /* the longest quote: salience._QUOTES' {1,600} */
#define ASIDE_MAX 400  /* salience._ASIDE's {1,400} */

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

#define AT(t, i) PyUnicode_READ((t)->kind, (t)->data, (i))

static int
is_mark(Py_UCS4 c)
{
    return c == '.' || c == '!' || c == '?' || c == 0x2026;  /* … */
}

static int
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
    PyObject *o = Py_BuildValue("(nn)", a, b);
    if (o == NULL)
        return -1;
    int r = PyList_Append(list, o);
    Py_DECREF(o);
    return r;
}

/* A sentence ends at an end mark, the closers after it and the white space (not a line end)
 * after those, at least one character of it; or at a line end. Each piece between two ends is
 * a sentence when it holds a word character. */
static PyObject *
sentence_starts(PyObject *Py_UNUSED(self), PyObject *arg)
{
    Text t;
    if (text_of(arg, &t) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t n = t.n, begin = 0, i = 0;
    int word = 0;
    while (i < n) {
        Py_UCS4 c = AT(&t, i);
        Py_ssize_t next = -1;  /* where the next piece begins, when a piece ends here */
        if (c == '\n') {
            next = i + 1;
        }
        else if (is_mark(c)) {
            Py_ssize_t j = i + 1;
            while (j < n && is_closer(AT(&t, j)))
                j++;
            Py_ssize_t k = j;
            while (k < n) {
                Py_UCS4 d = AT(&t, k);
                if (d == '\n' || !IS_SPACE(d))
                    break;
                k++;
            }
            if (k > j)
                next = k;
        }
        else if (!word && IS_WORD(c)) {
            word = 1;
        }
        if (next >= 0) {
            if (word && append_int(out, begin) < 0) {
                Py_DECREF(out);
                return NULL;
            }
            begin = i = next;
            word = 0;
        }
        else {
            i++;
        }
    }
    if (word && append_int(out, begin) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static int
short_line(Text *t, Py_ssize_t start, Py_ssize_t end)
{
    /* salience._is_short: no end mark after the line's text, and at most SHORT_LINE words */
    Py_ssize_t last = end - 1;
    while (last >= start && IS_SPACE(AT(t, last)))
        last--;
    if (last >= start) {
        Py_UCS4 c = AT(t, last);
        if (c == '.' || c == '!' || c == '?' || c == 0x2026 || c == ':')
            return 0;
    }
    int runs = 0, in_word = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        int w = IS_WORD(AT(t, i));
        if (w && !in_word && ++runs > SHORT_LINE)
            return 0;
        in_word = w;
    }
    return 1;
}

static int
is_bullet_char(Py_UCS4 c)
{
    switch (c) {
    case '-': case 0x2013: case 0x2014: case 0x2022: case 0x00B7: case '*': case 0x25AA: case 0x25BA: case '+':
        return 1;
    default:
        return 0;
    }
}

static int
bulleted(Text *t, Py_ssize_t start, Py_ssize_t end)
{
    /* salience._BULLET.match: white space, a bullet or one or two digits and "." or ")", then
     * white space */
    Py_ssize_t i = start;
    while (i < end && IS_SPACE(AT(t, i)))
        i++;
    if (i >= end)
        return 0;
    Py_UCS4 c = AT(t, i);
    if (is_bullet_char(c)) {
        i++;
    }
    else if (Py_UNICODE_ISDECIMAL(c)) {
        i++;
        if (i < end && Py_UNICODE_ISDECIMAL(AT(t, i)))
            i++;
        if (i >= end || (AT(t, i) != '.' && AT(t, i) != ')'))
            return 0;
        i++;
    }
    else {
        return 0;
    }
    return i < end && IS_SPACE(AT(t, i));
}

/* Whether a quote opened by ``open`` may hold ``c`` (salience._QUOTES: each kind of quote's
 * own closing marks and a line end end it), and whether ``c`` closes it. */
static int
quote_holds(Py_UCS4 open, Py_UCS4 c)
{
    if (c == '\n')
        return 0;
    switch (open) {
    case 0x201E: return c != 0x201C && c != 0x201D && c != '"';  /* „ ... “ ” " */
    case 0x201C: return c != 0x201D && c != 0x201C;              /* “ ... ” */
    case 0x00AB: return c != 0x00BB;                             /* « ... » */
    case 0x00BB: return c != 0x00AB;                             /* » ... « */
    case '"':    return c != '"';
    case 0x2018: return c != 0x2019;                             /* ‘ ... ’ */
    default:     return 0;
    }
}

static int
quote_closes(Py_UCS4 open, Py_UCS4 c)
{
    switch (open) {
    case 0x201E: return c == 0x201C || c == 0x201D || c == '"';
    case 0x201C: return c == 0x201D;
    case 0x00AB: return c == 0x00BB;
    case 0x00BB: return c == 0x00AB;
    case '"':    return c == '"';
    case 0x2018: return c == 0x2019;
    default:     return 0;
    }
}

static int
is_opener(Py_UCS4 c)
{
    return c == 0x201E || c == 0x201C || c == 0x00AB || c == 0x00BB || c == '"' || c == 0x2018;
}

/* Python's regex finditer over text[start:end] of a pattern "OPEN [^EXCLUDED]{1,MAX} CLOSE":
 * at each place where an opener stands, the longest run of characters it may hold (at most
 * MAX), then a closing mark; a match ends the search there, else it goes on one character on. */
static int
find_quotes(Text *t, Py_ssize_t start, Py_ssize_t end, PyObject *out)
{
    Py_ssize_t p = start;
    while (p < end) {
        Py_UCS4 open = AT(t, p);
        if (is_opener(open)) {
            Py_ssize_t q = p + 1, limit = p + 1 + QUOTE_MAX + 1;
            if (limit > end)
                limit = end;
            while (q < limit && quote_holds(open, AT(t, q)))
                q++;
            Py_ssize_t run = q - (p + 1);
            if (run >= 1 && run <= QUOTE_MAX && q < end && quote_closes(open, AT(t, q))
                && !(open == 0x2018 && q + 1 < end && IS_WORD(AT(t, q + 1)))) {  /* ‘...’(?!\w) */
                if (append_span(out, p, q + 1) < 0)
                    return -1;
                p = q + 1;
                continue;
            }
        }
        p++;
    }
    return 0;
}

static int
find_asides(Text *t, Py_ssize_t start, Py_ssize_t end, PyObject *out)
{
    Py_ssize_t p = start;
    while (p < end) {
        if (AT(t, p) == '(') {
            Py_ssize_t q = p + 1, limit = p + 1 + ASIDE_MAX + 1;
            if (limit > end)
                limit = end;
            while (q < limit) {
                Py_UCS4 c = AT(t, q);
                if (c == '(' || c == ')' || c == '\n')
                    break;
                q++;
            }
            Py_ssize_t run = q - (p + 1);
            if (run >= 1 && run <= ASIDE_MAX && q < end && AT(t, q) == ')') {
                if (append_span(out, p, q + 1) < 0)
                    return -1;
                p = q + 1;
                continue;
            }
        }
        p++;
    }
    return 0;
}

static int
line_args(PyObject *args, Text *t, Py_ssize_t *start, Py_ssize_t *end)
{
    PyObject *text;
    if (!PyArg_ParseTuple(args, "Unn", &text, start, end))
        return -1;
    if (text_of(text, t) < 0)
        return -1;
    /* as a regex's pos and endpos: within the text */
    if (*start < 0)
        *start = 0;
    if (*end > t->n)
        *end = t->n;
    if (*end < *start)
        *end = *start;
    return 0;
}

static PyObject *
line_facts(PyObject *Py_UNUSED(self), PyObject *args)
{
    Text t;
    Py_ssize_t start, end;
    if (line_args(args, &t, &start, &end) < 0)
        return NULL;
    PyObject *quotes = PyList_New(0), *asides = PyList_New(0);
    if (quotes == NULL || asides == NULL || find_quotes(&t, start, end, quotes) < 0
        || find_asides(&t, start, end, asides) < 0) {
        Py_XDECREF(quotes);
        Py_XDECREF(asides);
        return NULL;
    }
    return Py_BuildValue("(NNOO)", quotes, asides, bulleted(&t, start, end) ? Py_True : Py_False,
                         short_line(&t, start, end) ? Py_True : Py_False);
}

static PyObject *
is_short(PyObject *Py_UNUSED(self), PyObject *args)
{
    Text t;
    Py_ssize_t start, end;
    if (line_args(args, &t, &start, &end) < 0)
        return NULL;
    return PyBool_FromLong(short_line(&t, start, end));
}

static PyObject *
bullet(PyObject *Py_UNUSED(self), PyObject *args)
{
    Text t;
    Py_ssize_t start, end;
    if (line_args(args, &t, &start, &end) < 0)
        return NULL;
    return PyBool_FromLong(bulleted(&t, start, end));
}

static PyMethodDef methods[] = {
    {"sentence_starts", sentence_starts, METH_O, "Where each sentence of a text starts (salience.sentence_starts)."},
    {"line_facts", line_facts, METH_VARARGS,
     "line_facts(text, start, end) -> (quotes, asides, bullet, short) of the line text[start:end]."},
    {"is_short", is_short, METH_VARARGS, "is_short(text, start, end): salience._is_short(text[start:end])."},
    {"bullet", bullet, METH_VARARGS, "bullet(text, start, end): salience._BULLET.match(text[start:end]) is not None."},
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
