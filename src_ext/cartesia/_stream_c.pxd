from cpython.ref cimport PyObject

# Declarations of the compiled streaming core (cdef class layouts and C-level helpers).

cdef extern from "b64simd.h":
    Py_ssize_t cartesia_b64_decode(const char *src, size_t srclen, unsigned char *dst, size_t *err_pos) nogil
    size_t cartesia_b64_decoded_len(const char *src, size_t srclen) nogil
    const char *cartesia_b64_backend()
    int cartesia_b64_set_backend(const char *name)


cdef struct Scan:
    # Resumable scan of one JSON object; positions are relative to the object's '{'.
    Py_ssize_t depth
    int in_str
    int kind          # string being scanned: 0 other, 1 top-level key, 2 top-level "data" value
    int expect_key
    int key_data
    int armed
    Py_ssize_t sstart  # opening quote of the current string
    Py_ssize_t dstart  # opening quote of the "data" value, or -1
    Py_ssize_t dend    # index after its closing quote


cdef struct Bytes:
    unsigned char *p
    Py_ssize_t len
    Py_ssize_t cap


cdef class Message:
    cdef public object type
    cdef public object audio
    cdef public object samples
    cdef public object sampling_rate
    cdef public object done
    cdef public object context_id
    cdef public object fields


cdef class _Samples:
    cdef object _store
    cdef char *_buf
    cdef Py_ssize_t _count
    cdef Py_ssize_t _nbytes


cdef class AudioBuffer:
    cdef PyObject *_store
    cdef bint _shared
    cdef float *_data
    cdef Py_ssize_t _n
    cdef Py_ssize_t _cap
    cdef int _enc
    cdef int _size
    cdef unsigned char _tail[4]
    cdef int _tlen
    cdef object _encname
    cdef object __weakref__

    cdef int _grow(self, Py_ssize_t need) except -1
    cdef Py_ssize_t _append_raw(self, const unsigned char *src, Py_ssize_t n) except -1
    cdef Py_ssize_t _b64_raw(self, const unsigned char *src, Py_ssize_t n) except -2


cdef class PCMRing:
    cdef object _arr
    cdef float *_data
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _r
    cdef Py_ssize_t _w
    cdef int _enc
    cdef int _size
    cdef unsigned char _tail[4]
    cdef int _tlen
    cdef object _encname
    cdef object __weakref__

    cdef Py_ssize_t _write_raw(self, const unsigned char *src, Py_ssize_t n) except -1
    cdef Py_ssize_t _b64_raw(self, const unsigned char *src, Py_ssize_t n) except -2
    cdef Py_ssize_t _copy_out(self, float *dst, Py_ssize_t n) except -1


cdef class StreamParser:
    cdef int _mode
    cdef object _framing
    cdef object _sink
    cdef int _sink_kind
    cdef Py_ssize_t _max
    cdef Py_ssize_t _fed
    cdef Py_ssize_t _count
    cdef Py_ssize_t _nbytes
    cdef object _error
    cdef object _deferred     # error found after good frames in one read, raised by the next call
    cdef bint _closed
    cdef Bytes _pend          # BOM prefix, partial frame or partial SSE line
    cdef Py_ssize_t _pbase    # stream offset of _pend.p[0]
    cdef bint _in_frame
    cdef Scan _st
    cdef Py_ssize_t _lead     # auto: offset of blanks starting the current line, or -1
    cdef bint _skip_lf
    cdef Bytes _dbuf          # joined data of the current SSE event, from _dstart
    cdef Py_ssize_t _dstart
    cdef const unsigned char *_dref   # or: its only data line, still inside the current read
    cdef Py_ssize_t _dref_len
    cdef Py_ssize_t _dlines
    cdef Py_ssize_t _dsize
    cdef Py_ssize_t _doff

    cdef int _run(self, const unsigned char *p, Py_ssize_t n, list out) except -1
    cdef int _process(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t base, list out) except -1
    cdef Py_ssize_t _decide(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t base) except -1
    cdef int _run_json(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t base, list out) except -1
    cdef int _run_sse(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t base, list out) except -1
    cdef int _line(self, const unsigned char *line, Py_ssize_t n, Py_ssize_t off, bint in_pend, list out) except -1
    cdef int _dispatch(self, list out) except -1
