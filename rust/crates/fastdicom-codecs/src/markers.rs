//! Where a codestream ends: the end marker found by walking the marker
//! structure, so that what follows it is padding and a truncated stream has
//! none. Pure Rust, no `unsafe`; the Python twin is `_check_complete` in
//! `fastdicom/pixels/codecs.py`, which applies the same rules.
//!
//! JPEG (ISO 10918-1) and JPEG-LS (ISO 14495-1), [`jpeg_end`]: after SOI,
//! marker segments are skipped by their lengths; a scan's entropy-coded data
//! runs to the first marker, where 0xFF followed by a byte below 0x80 is not
//! a marker (JPEG's 0xFF00 stuffing, JPEG-LS's bit stuffing) and RSTm
//! markers belong to the scan. Any run of 0xFF fill bytes may precede any
//! marker but SOI (T.81 B.1.1.2, T.87 C.1.1); bytes between marker segments
//! that are not a marker are skipped, as libjpeg skips them. The first EOI
//! found this way ends the stream: a stream cut inside a segment or inside
//! scan data has none, whatever it is padded with.
//!
//! JPEG 2000 (ISO 15444-1, -15), [`j2k_end`]: main header segments by their
//! lengths, then tile-parts by their Psot lengths up to EOC; a last
//! tile-part of Psot 0 runs to the first EOC after its SOD (packet data
//! never holds 0xFF followed by a byte above 0x8F). T.800 has no fill
//! bytes: only what follows EOC is padding.
//!
//! PS3.5 A.4 lets an encoder pad a fragment after the end marker, with any
//! value: everything after the end returned here is padding.

/// The byte after the EOI marker of a JPEG or JPEG-LS codestream, or `None`
/// when walking its structure finds no EOI (truncated, or no SOI first).
pub fn jpeg_end(data: &[u8]) -> Option<usize> {
    jpeg_walk(data, |_, _, _| {})
}

/// [`jpeg_end`], calling `visit(code, at, segment)` for each marker after
/// SOI, EOI included (not the RSTm inside scans): `at` is the marker's first
/// byte (its first fill byte when it has some), `segment` the byte after its
/// code (where a marker segment's length is). The marker that ends a scan is
/// the first one visited after SOS (0xDA).
pub fn jpeg_walk(data: &[u8], mut visit: impl FnMut(u8, usize, usize)) -> Option<usize> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut pos = 2usize;
    loop {
        let (first, at, code) = next_marker(data, pos)?;
        pos = at + 2;
        visit(code, first, pos);
        match code {
            0xD9 => return Some(pos),
            // stand-alone markers: TEM, RSTm, SOI
            0x01 | 0xD0..=0xD8 => {}
            _ => {
                let len = be16(data, pos)?;
                if len < 2 || pos + len > data.len() {
                    return None;
                }
                pos += len;
                if code == 0xDA {
                    pos = scan_end(data, pos)?;
                }
            }
        }
    }
}

/// The next marker at or after `pos`: `(its first 0xFF, its last 0xFF, code)`.
/// Fill bytes (0xFF) before the code are part of the marker; other bytes
/// before it are skipped. `None` when the data ends first.
fn next_marker(data: &[u8], pos: usize) -> Option<(usize, usize, u8)> {
    let first = pos + data.get(pos..)?.iter().position(|&b| b == 0xFF)?;
    let mut at = first;
    loop {
        let code = *data.get(at + 1)?;
        if code != 0xFF {
            return Some((first, at, code));
        }
        at += 1;
    }
}

/// The start of the marker that ends the entropy-coded data starting at `pos`.
fn scan_end(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let (first, at, code) = next_marker(data, pos)?;
        match code {
            0x00..=0x7F | 0xD0..=0xD7 => pos = at + 2,
            _ => return Some(first),
        }
    }
}

fn be16(data: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *data.get(at)?,
        *data.get(at + 1)?,
    ])))
}

/// The byte after the EOC marker of a JPEG 2000 codestream (SOC first; not a
/// JP2 file), or `None` when walking its structure finds no EOC.
pub fn j2k_end(cs: &[u8]) -> Option<usize> {
    if !cs.starts_with(&[0xFF, 0x4F]) {
        return None;
    }
    let mut pos = 2usize;
    loop {
        // main header: marker segments up to the first SOT
        if *cs.get(pos)? != 0xFF {
            return None;
        }
        match *cs.get(pos + 1)? {
            0x90 => break,
            0xD9 => return Some(pos + 2), // no tile at all: the decoder refuses it
            0x30..=0x3F => pos += 2,
            _ => pos = segment_end(cs, pos)?,
        }
    }
    loop {
        // tile-parts: SOT, Lsot, Isot, Psot (4 bytes), TPsot, TNsot
        if *cs.get(pos)? != 0xFF {
            return None;
        }
        match *cs.get(pos + 1)? {
            0xD9 => return Some(pos + 2),
            0x90 => {}
            _ => return None,
        }
        let psot = u32::from_be_bytes(cs.get(pos + 6..pos + 10)?.try_into().ok()?);
        if psot == 0 {
            // the last tile-part, up to EOC: its header to SOD, then the first EOC
            let mut at = segment_end(cs, pos)?;
            loop {
                if *cs.get(at)? != 0xFF {
                    return None;
                }
                if *cs.get(at + 1)? == 0x93 {
                    break;
                }
                at = segment_end(cs, at)?;
            }
            let eoc = cs
                .get(at + 2..)?
                .windows(2)
                .position(|w| w == [0xFF, 0xD9])?;
            return Some(at + 2 + eoc + 2);
        }
        let psot = usize::try_from(psot).ok()?;
        if psot < 14 || psot > cs.len() - pos {
            return None;
        }
        pos += psot;
    }
}

/// The byte after the marker segment at `pos` (its length checked against the data).
fn segment_end(cs: &[u8], pos: usize) -> Option<usize> {
    let len = be16(cs, pos + 2)?;
    if len < 2 || pos + 2 + len > cs.len() {
        return None;
    }
    Some(pos + 2 + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, a COM segment holding FFD9, SOF55, SOS, scan data with both
    /// kinds of stuffing and a restart marker, EOI; `fill` 0xFF bytes before
    /// every marker but SOI.
    fn jls_like(fill: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        let marker = |v: &mut Vec<u8>, bytes: &[u8]| {
            v.resize(v.len() + fill, 0xFF);
            v.extend_from_slice(bytes);
        };
        marker(&mut v, &[0xFF, 0xFE, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9]);
        marker(
            &mut v,
            &[0xFF, 0xF7, 0x00, 0x0B, 8, 0, 1, 0, 1, 1, 1, 0x11, 0],
        );
        marker(&mut v, &[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0, 0]);
        v.extend_from_slice(&[0x12, 0xFF, 0x7F, 0x34, 0xFF, 0x00]);
        marker(&mut v, &[0xFF, 0xD3]);
        v.push(0x56);
        marker(&mut v, &[0xFF, 0xD9]);
        v
    }

    #[test]
    fn the_end_is_found_by_structure() {
        for fill in [0, 1, 3] {
            let v = jls_like(fill);
            assert_eq!(jpeg_end(&v), Some(v.len()));
            for pad in [
                &[0u8][..],
                &[0xFF],
                &[0x12],
                &[0, 0, 0],
                &[0xFF, 0xD8, 0xFF],
            ] {
                let mut p = v.clone();
                p.extend_from_slice(pad);
                assert_eq!(jpeg_end(&p), Some(v.len()), "fill {fill} pad {pad:?}");
            }
        }
        // fill before SOI: not a JPEG stream
        let mut before = vec![0xFF];
        before.extend_from_slice(&jls_like(0));
        assert_eq!(jpeg_end(&before), None);
    }

    #[test]
    fn truncation_is_found() {
        for fill in [0, 2] {
            let v = jls_like(fill);
            for cut in 0..v.len() {
                for pad in [&[][..], &[0], &[0, 0], &[0xFF], &[0xFF, 0xFF], &[0x5A]] {
                    let mut p = v[..cut].to_vec();
                    p.extend_from_slice(pad);
                    assert_eq!(jpeg_end(&p), None, "fill {fill} cut {cut} pad {pad:?}");
                }
            }
        }
    }

    fn j2k_like(psot_zero: bool) -> Vec<u8> {
        let mut v = vec![0xFF, 0x4F];
        v.extend_from_slice(&[0xFF, 0x64, 0x00, 0x06, 0x00, 0x01, 0xFF, 0xD9]); // COM holding FFD9
        let body = [0x80u8, 0xFF, 0x7F, 0x11, 0x22];
        let psot = if psot_zero { 0 } else { 14 + body.len() as u32 };
        v.extend_from_slice(&[0xFF, 0x90, 0x00, 0x0A, 0x00, 0x00]);
        v.extend_from_slice(&psot.to_be_bytes());
        v.extend_from_slice(&[0x00, 0x01, 0xFF, 0x93]);
        v.extend_from_slice(&body);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    #[test]
    fn j2k_end_after_eoc_only() {
        for zero in [false, true] {
            let v = j2k_like(zero);
            assert_eq!(j2k_end(&v), Some(v.len()));
            for pad in [&[0u8][..], &[0xFF], &[0x12, 0x34, 0x56]] {
                let mut p = v.clone();
                p.extend_from_slice(pad);
                assert_eq!(j2k_end(&p), Some(v.len()));
            }
            for cut in 0..v.len() {
                for pad in [&[][..], &[0], &[0xFF], &[0xFF, 0xFF], &[0x5A]] {
                    let mut p = v[..cut].to_vec();
                    p.extend_from_slice(pad);
                    assert_eq!(j2k_end(&p), None, "Psot 0: {zero}, cut {cut} pad {pad:?}");
                }
            }
        }
        // T.800 has no fill bytes: FF FF D9 is no EOC
        let mut v = j2k_like(false);
        let n = v.len();
        v.insert(n - 2, 0xFF);
        assert_eq!(j2k_end(&v), None);
    }
}
