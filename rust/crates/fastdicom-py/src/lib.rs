//! `fastdicom._rust`: the thin pyo3 binding over the pure crates.
//!
//! Each function converts Python arguments, runs the pure code (detached from
//! the GIL when the input is large) and converts the result or the error.
//! Nothing here panics: every fallible path returns a `PyResult`.

use fastdicom_parse as parse;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::{GILOnceCell, GILProtected};
use pyo3::types::{PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use std::cell::RefCell;

/// Inputs larger than this are parsed with the GIL released.
const DETACH_THRESHOLD: usize = 1 << 16;

static INVALID_DICOM_ERROR: GILOnceCell<PyObject> = GILOnceCell::new();

/// The one conversion of a parse error to Python: `fastdicom.errors.InvalidDicomError`.
fn to_pyerr(py: Python<'_>, e: parse::ParseError) -> PyErr {
    let cls = INVALID_DICOM_ERROR.get_or_try_init(py, || -> PyResult<PyObject> {
        Ok(py
            .import("fastdicom.errors")?
            .getattr("InvalidDicomError")?
            .unbind())
    });
    match cls {
        Ok(cls) => match cls.call1(py, (e.message.clone(), e.tag, e.offset)) {
            Ok(obj) => PyErr::from_value(obj.into_bound(py)),
            Err(err) => err,
        },
        Err(err) => err,
    }
}

/// A read-only view of a Python buffer as a byte slice, valid while `buf` lives.
struct Bytes {
    buf: PyBuffer<u8>,
}

impl Bytes {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj)?;
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err("buffer must be C-contiguous"));
        }
        Ok(Bytes { buf })
    }

    fn as_slice(&self) -> &[u8] {
        let len = self.buf.len_bytes();
        if len == 0 {
            return &[];
        }
        // SAFETY: `PyBuffer::get` succeeded, so the exporter keeps `buf_ptr()`
        // valid for `len_bytes()` bytes until the PyBuffer is released, which
        // happens only when `self` is dropped; the returned slice borrows
        // `self`. The buffer is C-contiguous (checked in `new`) and has item
        // size 1 (`PyBuffer<u8>`). The bytes are only read. A writable
        // exporter (bytearray) mutated by another thread while we read would
        // yield garbage values, which every caller treats as untrusted input.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.buf.buf_ptr() as *const u8, len)
        }
    }
}

/// A writable view of a Python buffer (a numpy array's bytes) as a byte slice.
struct BytesMut {
    buf: PyBuffer<u8>,
}

impl BytesMut {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj)?;
        if buf.readonly() {
            return Err(PyValueError::new_err("output buffer is read-only"));
        }
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err("output buffer must be C-contiguous"));
        }
        Ok(BytesMut { buf })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.buf.len_bytes();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: as for `Bytes::as_slice`: the exporter keeps `buf_ptr()`
        // valid for `len_bytes()` bytes while `self` holds the PyBuffer, the
        // memory is C-contiguous with item size 1, and it is writable
        // (checked in `new`). The slice borrows `self` mutably, so Rust makes
        // no second reference to it. Python code writing the same array from
        // another thread during the call would race with us; the callers
        // (`Frames`, `fastdicom.decode`) pass arrays they just allocated and
        // hold no one else's reference to.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts_mut(self.buf.buf_ptr() as *mut u8, len)
        }
    }
}

fn vr_str<'py>(py: Python<'py>, vr: [u8; 2]) -> Bound<'py, PyString> {
    macro_rules! vrs {
        ($($v:literal),*) => {
            match &vr {
                [0, 0] => pyo3::intern!(py, "").clone(),
                $(v if v == $v.as_bytes() => pyo3::intern!(py, $v).clone(),)*
                _ => PyString::new(py, &String::from_utf8_lossy(&vr)),
            }
        };
    }
    vrs!(
        "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
        "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
        "UR", "US", "UT", "UV"
    )
}

/// The record classes of `fastdicom.dataset._records` (named tuples both twins build), loaded
/// once and checked to derive from tuple with the number of fields the builders below fill.
struct RecordTypes {
    record: Py<PyType>,
    item: Py<PyType>,
    opened: Py<PyType>,
    columns: Py<PyType>,
}

static RECORD_TYPES: GILOnceCell<RecordTypes> = GILOnceCell::new();

fn record_types(py: Python<'_>) -> PyResult<&RecordTypes> {
    RECORD_TYPES.get_or_try_init(py, || {
        let m = py.import("fastdicom.dataset._records")?;
        let tuple = py.get_type::<PyTuple>();
        let load = |name: &str, fields: usize| -> PyResult<Py<PyType>> {
            let t = m.getattr(name)?.downcast_into::<PyType>()?;
            let n = t.getattr(pyo3::intern!(py, "_fields"))?.len()?;
            if !t.is_subclass(&tuple)? || n != fields {
                return Err(PyValueError::new_err(format!(
                    "_records.{name} is not a named tuple of {fields} fields"
                )));
            }
            Ok(t.unbind())
        };
        Ok(RecordTypes {
            record: load("Record", 6)?,
            item: load("Item", 4)?,
            opened: load("Opened", 10)?,
            columns: load("Columns", 6)?,
        })
    })
}

/// An instance of the named tuple class `ty` holding `fields`: what `tuple.__new__(ty, fields)`
/// makes (without NamedTuple's Python-level `__new__`).
fn new_named<'py>(
    py: Python<'py>,
    ty: &Py<PyType>,
    fields: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    new_derived(
        py,
        std::ptr::addr_of_mut!(ffi::PyTuple_Type),
        ty,
        fields.into_any(),
    )
}

/// A `_records.Record` of `r`.
fn record_to_py<'py>(
    py: Python<'py>,
    types: &RecordTypes,
    r: &parse::Record,
) -> PyResult<Bound<'py, PyAny>> {
    let fields = (
        r.tag,
        vr_str(py, r.vr),
        r.header_offset,
        r.value_offset,
        r.value_length,
        r.undefined_length,
    )
        .into_pyobject(py)?;
    new_named(py, &types.record, fields)
}

/// `factory(tag, vr, header_offset, value_offset, value_length, undefined_length)` of `r`, with
/// `context` first when there is one.
fn call_with_fields<'py>(
    py: Python<'py>,
    factory: &Bound<'py, PyAny>,
    context: Option<&Bound<'py, PyAny>>,
    r: &parse::Record,
) -> PyResult<Bound<'py, PyAny>> {
    let vr = vr_str(py, r.vr);
    let (tag, h, o, n, u) = (
        r.tag,
        r.header_offset,
        r.value_offset,
        r.value_length,
        r.undefined_length,
    );
    match context {
        Some(c) => factory.call1((c, tag, vr, h, o, n, u)),
        None => factory.call1((tag, vr, h, o, n, u)),
    }
}

/// The elements of one data set level, as located by the tokenizer.
///
/// Same interface as `fastdicom.dataset._parse_py.ElementTable`. The records stay Rust structs;
/// a `_records.Record` is made only for the element asked for, and a whole table crosses as
/// `_records.Columns` (one list per field).
#[pyclass(frozen, module = "fastdicom._rust")]
struct ElementTable {
    records: Vec<parse::Record>,
    sorted: bool,
    #[pyo3(get)]
    end: usize,
    #[pyo3(get)]
    explicit_vr: bool,
}

#[pymethods]
impl ElementTable {
    fn __len__(&self) -> usize {
        self.records.len()
    }

    /// Index of the element with `tag`, or -1.
    fn find(&self, tag: u32) -> isize {
        if self.sorted {
            match self.records.binary_search_by_key(&tag, |r| r.tag) {
                Ok(i) => i as isize,
                Err(_) => -1,
            }
        } else {
            self.records
                .iter()
                .position(|r| r.tag == tag)
                .map_or(-1, |i| i as isize)
        }
    }

    /// The record of the element with `tag`, or None (`find` and `record` in one call).
    fn lookup<'py>(&self, py: Python<'py>, tag: u32) -> PyResult<Option<Bound<'py, PyAny>>> {
        let i = self.find(tag);
        if i < 0 {
            return Ok(None);
        }
        self.record(py, i as usize).map(Some)
    }

    /// The `Record` of element `i` (in the order they were read).
    fn record<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let r = self
            .records
            .get(i)
            .ok_or_else(|| PyIndexError::new_err("element index out of range"))?;
        record_to_py(py, record_types(py)?, r)
    }

    /// What `factory(tag, vr, header_offset, value_offset, value_length, undefined_length)` makes
    /// of element `i`'s fields (a `Record`'s, in order; `context` before them when given): one
    /// call, no record object between.
    #[pyo3(signature = (i, factory, context=None))]
    fn build<'py>(
        &self,
        py: Python<'py>,
        i: usize,
        factory: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self
            .records
            .get(i)
            .ok_or_else(|| PyIndexError::new_err("element index out of range"))?;
        call_with_fields(py, factory, context, r)
    }

    /// The decoded value of the element with `tag` when it is simple, else what `factory` makes of
    /// its fields.
    ///
    /// Returns `missing` when the tag is absent, the value (as
    /// `fastdicom.dataset.values` decodes it) for plain ASCII text, numbers
    /// and tags, and for everything else what `factory` makes of its fields
    /// (as `build`), or its `Record` (as `lookup`) without a factory: the
    /// caller decodes those its general way.
    #[pyo3(signature = (buf, tag, little_endian, missing, factory=None, context=None))]
    #[allow(clippy::too_many_arguments)]
    fn value<'py>(
        &self,
        py: Python<'py>,
        buf: &Bound<'py, PyAny>,
        tag: u32,
        little_endian: bool,
        missing: Bound<'py, PyAny>,
        factory: Option<&Bound<'py, PyAny>>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let i = self.find(tag);
        if i < 0 {
            return Ok(missing);
        }
        let r = &self.records[i as usize];
        if !r.undefined_length {
            let bytes = Bytes::new(buf)?;
            let data = bytes.as_slice();
            let raw = r
                .value_offset
                .checked_add(r.value_length)
                .and_then(|end| data.get(r.value_offset..end));
            if let Some(v) =
                raw.and_then(|raw| parse::value::decode_simple(r.vr, raw, little_endian))
            {
                return value_to_py(py, v, r.vr);
            }
        }
        match factory {
            Some(f) => call_with_fields(py, f, context, r),
            None => record_to_py(py, record_types(py)?, r),
        }
    }

    /// Every element's `Record`, in the order they were read.
    fn records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let types = record_types(py)?;
        let items = self
            .records
            .iter()
            .map(|r| record_to_py(py, types, r))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The whole table as a `_records.Columns`: one list per `Record` field, in the order read.
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let types = record_types(py)?;
        let r = &self.records;
        let fields = (
            PyList::new(py, r.iter().map(|r| r.tag))?,
            PyList::new(py, r.iter().map(|r| vr_str(py, r.vr)))?,
            PyList::new(py, r.iter().map(|r| r.header_offset))?,
            PyList::new(py, r.iter().map(|r| r.value_offset))?,
            PyList::new(py, r.iter().map(|r| r.value_length))?,
            PyList::new(py, r.iter().map(|r| r.undefined_length))?,
        )
            .into_pyobject(py)?;
        new_named(py, &types.columns, fields)
    }

    /// The tags in the order they were read.
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.records.iter().map(|r| r.tag))
    }

    /// Whether the tags came in ascending order.
    #[getter]
    fn sorted(&self) -> bool {
        self.sorted
    }
}

/// The value types of `fastdicom.dataset.valuerep`, loaded once and checked to derive from the
/// builtin types whose layout [`scalar_to_py`] relies on.
struct ValueTypes {
    uid: Py<PyType>,
    ds: Py<PyType>,
    ds_text: Py<PyType>,
    is_: Py<PyType>,
    is_text: Py<PyType>,
    multi: Py<PyType>,
}

static VALUE_TYPES: GILOnceCell<ValueTypes> = GILOnceCell::new();

fn value_types(py: Python<'_>) -> PyResult<&ValueTypes> {
    VALUE_TYPES.get_or_try_init(py, || {
        let m = py.import("fastdicom.dataset.valuerep")?;
        let load = |name: &str, base: &Bound<'_, PyType>| -> PyResult<Py<PyType>> {
            let t = m.getattr(name)?.downcast_into::<PyType>()?;
            if !t.is_subclass(base)? {
                return Err(PyValueError::new_err(format!(
                    "valuerep.{name} does not derive from {base}"
                )));
            }
            Ok(t.unbind())
        };
        let float = py.get_type::<PyFloat>();
        let int = py.get_type::<PyInt>();
        Ok(ValueTypes {
            uid: load("UID", &py.get_type::<PyString>())?,
            ds: load("DSfloat", &float)?,
            ds_text: load("_DSText", &float)?,
            is_: load("IS", &int)?,
            is_text: load("_ISText", &int)?,
            multi: load("MultiValue", &py.get_type::<PyList>())?,
        })
    })
}

/// A new, zero-filled instance of `ty` from its own allocator: where the builtin constructors of
/// float and list start from for a subtype, before they fill it in.
fn alloc_instance<'py>(py: Python<'py>, ty: &Py<PyType>) -> PyResult<Bound<'py, PyAny>> {
    let t = ty.bind(py).as_type_ptr();
    // SAFETY: `t` is a live type object (held by VALUE_TYPES). tp_alloc (PyType_GenericAlloc for
    // classes defined in Python) returns a new reference to a zero-filled instance, GC-tracked if
    // the type is, or null with an exception set.
    #[allow(unsafe_code)]
    unsafe {
        let alloc = (*t).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
        Bound::from_owned_ptr_or_err(py, alloc(t, 0))
    }
}

/// A new instance of `ty`, a subclass of float, holding `x`: what `float.__new__(ty, x)` makes,
/// without the call.
fn new_float<'py>(py: Python<'py>, ty: &Py<PyType>, x: f64) -> PyResult<Bound<'py, PyAny>> {
    let obj = alloc_instance(py, ty)?;
    // SAFETY: `ty` derives from float (checked in `value_types`), so the instance starts with a
    // PyFloatObject; float's constructor for subtypes sets ob_fval of the new instance just so.
    #[allow(unsafe_code)]
    unsafe {
        (*obj.as_ptr().cast::<ffi::PyFloatObject>()).ob_fval = x;
    }
    Ok(obj)
}

/// `base.__new__(ty, arg)` for `base` int, str or tuple: the builtin's constructor called directly.
fn new_derived<'py>(
    py: Python<'py>,
    base: *mut ffi::PyTypeObject,
    ty: &Py<PyType>,
    arg: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = PyTuple::new(py, [arg])?;
    // SAFETY: `base` is &PyLong_Type, &PyUnicode_Type or &PyTuple_Type, whose tp_new is always
    // set; `ty` derives from it (checked in `value_types` and `record_types`), which is what its
    // tp_new expects of a subtype, as `int.__new__(IS, x)` or `tuple.__new__(Record, t)` calls
    // it. `args` is a live tuple; the kwargs may be null. The result is a new reference or null
    // with an exception set.
    #[allow(unsafe_code)]
    unsafe {
        let Some(tp_new) = (*base).tp_new else {
            return Err(PyValueError::new_err("builtin type without a constructor"));
        };
        let obj = tp_new(
            ty.bind(py).as_type_ptr(),
            args.as_ptr(),
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, obj)
    }
}

/// Longest text a cached value may have (a UID's 64 characters).
const CACHE_TEXT: usize = 64;
/// Slots of the value cache (direct-mapped by a hash of the text).
const CACHE_SLOTS: usize = 1024;

/// A value made from a text, kept for the next element with the same text.
struct Cached {
    kind: u8,
    len: u8,
    text: [u8; CACHE_TEXT],
    obj: PyObject,
}

/// UI, DS and IS values by their text: a series repeats most of them (Study, Series and SOP Class
/// UIDs, pixel spacing, rescale), and the objects are immutable, so they are shared rather than
/// rebuilt. Protected by the GIL; a re-entrant use (Python code run while it is borrowed) skips it.
static VALUE_CACHE: GILProtected<RefCell<Vec<Option<Cached>>>> =
    GILProtected::new(RefCell::new(Vec::new()));

fn cache_slot(kind: u8, text: &[u8]) -> usize {
    // FxHash-style: one multiply per 8 bytes (UIDs differ in their last digits: all bytes count).
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = u64::from(kind) ^ (text.len() as u64).wrapping_mul(K);
    let mut chunks = text.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let mut w = [0u8; 8];
    w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    ((h >> 32) % CACHE_SLOTS as u64) as usize
}

/// The cached value of `kind` for `text`, or the one `make` builds (then cached).
fn cached<'py>(
    py: Python<'py>,
    kind: u8,
    text: &str,
    make: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let b = text.as_bytes();
    if b.len() > CACHE_TEXT {
        return make();
    }
    let slot = cache_slot(kind, b);
    let cache = VALUE_CACHE.get(py);
    if let Ok(entries) = cache.try_borrow() {
        if let Some(Some(e)) = entries.get(slot) {
            if e.kind == kind && &e.text[..usize::from(e.len)] == b {
                return Ok(e.obj.bind(py).clone());
            }
        }
    }
    let obj = make()?;
    if let Ok(mut entries) = cache.try_borrow_mut() {
        if entries.is_empty() {
            entries.resize_with(CACHE_SLOTS, || None);
        }
        let mut t = [0u8; CACHE_TEXT];
        t[..b.len()].copy_from_slice(b);
        let old = entries[slot].replace(Cached {
            kind,
            len: b.len() as u8,
            text: t,
            obj: obj.clone().unbind(),
        });
        drop(entries); // the old value's release may run Python code: not while borrowed
        drop(old);
    }
    Ok(obj)
}

/// One value as `fastdicom.dataset.values` gives it: UI text as `UID`, DS as `DSfloat` and IS as
/// `IS` (their text subclasses where `str()` of the number would not give the text back), everything
/// else as the plain Python type.
fn scalar_to_py<'py>(
    py: Python<'py>,
    s: parse::value::Scalar<'_>,
    vr: [u8; 2],
    types: &ValueTypes,
) -> PyResult<Bound<'py, PyAny>> {
    use parse::value::Scalar;
    Ok(match s {
        Scalar::Text(t) if vr == *b"UI" && !t.is_empty() => cached(py, 0, t, || {
            new_derived(
                py,
                std::ptr::addr_of_mut!(ffi::PyUnicode_Type),
                &types.uid,
                PyString::new(py, t).into_any(),
            )
        })?,
        Scalar::Text(t) => PyString::new(py, t).into_any(),
        Scalar::Int(x) => x.into_pyobject(py)?.into_any(),
        Scalar::UInt(x) => x.into_pyobject(py)?.into_any(),
        Scalar::Float(x) => x.into_pyobject(py)?.into_any(),
        Scalar::Decimal(x, t) => cached(py, 1, t, || {
            if plain_ds(x, t) {
                new_float(py, &types.ds, x)
            } else {
                let obj = new_float(py, &types.ds_text, x)?;
                obj.setattr(pyo3::intern!(py, "_text"), t)?;
                Ok(obj)
            }
        })?,
        Scalar::Integer(x, t) => cached(py, 2, t, || {
            let n = x.into_pyobject(py)?.into_any();
            let long = std::ptr::addr_of_mut!(ffi::PyLong_Type);
            if plain_is(t) {
                new_derived(py, long, &types.is_, n)
            } else {
                let obj = new_derived(py, long, &types.is_text, n)?;
                obj.setattr(pyo3::intern!(py, "_text"), t)?;
                Ok(obj)
            }
        })?,
    })
}

/// Whether `str()` of the float `x` gives back its DS text `t`, decided from the text alone as
/// `valuerep._plain_ds` decides it: fixed notation with a decimal point and at least one digit after
/// it, no sign but '-', no leading zeros, no trailing zeros after the point (but "N.0"), at most 15
/// significant digits (each such decimal is the shortest that rounds to its double, which is what
/// Python prints) and 1e-4 <= |x| < 1e16 (where Python prints fixed notation).
fn plain_ds(x: f64, t: &str) -> bool {
    if !(1e-4..1e16).contains(&x.abs()) {
        return false;
    }
    let b = t.strip_prefix('-').unwrap_or(t).as_bytes();
    let Some(dot) = b.iter().position(|&c| c == b'.') else {
        return false;
    };
    let (int, frac) = (&b[..dot], &b[dot + 1..]);
    if int.is_empty()
        || frac.is_empty()
        || (int.len() > 1 && int[0] == b'0')
        || !int.iter().chain(frac).all(u8::is_ascii_digit)
        || (frac.len() > 1 && frac[frac.len() - 1] == b'0')
    {
        return false;
    }
    let significant = if int == b"0" {
        frac.len() - frac.iter().take_while(|&&c| c == b'0').count()
    } else {
        int.len() + frac.len()
    };
    significant <= 15
}

/// Whether `str()` of an IS value gives back its text: `-?[1-9][0-9]*` or `0`.
fn plain_is(t: &str) -> bool {
    let b = t.strip_prefix('-').unwrap_or(t).as_bytes();
    match b {
        [b'0'] => t.len() == 1,
        [first, ..] => *first != b'0' && b.iter().all(u8::is_ascii_digit),
        [] => false,
    }
}

/// An empty instance of `ty`, a subclass of list.
fn new_list<'py>(py: Python<'py>, ty: &Py<PyType>) -> PyResult<Bound<'py, PyList>> {
    let obj = alloc_instance(py, ty)?;
    // SAFETY: `ty` derives from list (checked in `value_types`); a zero-filled instance is a valid
    // empty list (no items, nothing allocated), which is where list's own constructor starts.
    #[allow(unsafe_code)]
    unsafe {
        Ok(obj.downcast_into_unchecked())
    }
}

fn value_to_py<'py>(
    py: Python<'py>,
    v: parse::value::Value<'_>,
    vr: [u8; 2],
) -> PyResult<Bound<'py, PyAny>> {
    use parse::value::Value;
    let types = value_types(py)?;
    match v {
        Value::Null => Ok(py.None().into_bound(py)),
        Value::One(s) => scalar_to_py(py, s, vr, types),
        Value::Many(items) => {
            let objs = items
                .into_iter()
                .map(|s| scalar_to_py(py, s, vr, types))
                .collect::<PyResult<Vec<_>>>()?;
            let list = new_list(py, &types.multi)?;
            for obj in objs {
                list.append(obj)?;
            }
            Ok(list.into_any())
        }
    }
}

/// The value of `raw` decoded as VR `vr` when it is simple, else `missing`.
///
/// The fast path of `fastdicom.dataset.values.decode` for plain ASCII text,
/// numbers and tags (see `fastdicom_parse::value`).
#[pyfunction]
fn decode_simple<'py>(
    py: Python<'py>,
    vr: &str,
    raw: &Bound<'py, PyAny>,
    little_endian: bool,
    missing: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let Ok(vr) = <[u8; 2]>::try_from(vr.as_bytes()) else {
        return Ok(missing);
    };
    let bytes = Bytes::new(raw)?;
    match parse::value::decode_simple(vr, bytes.as_slice(), little_endian) {
        Some(v) => value_to_py(py, v, vr),
        None => Ok(missing),
    }
}

/// Parse one level of a data set in `buf[start:end]`.
#[pyfunction]
#[pyo3(signature = (buf, start, end, little_endian, explicit_vr, stop_before_pixels=false, in_item=false, depth=0, max_depth=parse::DEFAULT_MAX_DEPTH))]
#[allow(clippy::too_many_arguments)]
fn parse_dataset(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    start: usize,
    end: usize,
    little_endian: bool,
    explicit_vr: bool,
    stop_before_pixels: bool,
    in_item: bool,
    depth: usize,
    max_depth: usize,
) -> PyResult<ElementTable> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let enc = parse::Encoding {
        little_endian,
        explicit_vr,
    };
    let opts = parse::Options {
        stop_before_pixels,
        max_depth,
    };
    let run = || parse::parse_dataset(data, start, end, enc, &opts, in_item, depth);
    let result = if end.saturating_sub(start) > DETACH_THRESHOLD {
        py.allow_threads(run)
    } else {
        run()
    };
    let p = result.map_err(|e| to_pyerr(py, e))?;
    Ok(table(p))
}

/// `_records.Item`s of `items`.
fn items_to_py(py: Python<'_>, items: Vec<parse::Item>) -> PyResult<Bound<'_, PyList>> {
    let types = record_types(py)?;
    let objs = items
        .into_iter()
        .map(|i| {
            let fields = (
                i.header_offset,
                i.value_offset,
                i.value_length,
                i.undefined_length,
            )
                .into_pyobject(py)?;
            new_named(py, &types.item, fields)
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, objs)
}

/// List the items of a sequence value as `_records.Item`s.
#[pyfunction]
#[pyo3(signature = (buf, start, length, little_endian, explicit_vr, depth, tag, max_depth=parse::DEFAULT_MAX_DEPTH))]
#[allow(clippy::too_many_arguments)]
fn parse_items<'py>(
    py: Python<'py>,
    buf: &Bound<'py, PyAny>,
    start: usize,
    length: usize,
    little_endian: bool,
    explicit_vr: bool,
    depth: usize,
    tag: u32,
    max_depth: usize,
) -> PyResult<Bound<'py, PyList>> {
    let bytes = Bytes::new(buf)?;
    let enc = parse::Encoding {
        little_endian,
        explicit_vr,
    };
    let opts = parse::Options {
        stop_before_pixels: false,
        max_depth,
    };
    let items = parse::parse_items(bytes.as_slice(), start, length, enc, &opts, depth, tag)
        .map_err(|e| to_pyerr(py, e))?;
    items_to_py(py, items)
}

/// List the fragments of encapsulated data as `_records.Item`s (the first is the Basic Offset Table).
#[pyfunction]
fn parse_fragments<'py>(
    py: Python<'py>,
    buf: &Bound<'py, PyAny>,
    start: usize,
    length: usize,
    little_endian: bool,
    tag: u32,
) -> PyResult<Bound<'py, PyList>> {
    let bytes = Bytes::new(buf)?;
    let items = parse::parse_fragments(bytes.as_slice(), start, length, little_endian, tag)
        .map_err(|e| to_pyerr(py, e))?;
    items_to_py(py, items)
}

fn table(p: parse::Parsed) -> ElementTable {
    ElementTable {
        records: p.records,
        sorted: p.sorted,
        end: p.end,
        explicit_vr: p.explicit_vr,
    }
}

/// Locate a Part 10 file or raw data set and parse its File Meta and top level.
///
/// Returns a `_records.Opened`; its `body_table` is None for a deflated data set.
#[pyfunction]
#[pyo3(signature = (buf, stop_before_pixels=false))]
fn open_dataset<'py>(
    py: Python<'py>,
    buf: &Bound<'py, PyAny>,
    stop_before_pixels: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let types = record_types(py)?;
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let opts = parse::Options {
        stop_before_pixels,
        ..parse::Options::default()
    };
    let run = || parse::open(data, &opts);
    let result = if data.len() > DETACH_THRESHOLD && !stop_before_pixels {
        py.allow_threads(run)
    } else {
        run()
    };
    let o = result.map_err(|e| to_pyerr(py, e))?;
    let enc = o.encoding.unwrap_or(parse::Encoding::EXPLICIT_LITTLE);
    let (meta_start, meta_end, meta) = match o.meta {
        Some(m) => (m.start, m.end, Some(table(m.elements))),
        None => (0, 0, None),
    };
    let fields = (
        o.preamble,
        meta,
        meta_start,
        meta_end,
        o.transfer_syntax,
        enc.little_endian,
        enc.explicit_vr,
        o.deflated,
        o.body_start,
        o.body.map(table),
    )
        .into_pyobject(py)?;
    new_named(py, &types.opened, fields)
}

/// The first `size` bytes of a file, and whether that is the whole file.
///
/// Reads `size + 1` bytes (no `fstat`): one byte more than asked says the
/// file goes on. Small reads keep the GIL (releasing it costs more than the
/// read); large ones release it.
#[pyfunction]
fn read_prefix(
    py: Python<'_>,
    path: std::path::PathBuf,
    size: usize,
) -> PyResult<(Py<PyBytes>, bool)> {
    use std::io::Read;
    let read = || -> std::io::Result<Vec<u8>> {
        let f = std::fs::File::open(&path)?;
        let mut data = Vec::with_capacity((size + 1).min(1 << 16)); // grows with the data read
        f.take(size as u64 + 1).read_to_end(&mut data)?;
        Ok(data)
    };
    let data = if size > DETACH_THRESHOLD {
        py.allow_threads(read)
    } else {
        read()
    }
    .map_err(PyErr::from)?;
    let complete = data.len() <= size;
    let n = data.len().min(size);
    Ok((PyBytes::new(py, &data[..n]).unbind(), complete))
}

fn codec_error(py: Python<'_>, e: fastdicom_codecs::rle::RleError) -> PyErr {
    to_pyerr(
        py,
        parse::ParseError {
            kind: parse::ErrorKind::UnexpectedTag,
            tag: Some(parse::PIXEL_DATA),
            offset: 0,
            message: e.0,
        },
    )
}

/// Decode one RLE Lossless frame to interleaved little-endian pixel bytes (GIL released).
///
/// The pixels are decoded straight into the returned `bytes` object.
#[pyfunction]
fn rle_decode_frame(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    rows: usize,
    columns: usize,
    samples: usize,
    bits_allocated: usize,
) -> PyResult<Py<PyBytes>> {
    use fastdicom_codecs::rle;
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let total = rle::decoded_size(data, rows, columns, samples, bits_allocated)
        .map_err(|e| codec_error(py, e))?;
    let out = PyBytes::new_with(py, total, |out| {
        py.allow_threads(|| {
            rle::decode_frame_into(data, rows, columns, samples, bits_allocated, out)
        })
        .map_err(|e| codec_error(py, e))
    })?;
    Ok(out.unbind())
}

/// Decode one RLE Lossless frame into `out`, a writable C-contiguous buffer of
/// exactly the frame's size (GIL released; nothing allocated).
#[pyfunction]
fn rle_decode_into(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    rows: usize,
    columns: usize,
    samples: usize,
    bits_allocated: usize,
) -> PyResult<()> {
    use fastdicom_codecs::rle;
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let mut dst = BytesMut::new(out)?;
    let dst = dst.as_mut_slice();
    py.allow_threads(|| rle::decode_frame_into(data, rows, columns, samples, bits_allocated, dst))
        .map_err(|e| codec_error(py, e))
}

/// Encode one frame of interleaved little-endian pixel bytes as RLE Lossless (GIL released).
#[pyfunction]
fn rle_encode_frame(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    rows: usize,
    columns: usize,
    samples: usize,
    bits_allocated: usize,
) -> PyResult<Py<PyBytes>> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let out = py
        .allow_threads(|| {
            fastdicom_codecs::rle::encode_frame(data, rows, columns, samples, bits_allocated)
        })
        .map_err(|e| PyValueError::new_err(e.0))?;
    Ok(PyBytes::new(py, &out).unbind())
}

/// Decode one JPEG 2000 / HTJ2K frame with OpenJPEG (GIL released).
///
/// ``rows``, ``columns``, ``samples`` are the data set's frame shape: a
/// codestream header that disagrees is refused before decoding. ``threads`` >
/// 1 lets OpenJPEG use that many threads on this frame. Returns ``(samples
/// interleaved, native endian, precision, signed, bytes per sample)``; errors
/// raise ValueError.
#[pyfunction]
#[pyo3(signature = (buf, rows, columns, samples, threads=1))]
fn j2k_decode(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    rows: u32,
    columns: u32,
    samples: u32,
    threads: u32,
) -> PyResult<(Py<PyBytes>, u32, bool, usize)> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let d = py
        .allow_threads(|| {
            fastdicom_codecs::j2k::decode(data, Some((rows, columns, samples)), threads)
        })
        .map_err(|e| PyValueError::new_err(e.0))?;
    Ok((
        PyBytes::new(py, &d.data).unbind(),
        d.precision,
        d.signed,
        d.bytes_per_sample,
    ))
}

/// Encode one frame as a J2K codestream with OpenJPEG (GIL released).
///
/// ``buf`` holds the frame's samples interleaved in native order,
/// ``bytes_per_sample`` (1, 2, 4) each; ``precision`` is Bits Stored and
/// ``signed`` Pixel Representation 1. ``ratio`` 0 is lossless (reversible
/// 5/3, RCT for three samples); otherwise the target compression ratio of an
/// irreversible codestream (9/7, ICT). The result has an even length.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (buf, rows, columns, samples, bytes_per_sample, precision, signed, ratio=0.0, threads=1))]
fn j2k_encode(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    rows: u32,
    columns: u32,
    samples: u32,
    bytes_per_sample: usize,
    precision: u32,
    signed: bool,
    ratio: f32,
    threads: u32,
) -> PyResult<Py<PyBytes>> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let layout = fastdicom_codecs::j2k::Layout {
        rows,
        columns,
        components: samples,
        bytes_per_sample,
        precision,
        signed,
    };
    let options = fastdicom_codecs::j2k::EncodeOptions { ratio, threads };
    let out = py
        .allow_threads(|| fastdicom_codecs::j2k::encode(data, &layout, options))
        .map_err(|e| PyValueError::new_err(e.0))?;
    Ok(PyBytes::new(py, &out).unbind())
}

/// Decode one JPEG-LS frame with CharLS (GIL released).
///
/// The header is checked against ``rows``, ``columns``, ``samples`` before
/// decoding. Returns ``(samples interleaved, native endian, bits per sample,
/// bytes per sample)``; errors raise ValueError.
#[pyfunction]
fn jls_decode(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    rows: u32,
    columns: u32,
    samples: u32,
) -> PyResult<(Py<PyBytes>, u32, usize)> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let d = py
        .allow_threads(|| fastdicom_codecs::jls::decode(data, Some((rows, columns, samples))))
        .map_err(|e| PyValueError::new_err(e.0))?;
    Ok((
        PyBytes::new(py, &d.data).unbind(),
        d.bits_per_sample,
        d.bytes_per_sample,
    ))
}

/// Decode one JPEG-LS frame straight into ``out`` (a writable C-contiguous
/// buffer of exactly the frame: 1 byte per sample up to 8 bits, 2 above),
/// GIL released, nothing allocated. Returns ``(bits, bytes per sample)``; a
/// destination of another size raises ValueError starting "destination".
#[pyfunction]
fn jls_decode_into(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    rows: u32,
    columns: u32,
    samples: u32,
) -> PyResult<(u32, usize)> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let mut dst = BytesMut::new(out)?;
    let dst = dst.as_mut_slice();
    py.allow_threads(|| {
        fastdicom_codecs::jls::decode_into(data, Some((rows, columns, samples)), dst)
    })
    .map_err(|e| PyValueError::new_err(e.0))
}

/// Encode one frame as JPEG-LS with CharLS (GIL released): unsigned samples
/// interleaved, 1 byte up to 8 bits and 2 (native order) above; ``near`` 0
/// is lossless. ``preset``: ``(MAXVAL, T1, T2, T3, RESET)`` preset coding
/// parameters written in an LSE segment (0 for a default). The result has
/// an even length.
#[pyfunction]
#[pyo3(signature = (buf, rows, columns, samples, bits, near=0, preset=None))]
#[allow(clippy::too_many_arguments)]
fn jls_encode(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    rows: u32,
    columns: u32,
    samples: u32,
    bits: u32,
    near: u32,
    preset: Option<(u16, u16, u16, u16, u16)>,
) -> PyResult<Py<PyBytes>> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let coding = fastdicom_codecs::jls::Coding {
        near,
        preset: preset.map(
            |(maxval, t1, t2, t3, reset)| fastdicom_codecs::jls::Preset {
                maxval,
                t1,
                t2,
                t3,
                reset,
            },
        ),
    };
    let n = py
        .allow_threads(|| {
            ENCODE_BUF.with_borrow_mut(|out| {
                fastdicom_codecs::jls::encode_into(data, rows, columns, samples, bits, coding, out)
            })
        })
        .map_err(|e| PyValueError::new_err(e.0))?;
    // Same thread, so the same scratch buffer: one copy into the bytes object.
    Ok(ENCODE_BUF.with_borrow(|out| PyBytes::new(py, &out[..n]).unbind()))
}

/// ``(precision, rows, columns, components, lossless)`` of a JPEG start of frame.
type JpegHeader = (u32, u32, u32, u32, bool);

/// The JPEG start-of-frame header without decoding: ``(precision, rows,
/// columns, components, lossless)``, or None when there is none before the scan.
#[pyfunction]
fn jpeg_header(buf: &Bound<'_, PyAny>) -> PyResult<Option<JpegHeader>> {
    let bytes = Bytes::new(buf)?;
    Ok(fastdicom_codecs::jpeg::header(bytes.as_slice()))
}

/// Decode one JPEG frame (baseline, extended, lossless; 2 to 16 bits) with
/// libjpeg-turbo straight into ``out`` (a writable C-contiguous buffer of
/// exactly ``rows * columns * samples`` items of ``itemsize`` bytes), GIL
/// released. ``photometric_rgb``: the data set says RGB (used when the
/// markers are silent); ``keep_ycbcr``: leave lossy YCbCr as coded. Returns
/// ``(precision, lossless, ycbcr, converted)``; errors raise ValueError.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn jpeg_decode_into(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    rows: u32,
    columns: u32,
    samples: u32,
    itemsize: usize,
    photometric_rgb: bool,
    keep_ycbcr: bool,
) -> PyResult<(u32, bool, bool, bool)> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let mut dst = BytesMut::new(out)?;
    let dst = dst.as_mut_slice();
    let d = py
        .allow_threads(|| {
            fastdicom_codecs::jpeg::decode_into(
                data,
                (rows, columns, samples),
                photometric_rgb,
                keep_ycbcr,
                dst,
                itemsize,
            )
        })
        .map_err(|e| PyValueError::new_err(e.0))?;
    Ok((d.precision, d.lossless, d.ycbcr, d.converted))
}

/// Encode one frame as JPEG with libjpeg-turbo (GIL released): samples
/// interleaved, 1 byte each up to 8 bits of ``precision`` and 2 (native
/// order) above. ``lossless``: process 14 SV1, 2 to 16 bits, no colour
/// transform; else baseline 8-bit at ``quality``, colour as YCbCr with 4:2:2
/// subsampling when ``subsample``. The result has an even length.
#[pyfunction]
#[pyo3(signature = (buf, rows, columns, samples, precision, lossless, quality=90, subsample=true))]
#[allow(clippy::too_many_arguments)]
fn jpeg_encode(
    py: Python<'_>,
    buf: &Bound<'_, PyAny>,
    rows: u32,
    columns: u32,
    samples: u32,
    precision: u32,
    lossless: bool,
    quality: u8,
    subsample: bool,
) -> PyResult<Py<PyBytes>> {
    let bytes = Bytes::new(buf)?;
    let data = bytes.as_slice();
    let options = fastdicom_codecs::jpeg::EncodeOptions {
        lossless,
        quality,
        subsample,
    };
    let out = py
        .allow_threads(|| {
            fastdicom_codecs::jpeg::encode(data, (rows, columns, samples), precision, options)
        })
        .map_err(|e| PyValueError::new_err(e.0))?;
    Ok(PyBytes::new(py, &out).unbind())
}

thread_local! {
    /// Scratch output of the JPEG-LS encoder, kept per thread: zeroed only when it grows.
    static ENCODE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A connected socket borrowed by its descriptor: sends with `MSG_NOSIGNAL`,
/// waits with `poll` when the socket is non-blocking (Python's timeouts).
#[cfg(unix)]
struct SocketWriter {
    fd: libc::c_int,
    /// Longest wait without progress (None: no limit): a slow link that keeps
    /// moving is never cut off, a peer that stops reading is.
    timeout: Option<std::time::Duration>,
    /// When bytes last went out.
    last: std::time::Instant,
    /// Extra send flags (`MSG_MORE` for a header a sendfile follows).
    flags: libc::c_int,
}

#[cfg(unix)]
impl SocketWriter {
    fn new(fd: libc::c_int, timeout: Option<std::time::Duration>) -> Self {
        SocketWriter {
            fd,
            timeout,
            last: std::time::Instant::now(),
            flags: 0,
        }
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        self.timeout.map(|t| self.last + t)
    }

    fn wait_writable(&self) -> std::io::Result<()> {
        wait_fd(self.fd, libc::POLLOUT, self.deadline(), "sending to")
    }
}

/// The error of a file shorter than the region being sent.
fn file_ended() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the file ended before its data set was sent",
    )
}

/// A Python timeout in seconds as a Duration (negative: 0; NaN or huge: effectively none).
fn timeout_duration(t: f64) -> std::time::Duration {
    if t.is_nan() {
        return std::time::Duration::from_secs(1_000_000_000);
    }
    std::time::Duration::from_secs_f64(t.clamp(0.0, 1e9))
}

#[cfg(unix)]
impl std::io::Write for SocketWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_vectored(&[std::io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        #[cfg(target_os = "linux")]
        let flags = libc::MSG_NOSIGNAL | self.flags;
        #[cfg(not(target_os = "linux"))]
        let flags = self.flags;
        let count = bufs.len().min(1024);
        loop {
            // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on unix
            // (documented by std), `bufs` outlives the call, and `msg` points
            // only at it (no name, no control data). sendmsg reads the iovecs
            // and the memory they describe; it writes nothing of ours.
            #[allow(unsafe_code)]
            let n = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = count as _;
                libc::sendmsg(self.fd, &msg, flags)
            };
            if n >= 0 {
                if n > 0 {
                    self.last = std::time::Instant::now();
                }
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => self.wait_writable()?,
                _ => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Send one message part as P-DATA-TF PDUs on a connected socket (GIL released).
///
/// `sock` is a Python socket (not TLS); its timeout bounds each wait for the
/// peer to take more bytes (a slow link that keeps moving is not cut off). The payload is sent from the caller's buffer (a memory map,
/// say) without a copy. The socket must not be closed by another thread
/// meanwhile (the descriptor is borrowed); associations own their sockets.
#[cfg(unix)]
#[pyfunction]
fn pdata_send(
    py: Python<'_>,
    sock: &Bound<'_, PyAny>,
    payload: &Bound<'_, PyAny>,
    context_id: u8,
    command: bool,
    fragment: usize,
) -> PyResult<()> {
    let fd: libc::c_int = sock.call_method0("fileno")?.extract()?;
    if fd < 0 {
        return Err(pyo3::exceptions::PyOSError::new_err("socket is closed"));
    }
    let timeout: Option<f64> = sock.call_method0("gettimeout")?.extract()?;
    let bytes = Bytes::new(payload)?;
    let data = bytes.as_slice();
    let mut w = SocketWriter::new(fd, timeout.map(timeout_duration));
    py.allow_threads(|| fastdicom_net::send_message(&mut w, data, context_id, command, fragment))
        .map_err(PyErr::from)
}

/// Send one data set held in a file as P-DATA-TF PDUs (GIL released), zero-copy.
///
/// The same PDUs as `pdata_send` of the file's bytes `offset..offset+length`:
/// each 12-byte header goes out with `MSG_MORE`, then its fragment straight
/// from the page cache with `sendfile` (no copy through user memory, no
/// mapping). The socket's timeout bounds each wait for progress. A file that ends
/// before `offset+length` raises OSError (the association cannot continue
/// mid-PDU). Neither descriptor may be closed by another thread meanwhile.
#[cfg(target_os = "linux")]
#[pyfunction]
fn pdata_sendfile(
    py: Python<'_>,
    sock: &Bound<'_, PyAny>,
    file_fd: libc::c_int,
    offset: u64,
    length: u64,
    context_id: u8,
    fragment: usize,
) -> PyResult<()> {
    let fd: libc::c_int = sock.call_method0("fileno")?.extract()?;
    if fd < 0 {
        return Err(pyo3::exceptions::PyOSError::new_err("socket is closed"));
    }
    if fragment < 2 || !fragment.is_multiple_of(2) || fragment > u32::MAX as usize - 6 {
        return Err(PyValueError::new_err(
            "fragment size must be even, at least 2, and fit a PDU length",
        ));
    }
    let timeout: Option<f64> = sock.call_method0("gettimeout")?.extract()?;
    let start =
        libc::off_t::try_from(offset).map_err(|_| PyValueError::new_err("offset out of range"))?;
    let mut w = SocketWriter::new(fd, timeout.map(timeout_duration));
    py.allow_threads(|| -> std::io::Result<()> {
        use std::io::Write;
        let mut pos: libc::off_t = start;
        let mut left = length;
        // Where sendfile cannot serve this file (EINVAL/ENOSYS: some special file systems),
        // the rest goes through a buffer with pread.
        let mut copy: Option<Vec<u8>> = None;
        loop {
            let n = left.min(fragment as u64);
            let last = n == left;
            let head =
                fastdicom_net::pdata_header(context_id, if last { 0x02 } else { 0x00 }, n as u32);
            w.flags = libc::MSG_MORE;
            let sent = w.write_all(&head);
            w.flags = 0;
            sent?;
            let mut todo = n;
            while todo > 0 {
                if let Some(buf) = copy.as_mut() {
                    let chunk = todo.min(buf.len() as u64) as usize;
                    // SAFETY: `buf` is a live, exclusively borrowed Vec of at least
                    // `chunk` bytes; pread writes at most `chunk` bytes into it.
                    #[allow(unsafe_code)]
                    let k = unsafe { libc::pread(file_fd, buf.as_mut_ptr().cast(), chunk, pos) };
                    if k > 0 {
                        w.write_all(&buf[..k as usize])?;
                        pos += k as libc::off_t;
                        todo -= k as u64;
                        continue;
                    }
                    if k == 0 {
                        return Err(file_ended());
                    }
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                    continue;
                }
                let chunk = todo.min(1 << 30) as usize;
                // SAFETY: `pos` is a live off_t that sendfile reads and advances;
                // both descriptors are borrowed for the call, no memory of ours is touched.
                #[allow(unsafe_code)]
                let k = unsafe { libc::sendfile(fd, file_fd, &mut pos, chunk) };
                if k > 0 {
                    todo -= k as u64;
                    w.last = std::time::Instant::now();
                    continue;
                }
                if k == 0 {
                    return Err(file_ended());
                }
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => w.wait_writable()?,
                    Some(libc::EINVAL) | Some(libc::ENOSYS) => copy = Some(vec![0u8; 1 << 20]),
                    _ => return Err(e),
                }
            }
            left -= n;
            if last {
                return Ok(());
            }
        }
    })
    .map_err(PyErr::from)
}

/// Wait until `fd` is ready for `events` or `deadline` passes.
#[cfg(unix)]
fn wait_fd(
    fd: libc::c_int,
    events: libc::c_short,
    deadline: Option<std::time::Instant>,
    what: &str,
) -> std::io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                left.as_millis().min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: `pfd` is a valid, exclusively borrowed pollfd and we pass a
        // count of 1; poll only reads `fd`/`events` and writes `revents`.
        #[allow(unsafe_code)]
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r > 0 {
            return Ok(());
        }
        if r == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("timed out {what} the peer"),
            ));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A connected socket borrowed by its descriptor for reading PDUs: every PDU
/// must arrive within `timeout` of its first byte being asked for.
#[cfg(unix)]
struct SocketReader {
    fd: libc::c_int,
    timeout: Option<std::time::Duration>,
    deadline: Option<std::time::Instant>,
}

#[cfg(unix)]
impl std::io::Read for SocketReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // With a deadline, never block in recv (the socket may be in blocking mode): wait in poll.
        let flags = if self.deadline.is_some() {
            libc::MSG_DONTWAIT
        } else {
            0
        };
        loop {
            // SAFETY: `buf` is a valid, exclusively borrowed byte slice of
            // `buf.len()` bytes; recv writes at most that many into it.
            #[allow(unsafe_code)]
            let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => {
                    wait_fd(self.fd, libc::POLLIN, self.deadline, "waiting for")?
                }
                _ => return Err(e),
            }
        }
    }
}

#[cfg(unix)]
impl fastdicom_net::PduRead for SocketReader {
    fn begin_pdu(&mut self) {
        self.deadline = self.timeout.map(|t| std::time::Instant::now() + t);
    }
}

/// A file descriptor borrowed for appending data-set fragments. `flush` (after
/// each gathered batch) starts the kernel's writeback of what was written
/// (Linux `sync_file_range`), so the fsync that makes the object durable has
/// little left to do and disk writes overlap the network.
#[cfg(unix)]
struct FdWriter<'h> {
    fd: libc::c_int,
    unsynced: usize,
    /// Fed exactly the bytes written (the stored file's checksum, without reading it again).
    hasher: Option<&'h mut xxhash_rust::xxh3::Xxh3>,
}

/// Feed `hasher` the first `n` bytes described by `bufs`.
#[cfg(unix)]
fn hash_written(hasher: &mut xxhash_rust::xxh3::Xxh3, bufs: &[std::io::IoSlice<'_>], mut n: usize) {
    for b in bufs {
        if n == 0 {
            break;
        }
        let take = n.min(b.len());
        hasher.update(&b[..take]);
        n -= take;
    }
}

/// Written bytes after which writeback is started.
#[cfg(unix)]
const WRITEBACK_EVERY: usize = 8 << 20;

#[cfg(unix)]
impl std::io::Write for FdWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_vectored(&[std::io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        let count = bufs.len().min(1024);
        loop {
            // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on unix
            // (documented by std); `bufs` outlives the call and writev only
            // reads the `count` iovecs and the memory they describe.
            #[allow(unsafe_code)]
            let n =
                unsafe { libc::writev(self.fd, bufs.as_ptr() as *const libc::iovec, count as _) };
            if n >= 0 {
                self.unsynced += n as usize;
                if let Some(h) = self.hasher.as_deref_mut() {
                    hash_written(h, &bufs[..count], n as usize);
                }
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        if self.unsynced >= WRITEBACK_EVERY {
            self.unsynced = 0;
            // SAFETY: plain system call on a borrowed descriptor; it touches no memory of ours.
            // Only a hint: a failure here shows up again at the fsync that decides durability.
            #[allow(unsafe_code)]
            unsafe {
                libc::sync_file_range(self.fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
thread_local! {
    /// Scratch space of `pdata_recv`, kept per thread (an SCP runs one association per
    /// thread): it grows to the gathered batch once, and goes with the thread.
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An incremental xxh3-128 hasher (the archive's checksum of stored files).
///
/// ``update(buffer)`` (GIL released for large buffers), ``hexdigest()`` (32
/// lower-case hex digits of the 128-bit value, as the ``xxhash`` package
/// writes them), ``digest()`` (16 bytes, big-endian), ``copy()``.
#[pyclass(module = "fastdicom._rust")]
struct Xxh3 {
    inner: xxhash_rust::xxh3::Xxh3,
}

#[pymethods]
impl Xxh3 {
    #[new]
    fn new() -> Self {
        Xxh3 {
            inner: xxhash_rust::xxh3::Xxh3::new(),
        }
    }

    fn update(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = Bytes::new(data)?;
        let slice = bytes.as_slice();
        if slice.len() >= 1 << 16 {
            let inner = &mut self.inner;
            py.allow_threads(|| inner.update(slice));
        } else {
            self.inner.update(slice);
        }
        Ok(())
    }

    fn hexdigest(&self) -> String {
        format!("{:032x}", self.inner.digest128())
    }

    fn digest<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.digest128().to_be_bytes())
    }

    fn copy(&self) -> Self {
        Xxh3 {
            inner: self.inner.clone(),
        }
    }
}

/// Receive one data set's fragments from a socket into a file (GIL released).
///
/// Returns ``(bytes, errno, stop, extra)``: the data-set bytes received, the
/// errno of the first write error (0: none; the rest was drained), and why it
/// stopped: ``"done"`` (extra: the PDVs that followed the last fragment in
/// its PDU, as ``(context, control, bytes)``), ``"pdvs"`` (a PDV that is not
/// a data fragment on ``context_id``, and the rest of its PDU), ``"header"``
/// (the 6-byte header of a PDU that is not P-DATA-TF or exceeds ``max_pdu``;
/// its body is unread) or ``"malformed"`` (extra: why). ``fd`` -1 drains.
/// ``timeout`` (seconds, None: none) bounds each PDU; closing raises
/// ConnectionError, a timeout TimeoutError. Neither descriptor may be closed
/// by another thread meanwhile (both are borrowed). ``hasher`` (an
/// :class:`Xxh3`) is fed exactly the bytes written to ``fd``.
#[cfg(unix)]
#[pyfunction]
#[pyo3(signature = (sock, context_id, max_pdu, fd, timeout, hasher=None))]
fn pdata_recv<'py>(
    py: Python<'py>,
    sock: &Bound<'py, PyAny>,
    context_id: u8,
    max_pdu: u32,
    fd: libc::c_int,
    timeout: Option<f64>,
    hasher: Option<&Bound<'py, Xxh3>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let sfd: libc::c_int = sock.call_method0("fileno")?.extract()?;
    if sfd < 0 {
        return Err(pyo3::exceptions::PyOSError::new_err("socket is closed"));
    }
    let mut reader = SocketReader {
        fd: sfd,
        timeout: timeout.map(timeout_duration),
        deadline: None,
    };
    let mut guard = match hasher {
        Some(h) => Some(h.try_borrow_mut()?),
        None => None,
    };
    let mut writer = FdWriter {
        fd,
        unsynced: 0,
        hasher: guard.as_deref_mut().map(|g| &mut g.inner),
    };
    let got = py.allow_threads(|| {
        RECV_BUF.with_borrow_mut(|buf| {
            let sink = if fd >= 0 { Some(&mut writer) } else { None };
            fastdicom_net::receive_data(&mut reader, sink, context_id, max_pdu, buf)
        })
    });
    let got = match got {
        Ok(g) => g,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(pyo3::exceptions::PyConnectionError::new_err(
                "connection closed by the peer",
            ))
        }
        Err(e) => return Err(PyErr::from(e)),
    };
    let errno = got
        .write_error
        .map(|e| e.raw_os_error().unwrap_or(libc::EIO))
        .unwrap_or(0);
    let pdvs = |v: Vec<fastdicom_net::OwnedPdv>| -> PyResult<Bound<'py, PyAny>> {
        let items: Vec<Bound<'py, PyTuple>> = v
            .into_iter()
            .map(|p| {
                PyTuple::new(
                    py,
                    [
                        p.context_id.into_pyobject(py)?.into_any(),
                        p.control.into_pyobject(py)?.into_any(),
                        PyBytes::new(py, &p.value).into_any(),
                    ],
                )
            })
            .collect::<PyResult<_>>()?;
        Ok(PyList::new(py, items)?.into_any())
    };
    let (stop, extra): (&str, Bound<'py, PyAny>) = match got.stop {
        fastdicom_net::Stop::Done(v) => ("done", pdvs(v)?),
        fastdicom_net::Stop::Pdvs(v) => ("pdvs", pdvs(v)?),
        fastdicom_net::Stop::Header(h) => ("header", PyBytes::new(py, &h).into_any()),
        fastdicom_net::Stop::Malformed(m) => ("malformed", PyString::new(py, &m).into_any()),
    };
    PyTuple::new(
        py,
        [
            got.bytes.into_pyobject(py)?.into_any(),
            errno.into_pyobject(py)?.into_any(),
            PyString::new(py, stop).into_any(),
            extra,
        ],
    )
}

/// Create a staged file ``<incoming>/<32 hex digits>.part`` holding ``header``.
///
/// Returns ``(fd, path)``; the descriptor (write-only, close-on-exec) is the
/// caller's, to hand to :func:`sync_close` or close. Errors raise OSError.
/// The GIL is kept: creating a file and writing a few hundred bytes waits for
/// no device, and giving the GIL up would cost an SCP thread a hand-off per object.
#[cfg(unix)]
#[pyfunction]
fn stage_create(incoming: std::path::PathBuf, header: &[u8]) -> PyResult<(i32, String)> {
    use std::os::fd::IntoRawFd;
    let (file, path) = fastdicom_net::staging::stage_file(&incoming, ".part", header)?;
    match path.into_os_string().into_string() {
        Ok(p) => Ok((file.into_raw_fd(), p)),
        Err(p) => {
            drop(file);
            let _ = std::fs::remove_file(&p);
            Err(pyo3::exceptions::PyValueError::new_err(
                "staging folder is not valid UTF-8",
            ))
        }
    }
}

/// fsync and close each descriptor (GIL released); the errno of each (0: flushed).
///
/// The descriptors are handed over: each is closed, whatever its outcome, and
/// must not be used again. One that is negative or listed twice is not touched
/// and answers EBADF. Flushes run in parallel when the first one waited for a
/// device (more than 50 µs).
#[cfg(unix)]
#[pyfunction]
fn sync_close(py: Python<'_>, fds: Vec<i32>) -> Vec<i32> {
    use std::os::fd::FromRawFd;
    let mut seen = std::collections::HashSet::with_capacity(fds.len());
    let mut files = Vec::with_capacity(fds.len());
    let mut slots = Vec::with_capacity(fds.len()); // index into `files`, or None: EBADF
    for &fd in &fds {
        if fd < 0 || !seen.insert(fd) {
            slots.push(None);
            continue;
        }
        // SAFETY: the caller hands over `fd`, an open descriptor it owns and never uses again
        // (documented above); each value is taken once (duplicates were refused), so the File
        // is its only owner and closes it exactly once.
        #[allow(unsafe_code)]
        let f = unsafe { std::fs::File::from_raw_fd(fd) };
        slots.push(Some(files.len()));
        files.push(f);
    }
    let results = py.allow_threads(|| {
        fastdicom_net::staging::sync_files(files, std::time::Duration::from_micros(50), 16)
    });
    slots
        .into_iter()
        .map(|slot| match slot {
            None => libc::EBADF,
            Some(k) => match &results[k] {
                Ok(()) => 0,
                Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
            },
        })
        .collect()
}

#[pymodule]
fn _rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_DEPTH", parse::DEFAULT_MAX_DEPTH)?;
    m.add_class::<ElementTable>()?;
    m.add_function(wrap_pyfunction!(parse_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(decode_simple, m)?)?;
    m.add_function(wrap_pyfunction!(parse_items, m)?)?;
    m.add_function(wrap_pyfunction!(parse_fragments, m)?)?;
    m.add_function(wrap_pyfunction!(open_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(read_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(rle_decode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(rle_decode_into, m)?)?;
    m.add_function(wrap_pyfunction!(rle_encode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(j2k_decode, m)?)?;
    m.add_function(wrap_pyfunction!(j2k_encode, m)?)?;
    m.add_function(wrap_pyfunction!(jls_decode, m)?)?;
    m.add_function(wrap_pyfunction!(jls_decode_into, m)?)?;
    m.add_function(wrap_pyfunction!(jls_encode, m)?)?;
    m.add_function(wrap_pyfunction!(jpeg_header, m)?)?;
    m.add_function(wrap_pyfunction!(jpeg_decode_into, m)?)?;
    m.add_function(wrap_pyfunction!(jpeg_encode, m)?)?;
    #[cfg(unix)]
    m.add_function(wrap_pyfunction!(pdata_send, m)?)?;
    #[cfg(unix)]
    m.add_function(wrap_pyfunction!(pdata_recv, m)?)?;
    m.add_class::<Xxh3>()?;
    #[cfg(target_os = "linux")]
    m.add_function(wrap_pyfunction!(pdata_sendfile, m)?)?;
    #[cfg(unix)]
    m.add_function(wrap_pyfunction!(stage_create, m)?)?;
    #[cfg(unix)]
    m.add_function(wrap_pyfunction!(sync_close, m)?)?;
    Ok(())
}
