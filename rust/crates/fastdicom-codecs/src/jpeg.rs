//! JPEG (ISO 10918-1): baseline, extended 12-bit, lossless (processes 14
//! and SV1, 2 to 16 bits), through libjpeg-turbo 3.
//!
//! libjpeg-turbo is compiled into the extension by `turbojpeg-sys` (cmake and
//! nasm, statically; BSD-style licences). Its libjpeg API reports errors by
//! `longjmp`, so a small C layer (`csrc/fd_jpeg.c`) keeps every jump inside
//! C and hands back a status and a message: no Rust frame is ever jumped
//! over. That layer decides YCbCr or RGB per frame from the markers (the
//! data set's Photometric Interpretation where they are silent), turns the
//! warnings that mean corrupt data into errors, checks the header against the
//! expected frame before decoding, and caps progressive scans. The stream
//! must hold its EOI marker ([`crate::markers::jpeg_end`]); what follows it
//! is padding.

use std::ffi::{c_char, c_int, c_uchar, c_ulong, CStr};

// Link libjpeg-turbo (the C layer calls into it).
extern crate turbojpeg_sys;

/// A codestream that does not decode, or a frame that does not encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JpegError(pub String);

impl std::fmt::Display for JpegError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JpegError {}

#[repr(C)]
struct FdInfo {
    width: c_int,
    height: c_int,
    components: c_int,
    precision: c_int,
    lossless: c_int,
    ycbcr: c_int,
    converted: c_int,
    message: [c_char; 200],
}

impl FdInfo {
    fn new() -> Self {
        FdInfo {
            width: 0,
            height: 0,
            components: 0,
            precision: 0,
            lossless: 0,
            ycbcr: 0,
            converted: 0,
            message: [0; 200],
        }
    }

    fn error(&self) -> JpegError {
        // SAFETY: the C layer always leaves `message` NUL-terminated (snprintf, or zeroed).
        let msg = unsafe { CStr::from_ptr(self.message.as_ptr()) };
        JpegError(msg.to_string_lossy().into_owned())
    }
}

extern "C" {
    fn fd_jpeg_decode(
        data: *const c_uchar,
        len: usize,
        photometric_rgb: c_int,
        keep_ycbcr: c_int,
        out: *mut c_uchar,
        out_len: usize,
        out_itemsize: c_int,
        exp_width: c_int,
        exp_height: c_int,
        exp_components: c_int,
        info: *mut FdInfo,
    ) -> c_int;
    fn fd_jpeg_encode(
        input: *const c_uchar,
        in_len: usize,
        width: c_int,
        height: c_int,
        components: c_int,
        precision: c_int,
        lossless: c_int,
        quality: c_int,
        subsample: c_int,
        out: *mut *mut c_uchar,
        out_len: *mut c_ulong,
        info: *mut FdInfo,
    ) -> c_int;
    fn fd_jpeg_free(p: *mut c_uchar);
}

/// What a decode found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Sample precision of the codestream (2..16).
    pub precision: u32,
    /// A lossless process (SOF3/7/11/15).
    pub lossless: bool,
    /// Three components coded as YCbCr.
    pub ycbcr: bool,
    /// YCbCr was converted to RGB (lossy streams; lossless YCbCr is left to the caller).
    pub converted: bool,
}

/// The start-of-frame header: `(precision, rows, columns, components, lossless)`.
///
/// Read without decoding; `None` when there is no SOF marker before the scan.
pub fn header(data: &[u8]) -> Option<(u32, u32, u32, u32, bool)> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return None;
    }
    let mut pos = 2usize;
    while pos + 4 <= data.len() {
        if data[pos] != 0xFF {
            pos += 1; // stray bytes between markers: skipped, as libjpeg does
            continue;
        }
        let m = data[pos + 1];
        if m == 0xFF {
            pos += 1;
            continue;
        }
        if m == 0xD8 || m == 0x01 || (0xD0..=0xD7).contains(&m) {
            pos += 2;
            continue;
        }
        let seg = usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
        if (0xC0..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC) {
            let body = data.get(pos + 4..pos + 2 + seg)?;
            if body.len() < 6 {
                return None;
            }
            let precision = u32::from(body[0]);
            let rows = u32::from(u16::from_be_bytes([body[1], body[2]]));
            let columns = u32::from(u16::from_be_bytes([body[3], body[4]]));
            let lossless = matches!(m, 0xC3 | 0xC7 | 0xCB | 0xCF);
            return Some((precision, rows, columns, u32::from(body[5]), lossless));
        }
        if m == 0xDA || m == 0xD9 {
            return None;
        }
        pos += 2 + seg;
    }
    None
}

/// Decode one frame into `dst`: `rows * columns * samples` items of
/// `itemsize` bytes (1, or 2 in native order; 8-bit samples are widened into
/// 2-byte items). `photometric_rgb`: the data set says RGB (for streams whose
/// markers are silent). `keep_ycbcr`: leave a lossy YCbCr stream in YCbCr.
pub fn decode_into(
    data: &[u8],
    shape: (u32, u32, u32),
    photometric_rgb: bool,
    keep_ycbcr: bool,
    dst: &mut [u8],
    itemsize: usize,
) -> Result<Decoded, JpegError> {
    let (rows, columns, samples) = shape;
    let dim =
        |v: u32| c_int::try_from(v).map_err(|_| JpegError(format!("dimension {v} too large")));
    let item = c_int::try_from(itemsize).map_err(|_| JpegError("bad item size".into()))?;
    // EOI found by the marker structure; what follows it is padding (PS3.5 A.4)
    let Some(end) = crate::markers::jpeg_end(data) else {
        return Err(JpegError(
            "truncated JPEG codestream: no end-of-image marker (FFD9) at its end".into(),
        ));
    };
    let data = &data[..end];
    let mut info = FdInfo::new();
    // SAFETY: `data` and `dst` are valid for their lengths for the whole call
    // (the C layer reads at most `len` bytes and writes at most `out_len`,
    // having checked `out_len` against the frame), and `info` is a valid
    // FdInfo whose message the C layer NUL-terminates.
    let rc = unsafe {
        fd_jpeg_decode(
            data.as_ptr(),
            data.len(),
            c_int::from(photometric_rgb),
            c_int::from(keep_ycbcr),
            dst.as_mut_ptr(),
            dst.len(),
            item,
            dim(columns)?,
            dim(rows)?,
            dim(samples)?,
            &mut info,
        )
    };
    if rc != 0 {
        return Err(info.error());
    }
    Ok(Decoded {
        precision: u32::try_from(info.precision).unwrap_or(0),
        lossless: info.lossless != 0,
        ycbcr: info.ycbcr != 0,
        converted: info.converted != 0,
    })
}

/// Encoding parameters.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions {
    /// Process 14, selection value 1 (any precision 2..16); otherwise baseline (8 bits).
    pub lossless: bool,
    /// Baseline quality, 1..100.
    pub quality: u8,
    /// Baseline colour: 4:2:2 chroma subsampling (YBR_FULL_422) rather than 4:4:4 (YBR_FULL).
    pub subsample: bool,
}

/// Encode one frame (`rows * columns * samples` interleaved samples: 1 byte
/// each up to 8 bits of `precision`, 2 in native order above). The result
/// has an even length (a zero pad byte after EOI when needed).
pub fn encode(
    data: &[u8],
    shape: (u32, u32, u32),
    precision: u32,
    options: EncodeOptions,
) -> Result<Vec<u8>, JpegError> {
    let (rows, columns, samples) = shape;
    let dim =
        |v: u32| c_int::try_from(v).map_err(|_| JpegError(format!("dimension {v} too large")));
    let mut info = FdInfo::new();
    let mut out: *mut c_uchar = std::ptr::null_mut();
    let mut out_len: c_ulong = 0;
    // SAFETY: `data` is valid for its length (the C layer checks the length
    // against the frame before reading); `out` and `out_len` are written by
    // the C layer, which on success hands over a malloc'd buffer of
    // `out_len` bytes freed below with fd_jpeg_free.
    let rc = unsafe {
        fd_jpeg_encode(
            data.as_ptr(),
            data.len(),
            dim(columns)?,
            dim(rows)?,
            dim(samples)?,
            dim(precision)?,
            c_int::from(options.lossless),
            c_int::from(options.quality),
            c_int::from(options.subsample),
            &mut out,
            &mut out_len,
            &mut info,
        )
    };
    if rc != 0 {
        return Err(info.error());
    }
    let len = usize::try_from(out_len).map_err(|_| JpegError("output too large".into()))?;
    let mut encoded = if out.is_null() {
        Vec::new()
    } else {
        // SAFETY: on success `out` points to `out_len` initialised bytes owned by us until freed.
        let v = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
        // SAFETY: allocated by the C layer's libjpeg memory destination (malloc), freed once.
        unsafe { fd_jpeg_free(out) };
        v
    };
    if encoded.len() % 2 == 1 {
        encoded.push(0);
    }
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(rows: u32, columns: u32, samples: u32, bits: u32) -> Vec<u8> {
        let n = (rows * columns * samples) as usize;
        let mask = (1u32 << bits) - 1;
        if bits <= 8 {
            (0..n).map(|i| ((i as u32 * 7) & mask) as u8).collect()
        } else {
            (0..n)
                .flat_map(|i| (((i as u32 * 37) & mask) as u16).to_ne_bytes())
                .collect()
        }
    }

    #[test]
    fn lossless_round_trips_every_precision() {
        for bits in 2..=16u32 {
            for samples in [1u32, 3] {
                let src = gradient(17, 23, samples, bits);
                let opts = EncodeOptions {
                    lossless: true,
                    quality: 0,
                    subsample: false,
                };
                let enc = encode(&src, (17, 23, samples), bits, opts).unwrap();
                assert_eq!(enc.len() % 2, 0);
                let h = header(&enc).unwrap();
                assert_eq!(h, (bits, 17, 23, samples, true));
                let item = if bits <= 8 { 1 } else { 2 };
                let mut dst = vec![0u8; src.len()];
                let d = decode_into(&enc, (17, 23, samples), true, false, &mut dst, item).unwrap();
                assert_eq!(d.precision, bits);
                assert!(d.lossless && !d.converted);
                assert_eq!(dst, src, "{bits} bits, {samples} samples");
            }
        }
    }

    #[test]
    fn baseline_is_close_and_shape_is_checked() {
        let src: Vec<u8> = (0..64 * 48).map(|i| ((i % 64) * 3) as u8).collect();
        let opts = EncodeOptions {
            lossless: false,
            quality: 95,
            subsample: true,
        };
        let enc = encode(&src, (48, 64, 1), 8, opts).unwrap();
        let mut dst = vec![0u8; src.len()];
        decode_into(&enc, (48, 64, 1), false, false, &mut dst, 1).unwrap();
        let worst = src
            .iter()
            .zip(&dst)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .max();
        assert!(worst.unwrap() <= 8);
        let err = decode_into(&enc, (48, 63, 1), false, false, &mut dst, 1).unwrap_err();
        assert!(err.0.contains("header says"), "{}", err.0);
        // 8-bit samples widened into 2-byte items
        let mut wide = vec![0u8; src.len() * 2];
        decode_into(&enc, (48, 64, 1), false, false, &mut wide, 2).unwrap();
        let narrowed: Vec<u8> = wide
            .chunks(2)
            .map(|c| u16::from_ne_bytes([c[0], c[1]]) as u8)
            .collect();
        assert_eq!(narrowed, dst);
    }

    #[test]
    fn incompressible_frames_grow_the_output_buffer() {
        // xorshift noise: the lossless stream is larger than the raw frame
        let mut x = 0x2545_f491_u32;
        let src: Vec<u8> = (0..256 * 256 * 2)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let opts = EncodeOptions {
            lossless: true,
            quality: 0,
            subsample: false,
        };
        let enc = encode(&src, (256, 256, 1), 16, opts).unwrap();
        assert!(enc.len() > src.len() / 4 + 65536);
        let mut dst = vec![0u8; src.len()];
        decode_into(&enc, (256, 256, 1), false, false, &mut dst, 2).unwrap();
        assert_eq!(dst, src);
        // a stray byte before a marker is skipped by the header reader, as by libjpeg
        let mut stray = enc[..2].to_vec();
        stray.push(0);
        stray.extend_from_slice(&enc[2..]);
        assert_eq!(header(&stray), Some((16, 256, 256, 1, true)));
    }

    #[test]
    fn truncated_and_corrupt_streams_are_errors() {
        let src = gradient(64, 64, 1, 12);
        let opts = EncodeOptions {
            lossless: true,
            quality: 0,
            subsample: false,
        };
        let enc = encode(&src, (64, 64, 1), 12, opts).unwrap();
        let mut dst = vec![0u8; src.len()];
        for cut in [3usize, 10, 100, enc.len() / 2, enc.len() - 4] {
            assert!(
                decode_into(&enc[..cut], (64, 64, 1), true, false, &mut dst, 2).is_err(),
                "cut {cut}"
            );
        }
        assert!(decode_into(b"not a jpeg at all", (64, 64, 1), true, false, &mut dst, 2).is_err());
        assert!(decode_into(&enc, (64, 64, 1), true, false, &mut dst[..10], 2).is_err());
    }
}
