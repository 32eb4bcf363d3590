//! JPEG-LS (ISO 14495-1) lossless and near-lossless, through CharLS 2.4.
//!
//! CharLS is compiled into the extension by the `charls-sys` crate (with
//! cmake, statically; BSD-3-Clause). [`decode`] returns samples interleaved
//! pixel by pixel (a colour frame coded without interleaving, one scan per
//! component, is interleaved here), 1 byte per sample up to 8 bits and 2
//! bytes (native order) above. [`encode`] writes sample-interleaved colour,
//! with preset coding parameters (an LSE segment) when asked.
//!
//! A codestream must hold its EOI marker (FFD9), found by walking its
//! marker structure ([`crate::markers::jpeg_end`]: fill bytes before
//! markers allowed, bit-stuffed scan data skipped); whatever follows EOI is
//! padding and is not given to CharLS, which decodes some truncated streams
//! without complaint.

use charls_sys as ls;
use std::ffi::CStr;

/// A codestream that does not decode, or a frame that does not encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JlsError(pub String);

impl std::fmt::Display for JlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JlsError {}

/// A decoded frame.
#[derive(Debug)]
pub struct Decoded {
    pub rows: u32,
    pub columns: u32,
    pub components: u32,
    pub bits_per_sample: u32,
    /// 1 or 2.
    pub bytes_per_sample: usize,
    /// Interleaved samples, native order.
    pub data: Vec<u8>,
}

fn check(what: &str, e: ls::charls_jpegls_errc) -> Result<(), JlsError> {
    if e == 0 {
        return Ok(());
    }
    // SAFETY: charls_get_error_message returns a pointer to a static NUL-terminated string (or null).
    let msg = unsafe {
        let p = ls::charls_get_error_message(e);
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    Err(JlsError(format!("{what}: {msg} (CharLS error {e})")))
}

// Exported by CharLS 2.4 but not bound by charls-sys 2.4.6 (declared as in charls_jpegls_decoder.h).
extern "C" {
    fn charls_jpegls_decoder_get_interleave_mode(
        decoder: *const ls::charls_jpegls_decoder,
        interleave_mode: *mut ls::charls_interleave_mode,
    ) -> ls::charls_jpegls_errc;
}

/// Largest frame decoded without a caller's shape to check against (1 GiB).
const MAX_UNCHECKED: u64 = 1 << 30;

struct Decoder(*mut ls::charls_jpegls_decoder);

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by charls_jpegls_decoder_create (null is allowed) and destroyed once.
        unsafe { ls::charls_jpegls_decoder_destroy(self.0) };
    }
}

struct Encoder(*mut ls::charls_jpegls_encoder);

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: created by charls_jpegls_encoder_create (null is allowed) and destroyed once.
        unsafe { ls::charls_jpegls_encoder_destroy(self.0) };
    }
}

/// Decode one frame. `expect` is `(rows, columns, components)` when known: a
/// header that disagrees is refused before decoding (or allocating).
pub fn decode(data: &[u8], expect: Option<(u32, u32, u32)>) -> Result<Decoded, JlsError> {
    let input = prepare(data)?;
    let header = read_header(&input.bytes, expect)?;
    let bps = input.bytes_per_sample();
    let mut out = vec![0u8; header.samples() * bps];
    input.decode(&header, expect, &mut out)?;
    Ok(Decoded {
        rows: header.rows,
        columns: header.columns,
        components: header.components,
        bits_per_sample: input.precision,
        bytes_per_sample: bps,
        data: out,
    })
}

/// Decode one frame into `out`, which must hold exactly the frame (rows x
/// columns x components samples of 1 byte up to 8 bits, 2 above): no
/// allocation of ours, except a copy of the planes for colour coded without
/// interleave (and of the samples when an LSE narrows 2-byte samples to a
/// MAXVAL of 8 bits). Returns `(bits per sample, bytes per sample)`.
pub fn decode_into(
    data: &[u8],
    expect: Option<(u32, u32, u32)>,
    out: &mut [u8],
) -> Result<(u32, usize), JlsError> {
    let input = prepare(data)?;
    let header = read_header(&input.bytes, expect)?;
    let bps = input.bytes_per_sample();
    if out.len() != header.samples() * bps {
        return Err(JlsError(format!(
            "destination holds {} bytes, the {}-bit frame {}",
            out.len(),
            input.precision,
            header.samples() * bps
        )));
    }
    input.decode(&header, expect, out)?;
    Ok((input.precision, bps))
}

/// The codestream as CharLS is given it (see [`prepare`]).
struct Input<'a> {
    bytes: std::borrow::Cow<'a, [u8]>,
    /// The sample precision P of the frame header as coded.
    precision: u32,
    /// Given to CharLS at the precision of an LSE MAXVAL below 2^P - 1.
    relabelled: bool,
}

impl Input<'_> {
    fn bytes_per_sample(&self) -> usize {
        if self.precision <= 8 {
            1
        } else {
            2
        }
    }

    /// Decode into `out` (samples of this input's size); a stream CharLS 2.4.2
    /// refuses for a zero byte before the marker that ends a scan is decoded
    /// again without that byte (as CharLS 2.4.3 skips one zero byte there).
    fn decode(
        &self,
        header: &Header<'_>,
        expect: Option<(u32, u32, u32)>,
        out: &mut [u8],
    ) -> Result<(), JlsError> {
        let run = |header: &Header<'_>, out: &mut [u8]| -> Result<(), JlsError> {
            if header.bytes_per_sample() == self.bytes_per_sample() {
                return header.decode_into(out);
            }
            // an LSE MAXVAL of at most 8 bits in a frame of more: CharLS gives bytes, we widen them
            let mut narrow = vec![0u8; header.size()];
            header.decode_into(&mut narrow)?;
            for (w, &b) in out.chunks_exact_mut(2).zip(&narrow) {
                w.copy_from_slice(&u16::from(b).to_ne_bytes());
            }
            Ok(())
        };
        let first = match run(header, out) {
            Err(first) => match without_scan_padding(&self.bytes) {
                Some(fixed) => {
                    let again = read_header(&fixed, expect)?;
                    run(&again, out).map_err(|_| first)
                }
                None => Err(first),
            },
            ok => ok,
        };
        first.map_err(|e| {
            if self.relabelled {
                JlsError(format!(
                    "{e} (its LSE MAXVAL is below 2^P - 1, decoded by T.87's rules: CharLS's encoder codes such a MAXVAL otherwise)"
                ))
            } else {
                e
            }
        })
    }
}

/// Check a codestream and make it what CharLS decodes by T.87's rules.
///
/// - It must start with SOI and hold EOI ([`crate::markers::jpeg_end`]); what
///   follows EOI is padding and is left out.
/// - An LSE segment may set MAXVAL below 2^P - 1. T.87 derives RANGE, the
///   bits per sample and LIMIT from MAXVAL; CharLS 2.4 derives them from P
///   (and clamps predictions with a mask, right only for 2^k - 1). A MAXVAL
///   of 2^k - 1 is therefore given to CharLS as precision k, which codes the
///   same stream; any other MAXVAL below 2^P - 1 is refused rather than
///   decoded into wrong samples.
fn prepare(data: &[u8]) -> Result<Input<'_>, JlsError> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(JlsError("not a JPEG-LS codestream (no SOI marker)".into()));
    }
    let mut sof = None;
    let mut maxvals = Vec::new();
    let end = crate::markers::jpeg_walk(data, |code, _, seg| match code {
        0xF7 if sof.is_none() => sof = Some(seg),
        0xF8 if data.get(seg + 2) == Some(&1) && seg + 5 <= data.len() => {
            maxvals.push(u32::from(u16::from_be_bytes([
                data[seg + 3],
                data[seg + 4],
            ])));
        }
        _ => {}
    });
    let Some(end) = end else {
        return Err(JlsError(
            "truncated JPEG-LS codestream: no end-of-image marker (FFD9) at its end".into(),
        ));
    };
    let data = &data[..end];
    let Some(precision) = sof.and_then(|at| data.get(at + 2)).map(|&p| u32::from(p)) else {
        return Err(JlsError(
            "JPEG-LS codestream without a frame header (SOF55)".into(),
        ));
    };
    let input = |bytes| Input {
        bytes,
        precision,
        relabelled: false,
    };
    if !(2..=16).contains(&precision) {
        return Ok(input(data.into())); // CharLS refuses it
    }
    let full = (1u32 << precision) - 1;
    let narrow: Vec<u32> = maxvals
        .into_iter()
        .filter(|&m| m != 0 && m < full)
        .collect();
    let Some(&maxval) = narrow.first() else {
        return Ok(input(data.into()));
    };
    let k = (maxval + 1).trailing_zeros();
    if narrow.iter().any(|&m| m != maxval) || maxval + 1 != 1 << k || k < 2 {
        return Err(JlsError(format!(
            "JPEG-LS MAXVAL {maxval} (LSE) of a {precision}-bit frame: CharLS decodes only a MAXVAL of 2^k - 1 by T.87's rules"
        )));
    }
    let mut copy = data.to_vec();
    copy[sof.unwrap_or(0) + 2] = k as u8;
    Ok(Input {
        bytes: copy.into(),
        precision,
        relabelled: true,
    })
}

/// `data` without the zero byte that stands before a marker ending a scan
/// (`None` when there is none): CharLS 2.4.2 refuses such a stream with "the
/// leading start byte (0xFF) for a JPEG marker was not found".
fn without_scan_padding(data: &[u8]) -> Option<Vec<u8>> {
    let mut drop = Vec::new();
    let mut in_scan = false;
    crate::markers::jpeg_walk(data, |code, at, _| {
        if in_scan && at >= 2 && data[at - 1] == 0 && data[at - 2] != 0xFF {
            drop.push(at - 1);
        }
        in_scan = code == 0xDA;
    })?;
    if drop.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut from = 0;
    for at in drop {
        out.extend_from_slice(&data[from..at]);
        from = at + 1;
    }
    out.extend_from_slice(&data[from..]);
    Some(out)
}

/// A decoder that has read a frame header.
struct Header<'a> {
    dec: Decoder,
    /// The decoder points into the source: it must outlive the Header.
    _source: std::marker::PhantomData<&'a [u8]>,
    rows: u32,
    columns: u32,
    components: u32,
    bits: u32,
}

impl Header<'_> {
    fn bytes_per_sample(&self) -> usize {
        if self.bits <= 8 {
            1
        } else {
            2
        }
    }

    fn samples(&self) -> usize {
        self.rows as usize * self.columns as usize * self.components as usize
    }

    fn size(&self) -> usize {
        self.samples() * self.bytes_per_sample()
    }

    fn decode_into(&self, out: &mut [u8]) -> Result<(), JlsError> {
        let size = self.size();
        let mut needed = 0usize;
        // SAFETY: live decoder after read_header.
        unsafe {
            check(
                "JPEG-LS size",
                ls::charls_jpegls_decoder_get_destination_size(self.dec.0, 0, &mut needed),
            )?;
        }
        if needed != size || out.len() != size {
            return Err(JlsError(format!(
                "JPEG-LS decoder wants {needed} bytes for a {size}-byte frame"
            )));
        }
        // SAFETY: `out` has exactly `size` writable bytes, the size CharLS asked
        // for; the source buffer is still alive (borrowed for the Header's lifetime).
        unsafe {
            check(
                "JPEG-LS codestream does not decode",
                ls::charls_jpegls_decoder_decode_to_buffer(
                    self.dec.0,
                    out.as_mut_ptr().cast(),
                    size,
                    0,
                ),
            )?;
        }
        if self.components > 1 {
            let mut mode: ls::charls_interleave_mode = 0;
            // SAFETY: live decoder after read_header; `mode` is a valid out-parameter.
            unsafe {
                check(
                    "JPEG-LS interleave mode",
                    charls_jpegls_decoder_get_interleave_mode(self.dec.0, &mut mode),
                )?;
            }
            if mode == ls::charls_interleave_mode_none {
                // One scan per component: CharLS writes planes; DICOM wants pixels.
                let pixels = self.rows as usize * self.columns as usize;
                let planar = out.to_vec();
                interleave_into(
                    &planar,
                    self.components as usize,
                    pixels,
                    self.bytes_per_sample(),
                    out,
                );
            }
        }
        Ok(())
    }
}

fn read_header(data: &[u8], expect: Option<(u32, u32, u32)>) -> Result<Header<'_>, JlsError> {
    // SAFETY: plain constructor; null is checked, ownership goes to `dec`.
    let dec = Decoder(unsafe { ls::charls_jpegls_decoder_create() });
    if dec.0.is_null() {
        return Err(JlsError("CharLS could not create a decoder".into()));
    }
    let mut info = ls::charls_frame_info {
        width: 0,
        height: 0,
        bits_per_sample: 0,
        component_count: 0,
    };
    // SAFETY: live decoder; `data` outlives the decoder (both live in the
    // returned Header, which borrows `data`).
    unsafe {
        check(
            "JPEG-LS source",
            ls::charls_jpegls_decoder_set_source_buffer(dec.0, data.as_ptr().cast(), data.len()),
        )?;
        check(
            "JPEG-LS header",
            ls::charls_jpegls_decoder_read_header(dec.0),
        )?;
        check(
            "JPEG-LS frame",
            ls::charls_jpegls_decoder_get_frame_info(dec.0, &mut info),
        )?;
    }
    let (rows, columns) = (info.height, info.width);
    let components = u32::try_from(info.component_count).unwrap_or(0);
    let bits = u32::try_from(info.bits_per_sample).unwrap_or(0);
    if rows == 0 || columns == 0 || components == 0 || !(2..=16).contains(&bits) {
        return Err(JlsError(
            "JPEG-LS header describes an empty or unsupported frame".into(),
        ));
    }
    let bytes =
        (rows as u64) * (columns as u64) * (components as u64) * if bits <= 8 { 1 } else { 2 };
    match expect {
        Some(shape) if shape != (rows, columns, components) => {
            return Err(JlsError(format!(
                "JPEG-LS header says {rows}x{columns} with {components} components, the data set {}x{} with {}",
                shape.0, shape.1, shape.2
            )));
        }
        None if bytes > MAX_UNCHECKED => {
            return Err(JlsError(
                "JPEG-LS frame too large to decode without a known shape".into(),
            ));
        }
        _ => {}
    }
    if usize::try_from(bytes).is_err() {
        return Err(JlsError("JPEG-LS frame too large".into()));
    }
    Ok(Header {
        dec,
        _source: std::marker::PhantomData,
        rows,
        columns,
        components,
        bits,
    })
}

/// Planes (component after component) to pixel-interleaved samples.
fn interleave_into(planar: &[u8], n: usize, pixels: usize, bps: usize, out: &mut [u8]) {
    for c in 0..n {
        let plane = &planar[c * pixels * bps..(c + 1) * pixels * bps];
        for (i, s) in plane.chunks_exact(bps).enumerate() {
            let at = (i * n + c) * bps;
            out[at..at + bps].copy_from_slice(s);
        }
    }
}

/// JPEG-LS preset coding parameters (T.87 C.2.4.1.1), written in an LSE
/// segment before the scan: MAXVAL, the gradient thresholds T1, T2, T3 and
/// RESET. A field of 0 takes its default (T.87 C.2.4.1.1.1: MAXVAL
/// 2^bits - 1, the thresholds computed from MAXVAL and NEAR, RESET 64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Preset {
    pub maxval: u16,
    pub t1: u16,
    pub t2: u16,
    pub t3: u16,
    pub reset: u16,
}

/// How a frame is coded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coding {
    /// 0 is lossless; otherwise each sample may differ by at most `near`.
    pub near: u32,
    /// Preset coding parameters; `None` (or all defaults) writes none but
    /// what CharLS writes for more than 12 bits (the defaults, for JAI).
    pub preset: Option<Preset>,
}

impl Coding {
    /// Lossless (`near` 0) or near-lossless coding with the default parameters.
    pub fn near(near: u32) -> Self {
        Coding { near, preset: None }
    }
}

/// Encode one frame: `data` holds `rows * columns * components` unsigned
/// samples interleaved, 1 byte (bits <= 8) or 2 (native order) each, none
/// above a preset MAXVAL. The result has an even length (a zero byte pads
/// it after EOI).
pub fn encode(
    data: &[u8],
    rows: u32,
    columns: u32,
    components: u32,
    bits: u32,
    coding: Coding,
) -> Result<Vec<u8>, JlsError> {
    let mut out = Vec::new();
    let n = encode_into(data, rows, columns, components, bits, coding, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// [`encode`] into `out`, scratch space the caller may keep between calls
/// (it grows to CharLS's estimate, zeroed only when it grows). Returns the
/// codestream's length, padded to even: `out[..n]` is the codestream.
pub fn encode_into(
    data: &[u8],
    rows: u32,
    columns: u32,
    components: u32,
    bits: u32,
    coding: Coding,
    out: &mut Vec<u8>,
) -> Result<usize, JlsError> {
    let near = coding.near;
    if !(2..=16).contains(&bits) || !(components == 1 || components == 3) {
        return Err(JlsError(format!(
            "JPEG-LS encoding of {components} components of {bits} bits is not supported"
        )));
    }
    let bps = if bits <= 8 { 1 } else { 2 };
    let size = (rows as usize)
        .checked_mul(columns as usize)
        .and_then(|v| v.checked_mul(components as usize * bps))
        .unwrap_or(usize::MAX);
    if rows == 0 || columns == 0 || data.len() != size {
        return Err(JlsError(
            "pixel data length does not match the frame shape".into(),
        ));
    }
    if near > (1 << bits.min(16)) / 2 {
        return Err(JlsError(format!(
            "NEAR {near} is too large for {bits}-bit samples"
        )));
    }
    let full = (1u32 << bits) - 1;
    let maxval = match coding.preset {
        Some(p) if p.maxval != 0 => u32::from(p.maxval),
        _ => full,
    };
    if maxval > full || (near > 0 && near > maxval / 2) {
        return Err(JlsError(format!(
            "MAXVAL {maxval} with NEAR {near} does not fit {bits}-bit samples"
        )));
    }
    // A MAXVAL below 2^P - 1 is coded at the precision k of MAXVAL = 2^k - 1 (see `prepare`), then
    // the frame header says P and an LSE segment says MAXVAL: the stream T.87 defines.
    let code_bits = if maxval < full {
        let k = (maxval + 1).trailing_zeros();
        if maxval + 1 != 1 << k || k < 2 {
            return Err(JlsError(format!(
                "JPEG-LS MAXVAL {maxval}: CharLS codes only a MAXVAL of 2^k - 1 (k >= 2) by T.87's rules"
            )));
        }
        k
    } else {
        bits
    };
    // Samples above MAXVAL code into garbage.
    let above = maxval < full
        && if bps == 1 {
            data.iter().any(|&v| u32::from(v) > maxval)
        } else {
            data.chunks_exact(2)
                .any(|c| u32::from(u16::from_ne_bytes([c[0], c[1]])) > maxval)
        };
    if above {
        return Err(JlsError(format!("samples above MAXVAL {maxval}")));
    }
    let narrowed: Option<Vec<u8>> = (bps == 2 && code_bits <= 8).then(|| {
        data.chunks_exact(2)
            .map(|c| u16::from_ne_bytes([c[0], c[1]]) as u8)
            .collect()
    });
    let src = narrowed.as_deref().unwrap_or(data);
    // SAFETY: plain constructor; null is checked, ownership goes to `enc`.
    let enc = Encoder(unsafe { ls::charls_jpegls_encoder_create() });
    if enc.0.is_null() {
        return Err(JlsError("CharLS could not create an encoder".into()));
    }
    let info = ls::charls_frame_info {
        width: columns,
        height: rows,
        bits_per_sample: code_bits as i32,
        component_count: components as i32,
    };
    let mut capacity = 0usize;
    // SAFETY: live encoder; `info` and `pc` are valid descriptions read during the calls.
    unsafe {
        check(
            "JPEG-LS frame",
            ls::charls_jpegls_encoder_set_frame_info(enc.0, &info),
        )?;
        check(
            "JPEG-LS NEAR",
            ls::charls_jpegls_encoder_set_near_lossless(enc.0, near as i32),
        )?;
        if let Some(p) = coding.preset {
            let pc = ls::charls_jpegls_pc_parameters {
                maximum_sample_value: if p.maxval == 0 { 0 } else { maxval as i32 },
                threshold1: i32::from(p.t1),
                threshold2: i32::from(p.t2),
                threshold3: i32::from(p.t3),
                reset_value: i32::from(p.reset),
            };
            check(
                "JPEG-LS preset coding parameters",
                ls::charls_jpegls_encoder_set_preset_coding_parameters(enc.0, &pc),
            )?;
        }
        if components > 1 {
            check(
                "JPEG-LS interleave",
                ls::charls_jpegls_encoder_set_interleave_mode(
                    enc.0,
                    ls::charls_interleave_mode_sample,
                ),
            )?;
        }
        check(
            "JPEG-LS size",
            ls::charls_jpegls_encoder_get_estimated_destination_size(enc.0, &mut capacity),
        )?;
    }
    let capacity = capacity + 16; // room for the LSE segment inserted below
    if out.len() < capacity {
        out.resize(capacity, 0);
    }
    let mut written = 0usize;
    // SAFETY: `out` has `capacity` writable bytes and `src` `src.len()`
    // readable ones; both outlive the encoder's use of them (these calls).
    unsafe {
        check(
            "JPEG-LS destination",
            ls::charls_jpegls_encoder_set_destination_buffer(
                enc.0,
                out.as_mut_ptr().cast(),
                capacity - 16,
            ),
        )?;
        check(
            "JPEG-LS encoding failed",
            ls::charls_jpegls_encoder_encode_from_buffer(enc.0, src.as_ptr().cast(), src.len(), 0),
        )?;
        check(
            "JPEG-LS size",
            ls::charls_jpegls_encoder_get_bytes_written(enc.0, &mut written),
        )?;
    }
    if code_bits != bits {
        written = with_precision(out, written, bits, maxval)?;
    }
    if written % 2 == 1 {
        if out.len() == written {
            out.push(0);
        } else {
            out[written] = 0;
        }
        written += 1;
    }
    Ok(written)
}

/// `out[..n]`, a codestream coded at the precision of `maxval`, relabelled
/// as precision `bits` with an LSE segment giving `maxval` (inserted after
/// the frame header unless one is there). Returns the new length.
fn with_precision(out: &mut Vec<u8>, n: usize, bits: u32, maxval: u32) -> Result<usize, JlsError> {
    let (mut sof, mut lse) = (None, false);
    crate::markers::jpeg_walk(&out[..n], |code, _, seg| match code {
        0xF7 => sof = Some(seg),
        0xF8 => lse |= out[seg + 2] == 1,
        _ => {}
    });
    let Some(sof) = sof else {
        return Err(JlsError("CharLS wrote no frame header".into()));
    };
    out[sof + 2] = bits as u8;
    if lse {
        return Ok(n);
    }
    let after = sof + usize::from(u16::from_be_bytes([out[sof], out[sof + 1]]));
    let mut segment = vec![0xFF, 0xF8, 0x00, 0x0D, 0x01];
    segment.extend_from_slice(&(maxval as u16).to_be_bytes());
    segment.extend_from_slice(&[0; 8]); // T1, T2, T3, RESET: the defaults
    out.truncate(n);
    out.splice(after..after, segment);
    Ok(out.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bits: u32, n: usize) -> Vec<u8> {
        let mut state = 0xACE1u32 ^ bits;
        let mut out = Vec::new();
        for i in 0..n {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let smooth = (i as u32 / 7) % (1 << bits);
            let v = (smooth ^ ((state >> 16) & 3)) & ((1 << bits) - 1);
            if bits <= 8 {
                out.push(v as u8);
            } else {
                out.extend_from_slice(&(v as u16).to_ne_bytes());
            }
        }
        out
    }

    #[test]
    fn lossless_round_trips() {
        for (bits, comps) in [(8, 1), (8, 3), (12, 1), (16, 1), (2, 1), (16, 3)] {
            let (rows, cols) = (23u32, 41u32);
            let data = frame(bits, (rows * cols * comps) as usize);
            let cs = encode(&data, rows, cols, comps, bits, Coding::near(0)).unwrap();
            assert_eq!(cs.len() % 2, 0);
            let d = decode(&cs, Some((rows, cols, comps))).unwrap();
            assert_eq!(d.data, data, "bits {bits} components {comps}");
            assert!(decode(&cs[..cs.len() / 2], None).is_err());
            assert!(decode(&cs, Some((rows + 1, cols, comps))).is_err());
        }
    }

    #[test]
    fn near_lossless_stays_within_near() {
        let (rows, cols) = (32u32, 32u32);
        let data = frame(8, 1024);
        let cs = encode(&data, rows, cols, 1, 8, Coding::near(3)).unwrap();
        let d = decode(&cs, None).unwrap();
        let worst = d
            .data
            .iter()
            .zip(&data)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max();
        assert!(worst.unwrap() <= 3);
        assert!(encode(&data, rows, cols, 2, 8, Coding::near(0)).is_err());
    }

    #[test]
    fn planes_become_pixels() {
        let mut out = [0u8; 6];
        interleave_into(&[1, 2, 3, 4, 5, 6], 3, 2, 1, &mut out);
        assert_eq!(out, [1, 3, 5, 2, 4, 6]);
    }

    #[test]
    fn decode_into_checks_the_destination() {
        let data = frame(12, 100);
        let cs = encode(&data, 10, 10, 1, 12, Coding::near(0)).unwrap();
        let mut out = vec![0u8; 200];
        assert_eq!(
            decode_into(&cs, Some((10, 10, 1)), &mut out).unwrap(),
            (12, 2)
        );
        assert_eq!(out, data);
        assert!(decode_into(&cs, None, &mut out[..100]).is_err());
    }

    /// `cs` with `fill` 0xFF bytes before every marker but SOI: the header's
    /// marker segments (walked by their lengths up to SOS) and EOI.
    fn with_fill(cs: &[u8], fill: usize) -> Vec<u8> {
        let end = crate::markers::jpeg_end(cs).unwrap();
        let mut out = cs[..2].to_vec();
        let mut pos = 2;
        loop {
            out.resize(out.len() + fill, 0xFF);
            let len = usize::from(u16::from_be_bytes([cs[pos + 2], cs[pos + 3]]));
            out.extend_from_slice(&cs[pos..pos + 2 + len]);
            let sos = cs[pos + 1] == 0xDA;
            pos += 2 + len;
            if sos {
                break;
            }
        }
        out.extend_from_slice(&cs[pos..end - 2]);
        out.resize(out.len() + fill, 0xFF);
        out.extend_from_slice(&cs[end - 2..]);
        out
    }

    #[test]
    fn padding_after_eoi_and_fill_before_markers() {
        let (rows, cols) = (19u32, 27u32);
        for (bits, comps) in [(8, 1), (16, 1), (12, 3)] {
            let data = frame(bits, (rows * cols * comps) as usize);
            let cs = encode(&data, rows, cols, comps, bits, Coding::near(0)).unwrap();
            let end = crate::markers::jpeg_end(&cs).unwrap();
            for pad in [&[0xFFu8][..], &[0x00], &[0x5A], &[0xFF, 0xD8, 0, 0, 7]] {
                let mut p = cs[..end].to_vec();
                p.extend_from_slice(pad);
                let d = decode(&p, Some((rows, cols, comps))).unwrap();
                assert_eq!(d.data, data, "{bits} bits, pad {pad:?}");
            }
            for fill in [1, 2, 5] {
                let filled = with_fill(&cs, fill);
                assert!(filled.len() > cs.len());
                let d = decode(&filled, Some((rows, cols, comps))).unwrap();
                assert_eq!(d.data, data, "{bits} bits, {fill} fill bytes");
            }
            // cut inside scan data or inside a segment, then padded: refused
            for cut in [3usize, 12, end / 2, end - 3, end - 2, end - 1] {
                for pad in [&[][..], &[0], &[0, 0], &[0xFF], &[0xFF, 0xFF], &[0x5A]] {
                    let mut p = cs[..cut].to_vec();
                    p.extend_from_slice(pad);
                    let e = decode(&p, Some((rows, cols, comps))).unwrap_err();
                    assert!(e.0.contains("truncated"), "cut {cut} pad {pad:?}: {e}");
                }
            }
        }
    }

    /// The LSE segment of preset coding parameters: `(MAXVAL, T1, T2, T3, RESET)`.
    fn lse(cs: &[u8]) -> Option<[u16; 5]> {
        let at = cs.windows(3).position(|w| w == [0xFF, 0xF8, 0x00])?;
        let v = |k: usize| u16::from_be_bytes([cs[at + 5 + 2 * k], cs[at + 6 + 2 * k]]);
        (cs[at + 4] == 1).then(|| [v(0), v(1), v(2), v(3), v(4)])
    }

    /// `n` samples of `bits` bits (1 or 2 bytes each), none above `maxval`.
    fn frame_below(bits: u32, n: usize, maxval: u32) -> Vec<u8> {
        let bps = if bits <= 8 { 1 } else { 2 };
        frame(bits, n)
            .chunks(bps)
            .flat_map(|c| {
                let v = if bps == 1 {
                    u32::from(c[0])
                } else {
                    u32::from(u16::from_ne_bytes([c[0], c[1]]))
                } % (maxval + 1);
                if bps == 1 {
                    vec![v as u8]
                } else {
                    (v as u16).to_ne_bytes().to_vec()
                }
            })
            .collect()
    }

    fn worst(a: &[u8], b: &[u8], bps: usize) -> i32 {
        let get = |c: &[u8]| {
            if c.len() == 1 {
                i32::from(c[0])
            } else {
                i32::from(u16::from_ne_bytes([c[0], c[1]]))
            }
        };
        a.chunks(bps)
            .zip(b.chunks(bps))
            .map(|(x, y)| (get(x) - get(y)).abs())
            .max()
            .unwrap()
    }

    #[test]
    fn preset_coding_parameters_round_trip() {
        let (rows, cols) = (31u32, 37u32);
        for (bits, maxvals) in [
            (8u32, [255u32, 127, 3]),
            (12, [4095, 1023, 255]),
            (16, [65535, 32767, 4095]),
        ] {
            let bps = if bits <= 8 { 1 } else { 2 };
            for maxval in maxvals {
                let data = frame_below(bits, (rows * cols) as usize, maxval);
                for near in [0u32, 1, 3] {
                    if near > maxval / 2 {
                        continue;
                    }
                    let t = |v: u32| v.min(maxval) as u16;
                    let preset = Preset {
                        maxval: maxval as u16,
                        t1: t(near + 2),
                        t2: t(near + 5),
                        t3: t(near + 11),
                        reset: 100,
                    };
                    let coding = Coding {
                        near,
                        preset: Some(preset),
                    };
                    let what = format!("{bits} bits, MAXVAL {maxval}, NEAR {near}");
                    let cs = encode(&data, rows, cols, 1, bits, coding).expect(&what);
                    let lse = lse(&cs).expect(&what);
                    assert_eq!(lse[0], maxval as u16, "{what}");
                    assert_eq!(&lse[1..], [preset.t1, preset.t2, preset.t3, 100], "{what}");
                    assert_eq!(
                        cs[cs.windows(2).position(|w| w == [0xFF, 0xF7]).unwrap() + 4],
                        bits as u8
                    );
                    let d = decode(&cs, Some((rows, cols, 1))).expect(&what);
                    assert_eq!(
                        (d.bits_per_sample, d.bytes_per_sample),
                        (bits, bps),
                        "{what}"
                    );
                    assert!(worst(&d.data, &data, bps) <= near as i32, "{what}");
                }
                // only MAXVAL, the rest the defaults: an LSE segment gives MAXVAL all the same
                let coding = Coding {
                    near: 0,
                    preset: Some(Preset {
                        maxval: maxval as u16,
                        ..Preset::default()
                    }),
                };
                let cs = encode(&data, rows, cols, 1, bits, coding).unwrap();
                if maxval < (1 << bits) - 1 {
                    assert_eq!(lse(&cs).map(|v| v[0]), Some(maxval as u16));
                }
                assert_eq!(decode(&cs, None).unwrap().data, data);
            }
            // MAXVAL not 2^k - 1, samples above MAXVAL, MAXVAL above the precision: refused
            let coding = |maxval| Coding {
                near: 0,
                preset: Some(Preset {
                    maxval,
                    ..Preset::default()
                }),
            };
            let data = frame_below(bits, 64, 100);
            let e = encode(&data, 8, 8, 1, bits, coding(101)).unwrap_err();
            assert!(e.0.contains("2^k - 1"), "{e}");
            let e = encode(&frame(bits, 64), 8, 8, 1, bits, coding(3)).unwrap_err();
            assert!(e.0.contains("above MAXVAL"), "{e}");
            if bits < 16 {
                assert!(encode(&data, 8, 8, 1, bits, coding(1 << bits)).is_err());
            }
        }
    }

    #[test]
    fn a_maxval_charls_cannot_decode_is_refused() {
        // a 12-bit stream with MAXVAL 1023, its LSE edited to say 1000: by T.87 the stream decodes
        // otherwise (RANGE 1001), which CharLS cannot do
        let data = frame_below(12, 100, 1000);
        let coding = Coding {
            near: 0,
            preset: Some(Preset {
                maxval: 1023,
                t1: 5,
                ..Preset::default()
            }),
        };
        let mut cs = encode(&data, 10, 10, 1, 12, coding).unwrap();
        let at = cs.windows(2).position(|w| w == [0xFF, 0xF8]).unwrap();
        cs[at + 5..at + 7].copy_from_slice(&1000u16.to_be_bytes());
        let e = decode(&cs, None).unwrap_err();
        assert!(e.0.contains("MAXVAL 1000"), "{e}");
    }

    #[test]
    fn a_zero_byte_before_eoi_is_decoded() {
        // CharLS 2.4.2 refuses "... 00 FF D9" (the last scan byte, then a zero byte, then EOI)
        for bits in [8u32, 16] {
            let data = frame(bits, 20 * 30);
            let cs = encode(&data, 20, 30, 1, bits, Coding::near(0)).unwrap();
            let end = crate::markers::jpeg_end(&cs).unwrap();
            let mut padded = cs[..end - 2].to_vec();
            padded.extend_from_slice(&[0x00, 0xFF, 0xD9]);
            assert!(without_scan_padding(&cs[..end]).is_none());
            assert_eq!(without_scan_padding(&padded).as_deref(), Some(&cs[..end]));
            assert_eq!(decode(&padded, Some((20, 30, 1))).unwrap().data, data);
            let mut out = vec![0u8; data.len()];
            decode_into(&padded, Some((20, 30, 1)), &mut out).unwrap();
            assert_eq!(out, data);
            // a non-zero byte there is data that CharLS finds too much of: still refused
            padded[end - 2] = 0x7F;
            assert!(decode(&padded, None).is_err());
        }
    }
}
