//! JPEG-LS (ISO 14495-1) lossless and near-lossless, through CharLS 2.4.
//!
//! CharLS is compiled into the extension by the `charls-sys` crate (with
//! cmake, statically; BSD-3-Clause). [`decode`] returns samples interleaved
//! pixel by pixel (a colour frame coded without interleaving, one scan per
//! component, is interleaved here), 1 byte per sample up to 8 bits and 2
//! bytes (native order) above. [`encode`] writes sample-interleaved colour.
//! A codestream must end with its EOI marker (FFD9), zero padding aside:
//! CharLS decodes some truncated streams without complaint.

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

/// Ends with EOI (FFD9), zero padding aside.
fn complete(data: &[u8]) -> bool {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    end >= 4 && data[..end].ends_with(&[0xFF, 0xD9])
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
    let header = read_header(data, expect)?;
    let mut out = vec![0u8; header.size()];
    header.decode_into(&mut out)?;
    Ok(Decoded {
        rows: header.rows,
        columns: header.columns,
        components: header.components,
        bits_per_sample: header.bits,
        bytes_per_sample: header.bytes_per_sample(),
        data: out,
    })
}

/// Decode one frame into `out`, which must hold exactly the frame (rows x
/// columns x components samples of 1 byte up to 8 bits, 2 above): no
/// allocation of ours, except a copy of the planes for colour coded without
/// interleave. Returns `(bits per sample, bytes per sample)`.
pub fn decode_into(
    data: &[u8],
    expect: Option<(u32, u32, u32)>,
    out: &mut [u8],
) -> Result<(u32, usize), JlsError> {
    let header = read_header(data, expect)?;
    if out.len() != header.size() {
        return Err(JlsError(format!(
            "destination holds {} bytes, the {}-bit frame {}",
            out.len(),
            header.bits,
            header.size()
        )));
    }
    header.decode_into(out)?;
    Ok((header.bits, header.bytes_per_sample()))
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

    fn size(&self) -> usize {
        self.rows as usize
            * self.columns as usize
            * self.components as usize
            * self.bytes_per_sample()
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
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(JlsError("not a JPEG-LS codestream (no SOI marker)".into()));
    }
    if !complete(data) {
        return Err(JlsError(
            "truncated JPEG-LS codestream: no end-of-image marker (FFD9) at its end".into(),
        ));
    }
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

/// Encode one frame: `data` holds `rows * columns * components` unsigned
/// samples interleaved, 1 byte (bits <= 8) or 2 (native order) each. `near`
/// 0 is lossless; otherwise each sample may differ by at most `near`. The
/// result has an even length (a zero byte pads it after EOI).
pub fn encode(
    data: &[u8],
    rows: u32,
    columns: u32,
    components: u32,
    bits: u32,
    near: u32,
) -> Result<Vec<u8>, JlsError> {
    let mut out = Vec::new();
    let n = encode_into(data, rows, columns, components, bits, near, &mut out)?;
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
    near: u32,
    out: &mut Vec<u8>,
) -> Result<usize, JlsError> {
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
    // SAFETY: plain constructor; null is checked, ownership goes to `enc`.
    let enc = Encoder(unsafe { ls::charls_jpegls_encoder_create() });
    if enc.0.is_null() {
        return Err(JlsError("CharLS could not create an encoder".into()));
    }
    let info = ls::charls_frame_info {
        width: columns,
        height: rows,
        bits_per_sample: bits as i32,
        component_count: components as i32,
    };
    let mut capacity = 0usize;
    // SAFETY: live encoder; `info` is a valid frame description read during the call.
    unsafe {
        check(
            "JPEG-LS frame",
            ls::charls_jpegls_encoder_set_frame_info(enc.0, &info),
        )?;
        check(
            "JPEG-LS NEAR",
            ls::charls_jpegls_encoder_set_near_lossless(enc.0, near as i32),
        )?;
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
    if out.len() < capacity {
        out.resize(capacity, 0);
    }
    let mut written = 0usize;
    // SAFETY: `out` has `capacity` writable bytes and `data` `size` readable
    // ones; both outlive the encoder's use of them (these calls).
    unsafe {
        check(
            "JPEG-LS destination",
            ls::charls_jpegls_encoder_set_destination_buffer(
                enc.0,
                out.as_mut_ptr().cast(),
                capacity,
            ),
        )?;
        check(
            "JPEG-LS encoding failed",
            ls::charls_jpegls_encoder_encode_from_buffer(enc.0, data.as_ptr().cast(), size, 0),
        )?;
        check(
            "JPEG-LS size",
            ls::charls_jpegls_encoder_get_bytes_written(enc.0, &mut written),
        )?;
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
            let cs = encode(&data, rows, cols, comps, bits, 0).unwrap();
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
        let cs = encode(&data, rows, cols, 1, 8, 3).unwrap();
        let d = decode(&cs, None).unwrap();
        let worst = d
            .data
            .iter()
            .zip(&data)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max();
        assert!(worst.unwrap() <= 3);
        assert!(encode(&data, rows, cols, 2, 8, 0).is_err());
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
        let cs = encode(&data, 10, 10, 1, 12, 0).unwrap();
        let mut out = vec![0u8; 200];
        assert_eq!(
            decode_into(&cs, Some((10, 10, 1)), &mut out).unwrap(),
            (12, 2)
        );
        assert_eq!(out, data);
        assert!(decode_into(&cs, None, &mut out[..100]).is_err());
    }
}
