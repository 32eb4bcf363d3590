//! RLE Lossless (1.2.840.10008.1.2.5), PS3.5 Annex G.
//!
//! A frame is a 64-byte header (number of segments, then 15 segment offsets,
//! all little-endian u32) followed by PackBits-coded segments. Segment
//! `s * bytes_per_sample + b` holds byte `b` (most significant first) of
//! sample `s` for every pixel. The decoder writes straight into an
//! interleaved little-endian output: pixel-major, then sample, then byte.
//!
//! Like pydicom, a segment that decodes to more bytes than a plane holds is
//! cut to the plane (odd or over-padded segments); one that decodes to fewer
//! is an error.
#![forbid(unsafe_code)]

use std::fmt;

/// An error decoding RLE data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RleError(pub String);

impl fmt::Display for RleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RleError {}

fn fail<T>(msg: impl Into<String>) -> Result<T, RleError> {
    Err(RleError(msg.into()))
}

/// The segment offsets of an RLE frame header.
pub fn segment_offsets(data: &[u8]) -> Result<Vec<usize>, RleError> {
    if data.len() < 64 {
        return fail(format!(
            "RLE frame of {} bytes is shorter than its 64-byte header",
            data.len()
        ));
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]) as usize
    };
    let n = word(0);
    if n == 0 || n > 15 {
        return fail(format!("RLE header gives {} segments (1 to 15 allowed)", n));
    }
    let offsets: Vec<usize> = (1..=n).map(word).collect();
    for (k, &o) in offsets.iter().enumerate() {
        if o < 64 || o > data.len() {
            return fail(format!(
                "RLE segment {} offset {} is outside the frame ({} bytes)",
                k,
                o,
                data.len()
            ));
        }
        if k > 0 && o < offsets[k - 1] {
            return fail(format!(
                "RLE segment offsets are not increasing at segment {}",
                k
            ));
        }
    }
    Ok(offsets)
}

/// Bytes a fast-path run may write past its end: every run fits in 128.
const SLACK: usize = 128;

/// Decode one PackBits segment into `plane` (contiguous); return how many
/// bytes were written (at most `plane.len()`).
///
/// While at least [`SLACK`] bytes remain in both the segment and the plane,
/// runs are copied or filled in fixed-size blocks (16 bytes for short runs,
/// 128 for long ones) that the compiler turns into a few vector moves, and
/// the bytes past the run are overwritten by the runs that follow. The last
/// runs take the exact, bounds-checked path.
fn decode_segment(seg: &[u8], plane: &mut [u8]) -> usize {
    let count = plane.len();
    let mut i = 0;
    let mut n = 0;
    while i + SLACK + 1 < seg.len() && n + SLACK <= count {
        let h = seg[i];
        i += 1;
        if h < 128 {
            let len = h as usize + 1;
            if len <= 16 {
                plane[n..n + 16].copy_from_slice(&seg[i..i + 16]);
            } else {
                plane[n..n + SLACK].copy_from_slice(&seg[i..i + SLACK]);
            }
            i += len;
            n += len;
        } else if h > 128 {
            let len = 257 - h as usize;
            let v = seg[i];
            if len <= 16 {
                plane[n..n + 16].fill(v);
            } else {
                plane[n..n + SLACK].fill(v);
            }
            i += 1;
            n += len;
        }
    }
    while i < seg.len() && n < count {
        let h = seg[i] as i8;
        i += 1;
        if h >= 0 {
            let len = (h as usize + 1).min(seg.len() - i).min(count - n);
            plane[n..n + len].copy_from_slice(&seg[i..i + len]);
            i += h as usize + 1;
            n += len;
        } else if h != -128 {
            if i >= seg.len() {
                break;
            }
            let len = ((1 - h as isize) as usize).min(count - n);
            plane[n..n + len].fill(seg[i]);
            i += 1;
            n += len;
        }
    }
    n.min(count)
}

/// Interleave a most- and a least-significant byte plane into little-endian u16.
fn interleave2(hi: &[u8], lo: &[u8], out: &mut [u8]) {
    const B: usize = 16;
    let mut oc = out.chunks_exact_mut(2 * B);
    let mut hc = hi.chunks_exact(B);
    let mut lc = lo.chunks_exact(B);
    for ((o, h), l) in (&mut oc).zip(&mut hc).zip(&mut lc) {
        for j in 0..B {
            o[2 * j] = l[j];
            o[2 * j + 1] = h[j];
        }
    }
    for ((o, &h), &l) in oc
        .into_remainder()
        .chunks_exact_mut(2)
        .zip(hc.remainder())
        .zip(lc.remainder())
    {
        o[0] = l;
        o[1] = h;
    }
}

/// The output size of a frame, checked against what the input can hold.
pub fn decoded_size(
    data: &[u8],
    rows: usize,
    columns: usize,
    samples: usize,
    bits_allocated: usize,
) -> Result<usize, RleError> {
    if !matches!(bits_allocated, 8 | 16 | 32 | 64) {
        return fail(format!(
            "RLE decoding of Bits Allocated {} is not supported",
            bits_allocated
        ));
    }
    if samples == 0 || samples > 15 {
        return fail(format!("Samples per Pixel {} is invalid for RLE", samples));
    }
    let total = rows
        .checked_mul(columns)
        .and_then(|p| p.checked_mul(samples * bits_allocated / 8))
        .ok_or_else(|| RleError("frame size overflows".into()))?;
    // PackBits expands at most 128/2 = 64x: refuse sizes the input cannot justify.
    if total > data.len().saturating_mul(64) + 64 {
        return fail(format!(
            "RLE frame of {} bytes cannot decode to {} bytes",
            data.len(),
            total
        ));
    }
    Ok(total)
}

/// Decode one RLE frame into interleaved little-endian pixels.
///
/// `bits_allocated` is 8, 16, 32 or 64; the output holds
/// `rows * columns * samples * bits_allocated / 8` bytes.
pub fn decode_frame(
    data: &[u8],
    rows: usize,
    columns: usize,
    samples: usize,
    bits_allocated: usize,
) -> Result<Vec<u8>, RleError> {
    let total = decoded_size(data, rows, columns, samples, bits_allocated)?;
    let mut out = vec![0u8; total];
    decode_frame_into(data, rows, columns, samples, bits_allocated, &mut out)?;
    Ok(out)
}

thread_local! {
    /// Per-thread scratch planes, reused across frames (fresh pages are costly).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decode one RLE frame into `out` (exactly [`decoded_size`] bytes).
pub fn decode_frame_into(
    data: &[u8],
    rows: usize,
    columns: usize,
    samples: usize,
    bits_allocated: usize,
    out: &mut [u8],
) -> Result<(), RleError> {
    let total = decoded_size(data, rows, columns, samples, bits_allocated)?;
    if out.len() != total {
        return fail(format!(
            "output holds {} bytes, the frame needs {}",
            out.len(),
            total
        ));
    }
    let bpp = bits_allocated / 8;
    let pixels = rows * columns;
    let offsets = segment_offsets(data)?;
    let expected = samples * bpp;
    if offsets.len() != expected {
        return fail(format!(
            "RLE frame has {} segments, {} samples of {} bits need {}",
            offsets.len(),
            samples,
            bits_allocated,
            expected
        ));
    }
    let segment = |k: usize| &data[offsets[k]..offsets.get(k + 1).copied().unwrap_or(data.len())];
    let short = |k: usize, n: usize| {
        fail(format!(
            "RLE segment {} decodes to {} bytes, the plane holds {}",
            k, n, pixels
        ))
    };
    if expected == 1 {
        let n = decode_segment(segment(0), out);
        return if n < pixels { short(0, n) } else { Ok(()) };
    }
    SCRATCH.with(|cell| {
        let mut planes = cell.borrow_mut();
        if planes.len() < total {
            planes.resize(total, 0);
        }
        for k in 0..expected {
            let n = decode_segment(segment(k), &mut planes[k * pixels..(k + 1) * pixels]);
            if n < pixels {
                return short(k, n);
            }
        }
        // Segment k = sample * bpp + byte (most significant first) goes to
        // output byte sample * bpp + (bpp - 1 - byte) of each pixel.
        if expected == 2 {
            let (hi, lo) = planes[..total].split_at(pixels);
            interleave2(hi, lo, out);
        } else {
            for k in 0..expected {
                let dst = (k / bpp) * bpp + (bpp - 1 - k % bpp);
                let plane = &planes[k * pixels..(k + 1) * pixels];
                for (o, &v) in out.chunks_exact_mut(expected).zip(plane) {
                    o[dst] = v;
                }
            }
        }
        Ok(())
    })
}

/// Encode one frame of interleaved little-endian pixels as RLE.
pub fn encode_frame(
    pixels: &[u8],
    rows: usize,
    columns: usize,
    samples: usize,
    bits_allocated: usize,
) -> Result<Vec<u8>, RleError> {
    if !matches!(bits_allocated, 8 | 16 | 32 | 64) {
        return fail(format!(
            "RLE encoding of Bits Allocated {} is not supported",
            bits_allocated
        ));
    }
    let bpp = bits_allocated / 8;
    let n = rows * columns;
    let segments = samples * bpp;
    if segments == 0 || segments > 15 {
        return fail(format!(
            "{} samples of {} bits need {} segments (at most 15)",
            samples, bits_allocated, segments
        ));
    }
    if pixels.len() != n * segments {
        return fail(format!(
            "frame holds {} bytes, expected {}",
            pixels.len(),
            n * segments
        ));
    }
    let mut out = vec![0u8; 64];
    out[0..4].copy_from_slice(&(segments as u32).to_le_bytes());
    let mut plane = vec![0u8; n];
    for k in 0..segments {
        let sample = k / bpp;
        let byte = bpp - 1 - k % bpp;
        for (p, v) in plane.iter_mut().enumerate() {
            *v = pixels[p * segments + sample * bpp + byte];
        }
        let off = out.len() as u32;
        out[4 + 4 * k..8 + 4 * k].copy_from_slice(&off.to_le_bytes());
        // Each row is coded separately (PS3.5 G.3.1).
        for row in plane.chunks(columns.max(1)) {
            packbits_row(row, &mut out);
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
    }
    Ok(out)
}

fn packbits_row(row: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < row.len() {
        let mut run = 1;
        while i + run < row.len() && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 2 {
            out.push((1i16 - run as i16) as i8 as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < row.len() && i - start < 128 {
            if i + 1 < row.len() && row[i + 1] == row[i] {
                break;
            }
            i += 1;
        }
        if i == start {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&row[start..i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain PackBits reading the fast path must agree with.
    fn reference_segment(seg: &[u8], count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < seg.len() && out.len() < count {
            let h = seg[i] as i8;
            i += 1;
            if h >= 0 {
                let end = (i + h as usize + 1).min(seg.len());
                out.extend_from_slice(&seg[i..end]);
                i = end;
            } else if h != -128 && i < seg.len() {
                out.extend(std::iter::repeat_n(seg[i], (1 - h as isize) as usize));
                i += 1;
            }
        }
        out.truncate(count);
        out
    }

    #[test]
    fn fast_path_agrees_with_plain_packbits() {
        let mut seed = 99u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        for round in 0..400 {
            let len = (next() % 3000) as usize;
            // Mix of short and long runs, and pure noise every few rounds.
            let seg: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if round % 5 == 0 {
                        r as u8
                    } else if r % 4 == 0 {
                        (r >> 8) as u8 | 0x80
                    } else {
                        (r >> 8) as u8 % 20
                    }
                })
                .collect();
            for count in [0usize, 1, 100, 1000, 5000, 20000] {
                let expected = reference_segment(&seg, count);
                let mut plane = vec![0xAAu8; count];
                let n = decode_segment(&seg, &mut plane);
                assert_eq!(n, expected.len(), "round {round} count {count}");
                assert_eq!(&plane[..n], &expected[..], "round {round} count {count}");
            }
        }
    }

    #[test]
    fn interleave_any_length() {
        for n in [0usize, 1, 15, 16, 17, 33, 100] {
            let hi: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let lo: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let mut out = vec![0u8; 2 * n];
            interleave2(&hi, &lo, &mut out);
            for i in 0..n {
                assert_eq!(
                    u16::from_le_bytes([out[2 * i], out[2 * i + 1]]),
                    (hi[i] as u16) << 8 | lo[i] as u16
                );
            }
        }
    }

    #[test]
    fn round_trip_every_depth_and_sample_count() {
        let mut seed = 12345u32;
        for &ba in &[8usize, 16, 32] {
            for &s in &[1usize, 3] {
                let (r, c) = (7, 13);
                let n = r * c * s * ba / 8;
                let px: Vec<u8> = (0..n)
                    .map(|i| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        if i % 5 < 2 {
                            7
                        } else {
                            (seed >> 16) as u8
                        }
                    })
                    .collect();
                let enc = encode_frame(&px, r, c, s, ba).unwrap();
                assert_eq!(decode_frame(&enc, r, c, s, ba).unwrap(), px);
            }
        }
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(decode_frame(&[0u8; 10], 2, 2, 1, 8).is_err());
        let mut h = vec![0u8; 64];
        h[0] = 16;
        assert!(decode_frame(&h, 2, 2, 1, 8).is_err());
        h[0] = 1;
        h[4] = 200;
        assert!(decode_frame(&h, 2, 2, 1, 8).is_err());
        h[4] = 64;
        h.extend_from_slice(&[0, 1]); // one literal byte: too short for 4 pixels
        assert!(decode_frame(&h, 2, 2, 1, 8).is_err());
    }
}
