//! DICOM Upper Layer framing (PS3.8 section 9.3.5): P-DATA-TF PDUs.
//!
//! [`send_message`] cuts one message part (a command set or a data set) into
//! P-DATA-TF PDUs of one PDV each and writes them to any [`std::io::Write`]
//! with vectored writes: a 12-byte header and a slice of the caller's buffer,
//! never a copy of the payload. Fragments are even-length (the last may be
//! what is left), the last carries the "last fragment" bit, and the command
//! bit is set for command sets only (command and data never share a PDV).
//! [`parse_pdvs`] lists the PDV items of a received P-DATA-TF body, checking
//! every length against the body.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, IoSlice, Write};

/// PDU type of P-DATA-TF.
pub const P_DATA_TF: u8 = 0x04;

/// The 12 bytes that start a P-DATA-TF PDU holding one PDV of `len` value bytes.
pub fn pdata_header(context_id: u8, control: u8, len: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = P_DATA_TF;
    h[2..6].copy_from_slice(&(len + 6).to_be_bytes());
    h[6..10].copy_from_slice(&(len + 2).to_be_bytes());
    h[10] = context_id;
    h[11] = control;
    h
}

/// The fragment size for a peer's maximum length (0 = unlimited): even, at least 2.
pub fn fragment_size(peer_max_length: u32, unlimited: usize) -> usize {
    let size = if peer_max_length == 0 {
        unlimited
    } else {
        (peer_max_length as usize).saturating_sub(6)
    };
    (size - size % 2).max(2)
}

/// PDUs gathered into one vectored write (two slices each: header and value).
const BATCH: usize = 32;

fn write_all_vectored<W: Write>(w: &mut W, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !bufs.is_empty() {
        let n = w.write_vectored(bufs)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "peer stopped reading",
            ));
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// Write `payload` as P-DATA-TF PDUs on presentation context `context_id`.
///
/// `fragment` is the largest PDV value (see [`fragment_size`]); it must be
/// even. Up to 32 PDUs go out in one vectored write.
pub fn send_message<W: Write>(
    w: &mut W,
    payload: &[u8],
    context_id: u8,
    command: bool,
    fragment: usize,
) -> io::Result<()> {
    if fragment < 2 || !fragment.is_multiple_of(2) || fragment > u32::MAX as usize - 6 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "fragment size must be even, at least 2, and fit a PDU length",
        ));
    }
    let base = u8::from(command);
    let mut pos = 0;
    let mut finished = false;
    while !finished {
        let mut heads = [[0u8; 12]; BATCH];
        let mut ranges = [(0usize, 0usize); BATCH];
        let mut count = 0;
        while count < BATCH && !finished {
            let end = payload.len().min(pos + fragment);
            finished = end == payload.len();
            let control = base | if finished { 0x02 } else { 0x00 };
            heads[count] = pdata_header(context_id, control, (end - pos) as u32);
            ranges[count] = (pos, end);
            count += 1;
            pos = end;
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * count);
        for k in 0..count {
            slices.push(IoSlice::new(&heads[k]));
            slices.push(IoSlice::new(&payload[ranges[k].0..ranges[k].1]));
        }
        write_all_vectored(w, &mut slices)?;
    }
    Ok(())
}

/// A PDV item of a received P-DATA-TF body: where its value lies in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pdv {
    pub context_id: u8,
    pub control: u8,
    pub offset: usize,
    pub length: usize,
}

/// A malformed P-DATA-TF body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PduError(pub String);

impl fmt::Display for PduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PduError {}

/// The PDV items of a P-DATA-TF body (the part after the 6-byte PDU header).
pub fn parse_pdvs(body: &[u8]) -> Result<Vec<Pdv>, PduError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        if pos + 6 > body.len() {
            return Err(PduError("P-DATA-TF: truncated PDV item".into()));
        }
        let n =
            u32::from_be_bytes([body[pos], body[pos + 1], body[pos + 2], body[pos + 3]]) as usize;
        if n < 2 || n > body.len() - pos - 4 {
            return Err(PduError(format!(
                "P-DATA-TF: PDV length {n} does not fit its PDU"
            )));
        }
        let control = body[pos + 5];
        if control & 0xFC != 0 {
            return Err(PduError(format!(
                "P-DATA-TF: message control header {control:02X}H sets reserved bits"
            )));
        }
        out.push(Pdv {
            context_id: body[pos + 4],
            control,
            offset: pos + 6,
            length: n - 2,
        });
        pos += 4 + n;
    }
    if out.is_empty() {
        return Err(PduError("P-DATA-TF without a PDV item".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `chunk` bytes per call, to exercise partial writes.
    struct Trickle {
        out: Vec<u8>,
        chunk: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn reassemble(stream: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut data = Vec::new();
        let mut controls = Vec::new();
        let mut pos = 0;
        while pos < stream.len() {
            assert_eq!(stream[pos], P_DATA_TF);
            let n = u32::from_be_bytes(stream[pos + 2..pos + 6].try_into().unwrap()) as usize;
            for pdv in parse_pdvs(&stream[pos + 6..pos + 6 + n]).unwrap() {
                let body = &stream[pos + 6..];
                data.extend_from_slice(&body[pdv.offset..pdv.offset + pdv.length]);
                controls.push(pdv.control);
            }
            pos += 6 + n;
        }
        (data, controls)
    }

    #[test]
    fn fragments_round_trip_through_partial_writes() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for (fragment, chunk) in [(2usize, 5usize), (16, 3), (4096, 1000), (20_000, 7)] {
            let mut w = Trickle {
                out: Vec::new(),
                chunk,
            };
            send_message(&mut w, &payload, 3, false, fragment).unwrap();
            let (data, controls) = reassemble(&w.out);
            assert_eq!(data, payload);
            assert_eq!(*controls.last().unwrap(), 0x02);
            assert!(controls[..controls.len() - 1].iter().all(|&c| c == 0x00));
            assert_eq!(controls.len(), payload.len().div_ceil(fragment));
        }
        let mut w = Trickle {
            out: Vec::new(),
            chunk: 100,
        };
        send_message(&mut w, b"cmd!", 1, true, 2).unwrap();
        assert_eq!(reassemble(&w.out).1, vec![0x01, 0x03]);
        assert!(send_message(&mut w, b"x", 1, true, 3).is_err());
    }

    #[test]
    fn fragment_sizes() {
        assert_eq!(fragment_size(16384, 1 << 20), 16378);
        assert_eq!(fragment_size(16385, 1 << 20), 16378);
        assert_eq!(fragment_size(0, 1 << 20), 1 << 20);
        assert_eq!(fragment_size(3, 1 << 20), 2);
    }

    #[test]
    fn bad_pdvs() {
        assert!(parse_pdvs(&[]).is_err());
        assert!(parse_pdvs(&[0, 0, 0, 100, 1, 3, 0, 0]).is_err());
        assert!(parse_pdvs(&[0, 0, 0, 2, 1, 0xF3]).is_err());
        assert!(parse_pdvs(&[0, 0, 0, 1, 1, 3]).is_err());
        assert_eq!(
            parse_pdvs(&[0, 0, 0, 4, 1, 3, 9, 9]).unwrap()[0],
            Pdv {
                context_id: 1,
                control: 3,
                offset: 6,
                length: 2
            }
        );
    }
}
