//! JPEG 2000 decoding (Part 1, and Part 15 High-Throughput) through OpenJPEG 2.5.
//!
//! OpenJPEG's sources are compiled into the extension by the `openjpeg-sys`
//! crate (BSD-2-Clause). [`decode`] reads a J2K codestream or a JP2 file from
//! memory and returns its samples interleaved (pixel by pixel, component by
//! component) in the smallest container that holds the codestream's
//! precision: 1, 2 or 4 bytes, native byte order, two's complement when the
//! components are signed. Multi-component transforms are undone by OpenJPEG,
//! so three-component images come out as RGB.
//!
//! A truncated codestream is an error, never a partly grey image: the
//! codestream (inside its `jp2c` box for JP2) must end with the EOC marker,
//! trailing zero padding aside. OpenJPEG's own strict mode is left off: in
//! 2.5.3 it silently mis-decodes some valid codestreams split in several
//! tile-parts (GDCMJ2K_TextGBR.dcm of the corpus). When the caller knows the frame's shape, the header
//! is checked against it before anything is decoded (or allocated), so a
//! lying header cannot make us allocate more than the data set describes.

use std::ffi::{c_char, c_void, CStr};

use openjpeg_sys as opj;

/// A codestream that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct J2kError(pub String);

impl std::fmt::Display for J2kError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for J2kError {}

/// A decoded frame.
#[derive(Debug)]
pub struct Decoded {
    pub rows: u32,
    pub columns: u32,
    pub components: u32,
    /// Bits per sample in the codestream (the largest over the components).
    pub precision: u32,
    pub signed: bool,
    /// 1, 2 or 4.
    pub bytes_per_sample: usize,
    /// `rows * columns * components * bytes_per_sample` bytes, interleaved, native endian.
    pub data: Vec<u8>,
}

/// The JP2 signature box and the J2K start-of-codestream + SIZ markers.
const JP2_SIGNATURE: [u8; 12] = [0, 0, 0, 12, b'j', b'P', b' ', b' ', 13, 10, 0x87, 10];
const J2K_START: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];

/// Largest output without a caller's shape to check against (2 GiB).
const MAX_UNCHECKED: u64 = 1 << 31;

struct Source<'a> {
    data: &'a [u8],
    pos: usize,
}

/// OpenJPEG's "no more bytes" answer for reads and skips.
const END: usize = usize::MAX;

unsafe extern "C" fn read_cb(buf: *mut c_void, n: usize, user: *mut c_void) -> usize {
    // SAFETY: `user` is the `Source` that `decode` registered and keeps alive
    // (and exclusively lent to OpenJPEG) until the stream is destroyed.
    let src = unsafe { &mut *(user as *mut Source<'_>) };
    let left = src.data.len() - src.pos;
    if left == 0 {
        return END;
    }
    let k = n.min(left);
    // SAFETY: OpenJPEG passes a buffer of at least `n` writable bytes; we copy
    // `k <= n` bytes from inside `src.data` (k <= left); they do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(src.data.as_ptr().add(src.pos), buf as *mut u8, k) };
    src.pos += k;
    k
}

unsafe extern "C" fn skip_cb(n: i64, user: *mut c_void) -> i64 {
    // SAFETY: as in `read_cb`.
    let src = unsafe { &mut *(user as *mut Source<'_>) };
    let left = (src.data.len() - src.pos) as i64;
    if n < 0 || n > left {
        src.pos = src.data.len();
        return -1;
    }
    src.pos += n as usize;
    n
}

unsafe extern "C" fn seek_cb(n: i64, user: *mut c_void) -> i32 {
    // SAFETY: as in `read_cb`.
    let src = unsafe { &mut *(user as *mut Source<'_>) };
    if n < 0 || n as u64 > src.data.len() as u64 {
        return 0;
    }
    src.pos = n as usize;
    1
}

unsafe extern "C" fn error_cb(msg: *const c_char, user: *mut c_void) {
    if msg.is_null() || user.is_null() {
        return;
    }
    // SAFETY: `user` is the `String` that `decode` registered for this codec
    // and keeps alive until the codec is destroyed; `msg` is a NUL-terminated
    // string OpenJPEG owns for the duration of the call.
    let (out, text) = unsafe { (&mut *(user as *mut String), CStr::from_ptr(msg)) };
    if out.len() < 1000 {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(text.to_string_lossy().trim_end());
    }
}

unsafe extern "C" fn quiet_cb(_msg: *const c_char, _user: *mut c_void) {}

/// Owns what OpenJPEG allocated; frees it on every path.
struct Handles {
    codec: *mut opj::opj_codec_t,
    stream: *mut opj::opj_stream_t,
    image: *mut opj::opj_image_t,
}

impl Drop for Handles {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was returned by the matching OpenJPEG
        // constructor and is destroyed exactly once, here.
        unsafe {
            if !self.image.is_null() {
                opj::opj_image_destroy(self.image);
            }
            if !self.stream.is_null() {
                opj::opj_stream_destroy(self.stream);
            }
            if !self.codec.is_null() {
                opj::opj_destroy_codec(self.codec);
            }
        }
    }
}

/// The codestream of a J2K stream or JP2 file (the content of its `jp2c` box).
fn codestream(data: &[u8]) -> Option<&[u8]> {
    if !data.starts_with(&JP2_SIGNATURE) {
        return Some(data);
    }
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let len =
            u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as u64;
        let kind = &data[pos + 4..pos + 8];
        let (head, size) = match len {
            0 => (8u64, (data.len() - pos) as u64),
            1 if pos + 16 <= data.len() => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos + 8..pos + 16]);
                (16, u64::from_be_bytes(b))
            }
            n => (8, n),
        };
        if size < head || pos as u64 + size > data.len() as u64 {
            return None;
        }
        if kind == b"jp2c" {
            return Some(&data[pos + head as usize..pos + size as usize]);
        }
        pos += size as usize;
    }
    None
}

/// Whether the codestream ends with EOC (FFD9), zero padding aside. EOC cannot occur
/// inside the entropy-coded data (marker codes above FF8F are never emitted there).
fn complete(data: &[u8]) -> bool {
    let Some(cs) = codestream(data) else {
        return false;
    };
    let tail = &cs[cs.len().saturating_sub(4096)..];
    let end = tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let tail = &tail[end.saturating_sub(32)..end];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Whether `data` starts like a JPEG 2000 codestream or JP2 file.
pub fn looks_like_j2k(data: &[u8]) -> bool {
    data.starts_with(&J2K_START) || data.starts_with(&JP2_SIGNATURE)
}

/// Decode one frame. `expect` is `(rows, columns, components)` when known:
/// a header that disagrees is refused before decoding. `threads` > 1 lets
/// OpenJPEG decode code-blocks of this frame on that many threads.
pub fn decode(
    data: &[u8],
    expect: Option<(u32, u32, u32)>,
    threads: u32,
) -> Result<Decoded, J2kError> {
    let format = if data.starts_with(&J2K_START) {
        opj::CODEC_FORMAT::OPJ_CODEC_J2K
    } else if data.starts_with(&JP2_SIGNATURE) {
        opj::CODEC_FORMAT::OPJ_CODEC_JP2
    } else {
        return Err(J2kError(
            "not a JPEG 2000 codestream (no SOC/SIZ marker or JP2 signature)".into(),
        ));
    };
    if !complete(data) {
        return Err(J2kError(
            "truncated JPEG 2000 codestream: no end-of-codestream marker (FFD9) at its end".into(),
        ));
    }
    let mut errors = String::new();
    let mut source = Source { data, pos: 0 };
    let mut h = Handles {
        codec: std::ptr::null_mut(),
        stream: std::ptr::null_mut(),
        image: std::ptr::null_mut(),
    };
    let fail = |what: &str, errors: &str| {
        J2kError(if errors.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {errors}")
        })
    };
    // SAFETY: plain constructor; the result is checked for null and owned by `h`.
    h.codec = unsafe { opj::opj_create_decompress(format) };
    if h.codec.is_null() {
        return Err(J2kError("OpenJPEG could not create a decoder".into()));
    }
    // SAFETY: `h.codec` is a live codec. The handlers receive a pointer to
    // `errors`, which outlives the codec (it is declared before `h`, so it is
    // dropped after it); the callbacks only append to it.
    let ok = unsafe {
        let user = &mut errors as *mut String as *mut c_void;
        opj::opj_set_error_handler(h.codec, Some(error_cb), user);
        opj::opj_set_warning_handler(h.codec, Some(quiet_cb), std::ptr::null_mut());
        opj::opj_set_info_handler(h.codec, Some(quiet_cb), std::ptr::null_mut());
        let mut params: opj::opj_dparameters_t = std::mem::zeroed();
        opj::opj_set_default_decoder_parameters(&mut params);
        opj::opj_setup_decoder(h.codec, &mut params) != 0
            && opj::opj_decoder_set_strict_mode(h.codec, 0) != 0
    };
    if !ok {
        return Err(fail("OpenJPEG refused the decoder set-up", &errors));
    }
    if threads > 1 {
        // SAFETY: live codec; a failure only means no threads (decoding still works).
        unsafe {
            if opj::opj_has_thread_support() != 0 {
                opj::opj_codec_set_threads(h.codec, threads.min(64) as i32);
            }
        }
    }
    let chunk = data.len().clamp(4096, 1 << 22);
    // SAFETY: the stream reads through the callbacks above from `source`,
    // which lives (unmoved: it is borrowed, never moved after this point)
    // until `h` drops the stream at the end of this function.
    h.stream = unsafe {
        let s = opj::opj_stream_create(chunk, 1);
        if !s.is_null() {
            opj::opj_stream_set_read_function(s, Some(read_cb));
            opj::opj_stream_set_skip_function(s, Some(skip_cb));
            opj::opj_stream_set_seek_function(s, Some(seek_cb));
            opj::opj_stream_set_user_data(s, &mut source as *mut Source<'_> as *mut c_void, None);
            opj::opj_stream_set_user_data_length(s, data.len() as u64);
        }
        s
    };
    if h.stream.is_null() {
        return Err(J2kError("OpenJPEG could not create a stream".into()));
    }
    // SAFETY: live codec and stream; `h.image` receives an image OpenJPEG
    // allocates (or stays null), owned by `h`.
    if unsafe { opj::opj_read_header(h.stream, h.codec, &mut h.image) } == 0 || h.image.is_null() {
        return Err(fail("not a readable JPEG 2000 header", &errors));
    }
    // SAFETY: `h.image` is a live image returned by opj_read_header.
    let img = unsafe { &*h.image };
    let columns = img.x1.saturating_sub(img.x0);
    let rows = img.y1.saturating_sub(img.y0);
    let components = img.numcomps;
    if rows == 0 || columns == 0 || components == 0 || img.comps.is_null() {
        return Err(J2kError("JPEG 2000 header describes an empty image".into()));
    }
    match expect {
        Some(shape) if shape != (rows, columns, components) => {
            return Err(J2kError(format!(
                "JPEG 2000 header says {rows}x{columns} with {components} components, the data set {}x{} with {}",
                shape.0, shape.1, shape.2
            )));
        }
        None if rows as u64 * columns as u64 * components as u64 * 4 > MAX_UNCHECKED => {
            return Err(J2kError(
                "JPEG 2000 image too large to decode without a known shape".into(),
            ));
        }
        _ => {}
    }
    // SAFETY: live codec, stream and image from opj_read_header.
    let decoded = unsafe {
        opj::opj_decode(h.codec, h.stream, h.image) != 0
            && opj::opj_end_decompress(h.codec, h.stream) != 0
    };
    if !decoded {
        return Err(fail("JPEG 2000 codestream does not decode", &errors));
    }
    // SAFETY: `img.comps` points at `numcomps` components (OpenJPEG's image layout).
    let comps = unsafe { std::slice::from_raw_parts(img.comps, components as usize) };
    let mut precision = 0;
    let signed = comps[0].sgnd != 0;
    let pixels = rows as usize * columns as usize;
    for c in comps {
        if c.dx != 1 || c.dy != 1 || c.w != columns || c.h != rows || c.data.is_null() {
            return Err(J2kError(
                "JPEG 2000 components are subsampled or incomplete (not supported)".into(),
            ));
        }
        if (c.sgnd != 0) != signed {
            return Err(J2kError("JPEG 2000 components differ in signedness".into()));
        }
        precision = precision.max(c.prec);
    }
    if precision == 0 || precision > 32 {
        return Err(J2kError(format!(
            "JPEG 2000 precision {precision} is not supported"
        )));
    }
    let bps = if precision <= 8 {
        1
    } else if precision <= 16 {
        2
    } else {
        4
    };
    let n = components as usize;
    let mut out = vec![0u8; pixels * n * bps];
    for (k, c) in comps.iter().enumerate() {
        // SAFETY: a decoded component holds `w * h` samples (checked equal to `pixels` above).
        let src = unsafe { std::slice::from_raw_parts(c.data, pixels) };
        match bps {
            1 => {
                for (i, &v) in src.iter().enumerate() {
                    out[i * n + k] = v as u8;
                }
            }
            2 => {
                for (i, &v) in src.iter().enumerate() {
                    let at = (i * n + k) * 2;
                    out[at..at + 2].copy_from_slice(&(v as u16).to_ne_bytes());
                }
            }
            _ => {
                for (i, &v) in src.iter().enumerate() {
                    let at = (i * n + k) * 4;
                    out[at..at + 4].copy_from_slice(&v.to_ne_bytes());
                }
            }
        }
    }
    Ok(Decoded {
        rows,
        columns,
        components,
        precision,
        signed,
        bytes_per_sample: bps,
        data: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_jpeg_2000() {
        assert!(decode(b"", None, 1).is_err());
        assert!(decode(b"\xff\xd8\xff\xe0", None, 1).is_err());
        // SOC + SIZ and nothing else: truncated
        let e = decode(&[0xFF, 0x4F, 0xFF, 0x51, 0, 41], None, 1).unwrap_err();
        assert!(e.0.contains("truncated"), "{e}");
        // with an EOC but no readable header
        let e = decode(&[0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0xFF, 0xD9], None, 1).unwrap_err();
        assert!(e.0.contains("header"), "{e}");
        // a JP2 file whose jp2c box runs past the end
        let mut jp2 = JP2_SIGNATURE.to_vec();
        jp2.extend_from_slice(&[0, 0, 1, 0, b'j', b'p', b'2', b'c', 0xFF, 0x4F, 0xFF, 0xD9]);
        assert!(decode(&jp2, None, 1).unwrap_err().0.contains("truncated"));
    }
}
