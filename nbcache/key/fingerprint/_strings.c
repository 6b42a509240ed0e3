/* The native encoder of a run of strings (nbcache.key.fingerprint.strings).
 *
 * encode_strings(obj) -> bytes | None
 * encode_chunk(obj, start, limit) -> (bytes, next) | None
 *
 * obj is a list, a tuple, or a C-contiguous 1-d buffer of format "O" (a numpy object array: its
 * buffer holds the PyObject pointers). If every element is exactly a str, encode_strings returns
 * one bytes object: for each string in order, its UTF-8 byte length as 8 bytes little-endian, then
 * those bytes. Lone surrogates are encoded as Python's "surrogatepass" error handler encodes them
 * (three bytes, like any other code point of the BMP), so the result equals, byte for byte, the
 * pure-Python fallback in strings.py. As soon as an element is not exactly a str (a subclass may
 * carry state), the result is None.
 *
 * encode_chunk is the same encoding a piece at a time, from element `start` to the one that brings
 * the piece to `limit` bytes: hashed as they come, pieces of a few tens of kB stay in the CPU's
 * cache and in memory the allocator reuses, where one output the size of the column would cost a
 * page fault every 4 kB (on the machines measured, as much as the encoding itself).
 *
 * Each call holds the GIL and calls back into nothing, so the sequence cannot change while it
 * reads it; it checks, sizes and writes each element in one pass. PyUnicode_AsUTF8AndSize is never called: it would keep a UTF-8 copy inside every non-ASCII
 * string for as long as the string lives. ASCII strings are copied as they are stored; the other
 * kinds (UCS1, UCS2, UCS4) are encoded here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define LENGTH_SIZE 8

/* The strings of a column lie apart in memory: reading them is waiting for memory, unless the
 * header of the string 32 elements ahead is asked for before it is needed (measured here: 8 or 16
 * ahead a little slower, 64 the same, none about 15% slower). */
#define PREFETCH 32
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_OBJECT(p) __builtin_prefetch((const void *)(p), 0, 0)
#else
#define PREFETCH_OBJECT(p) ((void)(p))
#endif

#if PY_VERSION_HEX < 0x030C0000
/* Before 3.12 a string made through the legacy API may not be in its canonical form yet. */
#define READY(s) PyUnicode_READY(s)
#else
#define READY(s) 0
#endif

/* The UTF-8 size of a ready string that is not ASCII. */
static Py_ssize_t
utf8_size(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), size = n, i;
    const void *data = PyUnicode_DATA(s);

    switch (PyUnicode_KIND(s)) {
    case PyUnicode_1BYTE_KIND: {
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        for (i = 0; i < n; i++)
            size += p[i] >> 7;
        break;
    }
    case PyUnicode_2BYTE_KIND: {
        const Py_UCS2 *p = (const Py_UCS2 *)data;
        for (i = 0; i < n; i++)
            size += (p[i] >= 0x80) + (p[i] >= 0x800);
        break;
    }
    default: {
        const Py_UCS4 *p = (const Py_UCS4 *)data;
        for (i = 0; i < n; i++)
            size += (p[i] >= 0x80) + (p[i] >= 0x800) + (p[i] >= 0x10000);
        break;
    }
    }
    return size;
}

static inline char *
put_code_point(char *out, Py_UCS4 c)
{
    if (c < 0x80) {
        *out++ = (char)c;
    }
    else if (c < 0x800) {
        *out++ = (char)(0xC0 | (c >> 6));
        *out++ = (char)(0x80 | (c & 0x3F));
    }
    else if (c < 0x10000) { /* surrogates included: what "surrogatepass" writes */
        *out++ = (char)(0xE0 | (c >> 12));
        *out++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *out++ = (char)(0x80 | (c & 0x3F));
    }
    else {
        *out++ = (char)(0xF0 | (c >> 18));
        *out++ = (char)(0x80 | ((c >> 12) & 0x3F));
        *out++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *out++ = (char)(0x80 | (c & 0x3F));
    }
    return out;
}

/* Writes the UTF-8 bytes of a ready, non-ASCII string; returns the end of what it wrote. */
static char *
put_utf8(char *out, PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i;
    const void *data = PyUnicode_DATA(s);

    switch (PyUnicode_KIND(s)) {
    case PyUnicode_1BYTE_KIND: {
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        for (i = 0; i < n; i++)
            out = put_code_point(out, p[i]);
        break;
    }
    case PyUnicode_2BYTE_KIND: {
        const Py_UCS2 *p = (const Py_UCS2 *)data;
        for (i = 0; i < n; i++)
            out = put_code_point(out, p[i]);
        break;
    }
    default: {
        const Py_UCS4 *p = (const Py_UCS4 *)data;
        for (i = 0; i < n; i++)
            out = put_code_point(out, p[i]);
        break;
    }
    }
    return out;
}

/* Little-endian whatever the machine's order; one store where the machine's order is that. */
static inline void
put_length(char *out, uint64_t n)
{
#if PY_LITTLE_ENDIAN
    memcpy(out, &n, LENGTH_SIZE);
#else
    int i;
    for (i = 0; i < LENGTH_SIZE; i++)
        out[i] = (char)(n >> (8 * i));
#endif
}

/* Writes the frame of a ready string whose UTF-8 size is `size`; returns the end of what it wrote. */
static char *
put_frame(char *out, PyObject *s, Py_ssize_t size)
{
    put_length(out, (uint64_t)size);
    out += LENGTH_SIZE;
    if (PyUnicode_IS_ASCII(s)) {
        memcpy(out, PyUnicode_DATA(s), (size_t)size);
        return out + size;
    }
    return put_utf8(out, s);
}

/* The frames of items[start:] that fit in `limit` bytes (at least one element when start < n, a
 * larger one alone): (bytes, the index after the last element), or the whole encoding as bytes
 * when `whole`; None as soon as an element is not exactly a str; NULL with an exception set.
 *
 * One pass: each element is checked, sized and written while its object is in the CPU's cache. */
static PyObject *
encode(PyObject *const *items, Py_ssize_t n, Py_ssize_t start, Py_ssize_t limit, int whole)
{
    Py_ssize_t i, size, capacity, used = 0;
    PyObject *s, *result;
    char *buffer, *grown;

    if (start > n)
        start = n;
    capacity = whole ? 1 << 16 : limit;
    buffer = PyMem_Malloc((size_t)capacity);
    if (buffer == NULL)
        return PyErr_NoMemory();
    for (i = start; i < n; i++) {
        s = items[i];
        if (i + PREFETCH < n)
            PREFETCH_OBJECT(items[i + PREFETCH]);
        if (s == NULL || !PyUnicode_CheckExact(s)) {
            PyMem_Free(buffer);
            Py_RETURN_NONE;
        }
        if (READY(s) < 0)
            goto error;
        size = PyUnicode_IS_ASCII(s) ? PyUnicode_GET_LENGTH(s) : utf8_size(s);
        if (size > PY_SSIZE_T_MAX - LENGTH_SIZE - used) {
            PyErr_NoMemory();
            goto error;
        }
        if (used + LENGTH_SIZE + size > capacity) {
            if (!whole && i > start)
                break; /* the next chunk starts with it */
            /* the whole encoding grows by half; a chunk grows only for one large element */
            capacity = whole ? Py_MAX(used + LENGTH_SIZE + size, capacity + capacity / 2)
                             : LENGTH_SIZE + size;
            grown = PyMem_Realloc(buffer, (size_t)capacity);
            if (grown == NULL) {
                PyErr_NoMemory();
                goto error;
            }
            buffer = grown;
        }
        used = put_frame(buffer + used, s, size) - buffer;
    }
    result = PyBytes_FromStringAndSize(buffer, used);
    PyMem_Free(buffer);
    if (result == NULL || whole)
        return result;
    return Py_BuildValue("(Nn)", result, i);

error:
    PyMem_Free(buffer);
    return NULL;
}

static int
is_object_format(const char *format)
{
    return format != NULL && (strcmp(format, "O") == 0 || strcmp(format, "@O") == 0);
}

/* Hands the elements of obj to encode(), holding a buffer's export for as long as it reads it. */
static PyObject *
encode_elements(PyObject *obj, Py_ssize_t start, Py_ssize_t limit, int whole)
{
    Py_buffer view;
    PyObject *result;

    if (PyList_CheckExact(obj) || PyTuple_CheckExact(obj))
        return encode(PySequence_Fast_ITEMS(obj), PySequence_Fast_GET_SIZE(obj), start, limit, whole);
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "_strings takes a list, a tuple or a buffer of objects, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (PyObject_GetBuffer(obj, &view, PyBUF_RECORDS_RO) < 0)
        return NULL;
    if (view.ndim != 1 || view.itemsize != (Py_ssize_t)sizeof(PyObject *) ||
        !is_object_format(view.format) ||
        (view.shape[0] > 1 && view.strides[0] != view.itemsize)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "_strings takes a C-contiguous 1-d buffer of format 'O'");
        return NULL;
    }
    result = encode((PyObject *const *)view.buf, view.shape[0], start, limit, whole);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
encode_strings(PyObject *module, PyObject *obj)
{
    (void)module;
    return encode_elements(obj, 0, PY_SSIZE_T_MAX, 1);
}

static PyObject *
encode_chunk(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t start, limit;

    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encode_chunk() takes 3 arguments (obj, start, limit)");
        return NULL;
    }
    start = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    limit = PyNumber_AsSsize_t(args[2], PyExc_OverflowError);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    if (start < 0 || limit < 1) {
        PyErr_SetString(PyExc_ValueError, "encode_chunk() takes start >= 0 and limit >= 1");
        return NULL;
    }
    return encode_elements(args[0], start, limit, 0);
}

static PyMethodDef methods[] = {
    {"encode_strings", encode_strings, METH_O,
     "encode_strings(obj, /)\n--\n\n"
     "The run of strings in obj (a list, a tuple or a C-contiguous 1-d buffer of objects) as one\n"
     "bytes object: each string's UTF-8 length (8 bytes, little-endian), then its UTF-8 bytes\n"
     "(lone surrogates as 'surrogatepass' writes them). None when an element is not exactly a str."},
    {"encode_chunk", (PyCFunction)(void (*)(void))encode_chunk, METH_FASTCALL,
     "encode_chunk(obj, start, limit, /)\n--\n\n"
     "(chunk, next): the encoding of obj[start:next], next the first index at which the chunk\n"
     "holds at least limit bytes (or the end; at least one element when start < len(obj)).\n"
     "The chunks from start 0 on, joined, are encode_strings(obj). None when an element of\n"
     "obj[start:next] is not exactly a str."},
    {NULL, NULL, 0, NULL},
};

/* The module's __all__, like every module of nbcache's (tests/test_exports.py). */
static int
exec_module(PyObject *m)
{
    PyObject *all = Py_BuildValue("(ss)", "encode_chunk", "encode_strings");
    if (all == NULL)
        return -1;
    if (PyModule_AddObject(m, "__all__", all) < 0) {
        Py_DECREF(all);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, (void *)exec_module},
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_strings",
    "The native encoder of a run of strings (see nbcache.key.fingerprint.strings).",
    0,
    methods,
    slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__strings(void)
{
    return PyModuleDef_Init(&module);
}
