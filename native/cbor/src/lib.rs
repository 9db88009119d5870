//! Strict decoding of canonical CBOR (RFC 8949 §4.2.1) for the bytes Tally signs.
//!
//! Why this exists: every validator decodes every transaction (envelope, body, payload)
//! and must refuse any encoding that is not the canonical one, so that one meaning has
//! one byte string. In Python that is a decode by cbor2 and a re-encode to compare,
//! about a third of a validator's admission work. This decoder checks canonical form
//! while it parses, in one pass.
//!
//! It is a fast path, not a second definition of the format. It accepts a subset:
//! unsigned and negative integers, byte and text strings, arrays, maps whose keys are
//! text, `false`, `true` and `null`, each in its one canonical form (shortest argument,
//! definite length, keys strictly increasing in length-first order), nested at most
//! `MAX_DEPTH` deep, with an array or a map at the top and nothing after it. For
//! anything else it answers `None`: malformed input, a non-canonical encoding, or only
//! something outside the subset (a float, a tag, an integer key). The caller then runs
//! the reference path (`tally.codec`, cbor2), which decides and names the error. So the
//! rule of the chain stays the reference's: whatever this accepts, the reference accepts
//! with the same value, and `tests/unit/test_cbor_fast.py` holds it to that.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString};

/// Deeper nesting is left to the reference path (`tally.codec.MAX_DEPTH`).
const MAX_DEPTH: usize = 16;

/// Why decoding stopped: outside the fast path (the caller falls back), or a Python
/// error while building the value (out of memory), which is raised.
enum Stop {
    Defer,
    Python(PyErr),
}

impl From<PyErr> for Stop {
    fn from(err: PyErr) -> Self {
        Stop::Python(err)
    }
}

impl From<std::convert::Infallible> for Stop {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

type Decoded<'py> = Result<Bound<'py, PyAny>, Stop>;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Stop> {
        let b = *self.data.get(self.pos).ok_or(Stop::Defer)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Stop> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err(Stop::Defer);
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.data[start..self.pos])
    }

    fn left(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }

    /// The argument that follows an initial byte with additional information `info`,
    /// accepted only in its shortest form (RFC 8949 §4.2.1, "preferred serialization").
    fn argument(&mut self, info: u8) -> Result<u64, Stop> {
        let (value, least) = match info {
            0..=23 => return Ok(info as u64),
            24 => (self.byte()? as u64, 24),
            25 => (u16::from_be_bytes(self.take(2)?.try_into().unwrap()) as u64, 0x100),
            26 => (u32::from_be_bytes(self.take(4)?.try_into().unwrap()) as u64, 0x1_0000),
            27 => (u64::from_be_bytes(self.take(8)?.try_into().unwrap()), 0x1_0000_0000),
            _ => return Err(Stop::Defer), // 28-30 reserved, 31 indefinite length
        };
        if value < least {
            return Err(Stop::Defer);
        }
        Ok(value)
    }

    /// A text string's bytes, once its initial byte said major type 3.
    fn text(&mut self, info: u8) -> Result<&'a str, Stop> {
        let len = self.argument(info)?;
        std::str::from_utf8(self.take(len)?).map_err(|_| Stop::Defer)
    }

    fn item<'py>(&mut self, py: Python<'py>, depth: usize) -> Decoded<'py> {
        if depth > MAX_DEPTH {
            return Err(Stop::Defer);
        }
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        Ok(match major {
            0 => self.argument(info)?.into_pyobject(py)?.into_any(),
            1 => (-1i128 - self.argument(info)? as i128).into_pyobject(py)?.into_any(),
            2 => {
                let len = self.argument(info)?;
                PyBytes::new(py, self.take(len)?).into_any()
            }
            3 => PyString::new(py, self.text(info)?).into_any(),
            4 => self.array(py, info, depth)?,
            5 => self.map(py, info, depth)?,
            7 => match info {
                20 => PyBool::new(py, false).to_owned().into_any(),
                21 => PyBool::new(py, true).to_owned().into_any(),
                22 => py.None().into_bound(py),
                _ => return Err(Stop::Defer), // undefined, simple values, floats
            },
            _ => return Err(Stop::Defer), // 6: tags
        })
    }

    fn array<'py>(&mut self, py: Python<'py>, info: u8, depth: usize) -> Decoded<'py> {
        let count = self.argument(info)?;
        if count > self.left() {
            return Err(Stop::Defer); // every item takes at least one byte
        }
        let mut items = Vec::with_capacity(count as usize);
        for _ in 0..count {
            items.push(self.item(py, depth + 1)?);
        }
        Ok(PyList::new(py, items)?.into_any())
    }

    /// A map with text keys, each greater than the one before in canonical order:
    /// shorter first, then bytewise (which also refuses a repeated key).
    fn map<'py>(&mut self, py: Python<'py>, info: u8, depth: usize) -> Decoded<'py> {
        let count = self.argument(info)?;
        if count > self.left() / 2 {
            return Err(Stop::Defer); // every entry takes at least two bytes
        }
        let dict = PyDict::new(py);
        let mut previous: Option<&[u8]> = None;
        for _ in 0..count {
            let initial = self.byte()?;
            if initial >> 5 != 3 {
                return Err(Stop::Defer);
            }
            let key = self.text(initial & 0x1f)?;
            if let Some(prev) = previous {
                if (prev.len(), prev) >= (key.len(), key.as_bytes()) {
                    return Err(Stop::Defer);
                }
            }
            previous = Some(key.as_bytes());
            let value = self.item(py, depth + 1)?;
            dict.set_item(PyString::new(py, key), value)?;
        }
        Ok(dict.into_any())
    }
}

/// The value of `data` if it is the canonical encoding of an array or a map inside the
/// fast path's subset; `None` otherwise, and then the reference decoder must decide.
#[pyfunction]
fn loads_canonical<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Option<Bound<'py, PyAny>>> {
    if !matches!(data.first(), Some(b) if b >> 5 == 4 || b >> 5 == 5) {
        return Ok(None);
    }
    let mut reader = Reader { data, pos: 0 };
    match reader.item(py, 1) {
        Ok(value) if reader.pos == data.len() => Ok(Some(value)),
        Ok(_) | Err(Stop::Defer) => Ok(None),
        Err(Stop::Python(err)) => Err(err),
    }
}

#[pymodule]
fn tally_cbor(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("MAX_DEPTH", MAX_DEPTH)?;
    module.add_function(wrap_pyfunction!(loads_canonical, module)?)?;
    Ok(())
}
