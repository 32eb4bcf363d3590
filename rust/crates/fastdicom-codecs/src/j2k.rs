//! JPEG 2000 decoding (Part 1, and Part 15 High-Throughput) and Part 1
//! encoding through OpenJPEG 2.5.
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
//! codestream (inside its `jp2c` box for JP2) must hold its EOC marker,
//! found by walking the main header and the tile-parts' lengths; whatever
//! follows EOC is padding of any value (PS3.5 A.4; T.800 has no fill bytes). OpenJPEG's own strict mode is left off: in
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
        let left = (data.len() - pos) as u64;
        let len =
            u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as u64;
        let kind = &data[pos + 4..pos + 8];
        let (head, size) = match len {
            0 => (8u64, left),
            1 if pos + 16 <= data.len() => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos + 8..pos + 16]);
                (16, u64::from_be_bytes(b))
            }
            1 => return None,
            n => (8, n),
        };
        // Every box lies within the data and moves the walk forward (no wrap-around).
        if size < head || size > left {
            return None;
        }
        if kind == b"jp2c" {
            return Some(&data[pos + head as usize..pos + size as usize]);
        }
        pos += size as usize;
    }
    None
}

/// Where the codestream ends: the byte after its EOC marker, found by
/// walking its structure ([`crate::markers::j2k_end`]), relative to `data`
/// for a raw codestream and to the `jp2c` box's contents for JP2. `None`
/// when there is no EOC (truncated).
fn complete(data: &[u8]) -> Option<usize> {
    crate::markers::j2k_end(codestream(data)?)
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
    let Some(end) = complete(data) else {
        return Err(J2kError(
            "truncated JPEG 2000 codestream: no end-of-codestream marker (FFD9) at its end".into(),
        ));
    };
    // What follows EOC is padding (PS3.5 A.4): OpenJPEG never sees it (in JP2, the boxes bound it).
    let data = if format == opj::CODEC_FORMAT::OPJ_CODEC_J2K {
        &data[..end]
    } else {
        data
    };
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
        // JP2 palette/channel boxes would let OpenJPEG replace the components after the
        // header was checked (and DICOM forbids the JP2 header anyway): decode the codestream.
        params.flags |= opj::OPJ_DPARAMETERS_IGNORE_PCLR_CMAP_CDEF_FLAG;
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
    // SAFETY: `h.image` is a live image returned by opj_read_header; the values are copied
    // out (no reference is held while OpenJPEG writes to the image below).
    let (columns, rows, components, comps_null) = unsafe {
        let img = &*h.image;
        (
            img.x1.saturating_sub(img.x0),
            img.y1.saturating_sub(img.y0),
            img.numcomps,
            img.comps.is_null(),
        )
    };
    if rows == 0 || columns == 0 || components == 0 || comps_null {
        return Err(J2kError("JPEG 2000 header describes an empty image".into()));
    }
    match expect {
        Some(shape) if shape != (rows, columns, components) => {
            return Err(J2kError(format!(
                "JPEG 2000 header says {rows}x{columns} with {components} components, the data set {}x{} with {}",
                shape.0, shape.1, shape.2
            )));
        }
        None if (rows as u64)
            .checked_mul(columns as u64)
            .and_then(|v| v.checked_mul(components as u64 * 4))
            .is_none_or(|v| v > MAX_UNCHECKED) =>
        {
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
    // SAFETY: the image is live; re-read after decoding, through the raw pointer.
    let (now_components, comps_ptr) = unsafe { ((*h.image).numcomps, (*h.image).comps) };
    if now_components != components || comps_ptr.is_null() {
        return Err(J2kError(
            "JPEG 2000 components changed while decoding".into(),
        ));
    }
    // SAFETY: `comps_ptr` points at `components` components (OpenJPEG's image layout).
    let comps = unsafe { std::slice::from_raw_parts(comps_ptr, components as usize) };
    let mut precision = 0;
    let signed = comps[0].sgnd != 0;
    let pixels = (rows as usize)
        .checked_mul(columns as usize)
        .ok_or_else(|| J2kError("JPEG 2000 image too large".into()))?;
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
    let size = pixels
        .checked_mul(n * bps)
        .ok_or_else(|| J2kError("JPEG 2000 image too large".into()))?;
    let mut out = vec![0u8; size];
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

/// What [`encode`] makes.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions {
    /// 0: lossless (reversible 5/3 wavelet, RCT for three components); otherwise
    /// the target compression ratio of an irreversible (9/7, ICT) codestream.
    pub ratio: f32,
    /// Threads OpenJPEG may use for this frame.
    pub threads: u32,
}

struct Sink {
    out: Vec<u8>,
    pos: usize,
}

unsafe extern "C" fn write_cb(buf: *mut c_void, n: usize, user: *mut c_void) -> usize {
    // SAFETY: `user` is the `Sink` that `encode` registered and keeps alive and
    // exclusively lent to OpenJPEG until the stream is destroyed.
    let sink = unsafe { &mut *(user as *mut Sink) };
    // SAFETY: OpenJPEG passes `n` readable bytes at `buf`.
    let src = unsafe { std::slice::from_raw_parts(buf as *const u8, n) };
    let end = sink.pos + n;
    if sink.out.len() < end {
        sink.out.resize(end, 0);
    }
    sink.out[sink.pos..end].copy_from_slice(src);
    sink.pos = end;
    n
}

unsafe extern "C" fn out_skip_cb(n: i64, user: *mut c_void) -> i64 {
    // SAFETY: as in `write_cb`.
    let sink = unsafe { &mut *(user as *mut Sink) };
    // Only within what was written (the J2K encoder does not skip ahead).
    if n < 0 || n as u64 > (sink.out.len() - sink.pos) as u64 {
        return -1;
    }
    sink.pos += n as usize;
    n
}

unsafe extern "C" fn out_seek_cb(n: i64, user: *mut c_void) -> i32 {
    // SAFETY: as in `write_cb`.
    let sink = unsafe { &mut *(user as *mut Sink) };
    if n < 0 || n as u64 > sink.out.len() as u64 {
        return 0;
    }
    sink.pos = n as usize;
    1
}

/// How the samples of a frame to encode are laid out.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub rows: u32,
    pub columns: u32,
    /// 1 or 3.
    pub components: u32,
    /// 1, 2 or 4 bytes, native order, interleaved pixel by pixel.
    pub bytes_per_sample: usize,
    /// Significant bits (Bits Stored); values must lie in their range.
    pub precision: u32,
    /// Pixel Representation 1.
    pub signed: bool,
}

/// Encode one frame as a J2K codestream (no JP2 wrapper, as DICOM wants).
pub fn encode(data: &[u8], layout: &Layout, options: EncodeOptions) -> Result<Vec<u8>, J2kError> {
    let Layout {
        rows,
        columns,
        components,
        bytes_per_sample,
        precision,
        signed,
    } = *layout;
    if !(components == 1 || components == 3) {
        return Err(J2kError(format!(
            "encoding {components} components is not supported (1 or 3)"
        )));
    }
    if !matches!(bytes_per_sample, 1 | 2 | 4)
        || precision == 0
        || precision as usize > 8 * bytes_per_sample
        || precision > 31
    {
        return Err(J2kError(format!(
            "precision {precision} in {bytes_per_sample}-byte samples is not supported"
        )));
    }
    let pixels = (rows as usize).saturating_mul(columns as usize);
    let n = components as usize;
    if rows == 0 || columns == 0 || pixels.checked_mul(n * bytes_per_sample) != Some(data.len()) {
        return Err(J2kError(
            "pixel data length does not match the frame shape".into(),
        ));
    }
    if options.ratio != 0.0 && !(options.ratio >= 1.0 && options.ratio.is_finite()) {
        return Err(J2kError(
            "the compression ratio must be 0 (lossless) or at least 1".into(),
        ));
    }
    let mut parms: Vec<opj::opj_image_cmptparm_t> = (0..n)
        .map(|_| opj::opj_image_cmptparm_t {
            dx: 1,
            dy: 1,
            w: columns,
            h: rows,
            x0: 0,
            y0: 0,
            prec: precision,
            bpp: precision,
            sgnd: u32::from(signed),
        })
        .collect();
    let space = if n == 3 {
        opj::COLOR_SPACE::OPJ_CLRSPC_SRGB
    } else {
        opj::COLOR_SPACE::OPJ_CLRSPC_GRAY
    };
    // Declared before `h`, so they outlive what OpenJPEG holds pointers to them from.
    let mut errors = String::new();
    let mut sink = Sink {
        out: Vec::with_capacity(data.len() / 2 + 1024),
        pos: 0,
    };
    let mut h = Handles {
        codec: std::ptr::null_mut(),
        stream: std::ptr::null_mut(),
        image: std::ptr::null_mut(),
    };
    // SAFETY: `parms` holds `n` valid component descriptions; the image returned is owned by `h`.
    h.image = unsafe { opj::opj_image_create(components, parms.as_mut_ptr(), space) };
    if h.image.is_null() {
        return Err(J2kError("OpenJPEG could not allocate the image".into()));
    }
    // SAFETY: a live image from opj_image_create with `n` components of `pixels` samples each.
    unsafe {
        let img = &mut *h.image;
        img.x0 = 0;
        img.y0 = 0;
        img.x1 = columns;
        img.y1 = rows;
        let comps = std::slice::from_raw_parts_mut(img.comps, n);
        for (k, c) in comps.iter_mut().enumerate() {
            if c.data.is_null() {
                return Err(J2kError("OpenJPEG could not allocate the image".into()));
            }
            let dst = std::slice::from_raw_parts_mut(c.data, pixels);
            match (bytes_per_sample, signed) {
                (1, false) => dst
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, d)| *d = data[i * n + k] as i32),
                (1, true) => dst
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, d)| *d = data[i * n + k] as i8 as i32),
                (2, s) => dst.iter_mut().enumerate().for_each(|(i, d)| {
                    let at = (i * n + k) * 2;
                    let v = u16::from_ne_bytes([data[at], data[at + 1]]);
                    *d = if s { v as i16 as i32 } else { v as i32 };
                }),
                _ => dst.iter_mut().enumerate().for_each(|(i, d)| {
                    let at = (i * n + k) * 4;
                    *d = i32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
                }),
            }
        }
    }
    // SAFETY: plain constructor; checked for null, owned by `h`.
    h.codec = unsafe { opj::opj_create_compress(opj::CODEC_FORMAT::OPJ_CODEC_J2K) };
    if h.codec.is_null() {
        return Err(J2kError("OpenJPEG could not create an encoder".into()));
    }
    // Resolution levels: 6 by default, fewer for small images (each level halves them).
    let smallest = rows.min(columns);
    let levels = (1..=6)
        .rev()
        .find(|&r| smallest >> (r - 1) >= 1)
        .unwrap_or(1);
    // SAFETY: live codec and image; `errors` outlives the codec (declared before `h`).
    let ok = unsafe {
        let user = &mut errors as *mut String as *mut c_void;
        opj::opj_set_error_handler(h.codec, Some(error_cb), user);
        opj::opj_set_warning_handler(h.codec, Some(quiet_cb), std::ptr::null_mut());
        opj::opj_set_info_handler(h.codec, Some(quiet_cb), std::ptr::null_mut());
        let mut p: opj::opj_cparameters_t = std::mem::zeroed();
        opj::opj_set_default_encoder_parameters(&mut p);
        p.tcp_numlayers = 1;
        p.cp_disto_alloc = 1;
        p.numresolution = levels;
        if options.ratio == 0.0 {
            p.tcp_rates[0] = 0.0;
            p.irreversible = 0;
        } else {
            p.tcp_rates[0] = options.ratio;
            p.irreversible = 1;
        }
        p.tcp_mct = if n == 3 { 1 } else { 0 };
        opj::opj_setup_encoder(h.codec, &mut p, h.image) != 0
    };
    if !ok {
        return Err(fail_with("OpenJPEG refused the encoder set-up", &errors));
    }
    if options.threads > 1 {
        // SAFETY: live codec; failure only means one thread.
        unsafe {
            if opj::opj_has_thread_support() != 0 {
                opj::opj_codec_set_threads(h.codec, options.threads.min(64) as i32);
            }
        }
    }
    // SAFETY: the stream writes through the callbacks above into `sink`, which
    // lives, unmoved, until `h` drops the stream.
    h.stream = unsafe {
        let s = opj::opj_stream_create(1 << 20, 0);
        if !s.is_null() {
            opj::opj_stream_set_write_function(s, Some(write_cb));
            opj::opj_stream_set_skip_function(s, Some(out_skip_cb));
            opj::opj_stream_set_seek_function(s, Some(out_seek_cb));
            opj::opj_stream_set_user_data(s, &mut sink as *mut Sink as *mut c_void, None);
        }
        s
    };
    if h.stream.is_null() {
        return Err(J2kError("OpenJPEG could not create a stream".into()));
    }
    // SAFETY: live codec, image and stream, set up above.
    let done = unsafe {
        opj::opj_start_compress(h.codec, h.image, h.stream) != 0
            && opj::opj_encode(h.codec, h.stream) != 0
            && opj::opj_end_compress(h.codec, h.stream) != 0
    };
    if !done {
        return Err(fail_with("JPEG 2000 encoding failed", &errors));
    }
    drop(h); // the stream was flushed by opj_end_compress; `sink` is ours again
    let mut out = sink.out;
    if out.len() % 2 == 1 {
        out.push(0); // DICOM fragments are even; decoders ignore the padding after EOC
    }
    Ok(out)
}

fn fail_with(what: &str, errors: &str) -> J2kError {
    J2kError(if errors.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {errors}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(
        bps: usize,
        precision: u32,
        signed: bool,
        components: u32,
        rows: u32,
        columns: u32,
    ) {
        let n = (rows * columns * components) as usize;
        let mut state = 0x1234_5678u32 ^ precision ^ (components << 8);
        let mut data = Vec::with_capacity(n * bps);
        for _ in 0..n {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let raw = (state >> 8) as i64;
            let v = if signed {
                (raw % (1i64 << precision)) - (1i64 << (precision - 1))
            } else {
                raw % (1i64 << precision)
            };
            match bps {
                1 => data.push(v as u8),
                2 => data.extend_from_slice(&(v as u16).to_ne_bytes()),
                _ => data.extend_from_slice(&(v as i32).to_ne_bytes()),
            }
        }
        let opts = EncodeOptions {
            ratio: 0.0,
            threads: 1,
        };
        let layout = Layout {
            rows,
            columns,
            components,
            bytes_per_sample: bps,
            precision,
            signed,
        };
        let cs = encode(&data, &layout, opts).unwrap();
        assert_eq!(cs.len() % 2, 0);
        let d = decode(&cs, Some((rows, columns, components)), 1).unwrap();
        assert_eq!(d.signed, signed);
        assert_eq!(d.precision, precision);
        assert_eq!(d.bytes_per_sample, bps);
        assert_eq!(
            d.data, data,
            "bps {bps} precision {precision} signed {signed} components {components}"
        );
    }

    #[test]
    fn lossless_round_trips_are_exact() {
        round_trip(1, 8, false, 1, 33, 47);
        round_trip(1, 8, true, 1, 16, 16);
        round_trip(1, 8, false, 3, 40, 24);
        round_trip(2, 12, false, 1, 64, 64);
        round_trip(2, 12, true, 1, 64, 50);
        round_trip(2, 16, true, 1, 70, 70);
        round_trip(2, 16, false, 1, 3, 5);
        round_trip(2, 16, false, 3, 20, 20);
        round_trip(4, 24, false, 1, 32, 32);
        round_trip(1, 1, false, 1, 1, 1);
    }

    #[test]
    fn lossy_is_close() {
        let (rows, columns) = (64u32, 64u32);
        let data: Vec<u8> = (0..rows * columns).map(|i| ((i % 64) * 4) as u8).collect();
        let opts = EncodeOptions {
            ratio: 5.0,
            threads: 1,
        };
        let mut layout = Layout {
            rows,
            columns,
            components: 1,
            bytes_per_sample: 1,
            precision: 8,
            signed: false,
        };
        let cs = encode(&data, &layout, opts).unwrap();
        assert!(cs.len() < data.len());
        let d = decode(&cs, Some((rows, columns, 1)), 1).unwrap();
        let worst = d
            .data
            .iter()
            .zip(&data)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 16, "{worst}");
        assert!(encode(&data[1..], &layout, opts).is_err());
        layout.components = 2;
        assert!(encode(&data, &layout, opts).is_err());
    }

    #[test]
    fn refuses_what_is_not_jpeg_2000() {
        assert!(decode(b"", None, 1).is_err());
        assert!(decode(b"\xff\xd8\xff\xe0", None, 1).is_err());
        // SOC + SIZ and nothing else: truncated
        let e = decode(&[0xFF, 0x4F, 0xFF, 0x51, 0, 41], None, 1).unwrap_err();
        assert!(e.0.contains("truncated"), "{e}");
        // a SIZ segment that runs past the data: truncated, whatever follows
        let e = decode(&[0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0xFF, 0xD9], None, 1).unwrap_err();
        assert!(e.0.contains("truncated"), "{e}");
        // complete (EOC after the main header) but no readable header
        let e = decode(&[0xFF, 0x4F, 0xFF, 0x51, 0, 4, 0, 0, 0xFF, 0xD9], None, 1).unwrap_err();
        assert!(e.0.contains("header"), "{e}");
        // a JP2 file whose jp2c box runs past the end
        let mut jp2 = JP2_SIGNATURE.to_vec();
        jp2.extend_from_slice(&[0, 0, 1, 0, b'j', b'p', b'2', b'c', 0xFF, 0x4F, 0xFF, 0xD9]);
        assert!(decode(&jp2, None, 1).unwrap_err().0.contains("truncated"));
        // an XL box whose size would wrap the walk around: refused, never a loop
        let mut jp2 = JP2_SIGNATURE.to_vec();
        jp2.extend_from_slice(&[0, 0, 0, 1, b'f', b'r', b'e', b'e']);
        jp2.extend_from_slice(&(u64::MAX - 15).to_be_bytes());
        jp2.extend_from_slice(&[0xFF, 0xD9]);
        assert!(codestream(&jp2).is_none());
        assert!(decode(&jp2, None, 1).is_err());
    }
}
