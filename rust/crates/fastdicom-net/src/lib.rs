//! DICOM Upper Layer framing (PS3.8 section 9.3.5): P-DATA-TF PDUs.
//!
//! [`send_message`] cuts one message part (a command set or a data set) into
//! P-DATA-TF PDUs of one PDV each and writes them to any [`std::io::Write`]
//! with vectored writes: a 12-byte header and a slice of the caller's buffer,
//! never a copy of the payload. Fragments are even-length (the last may be
//! what is left), the last carries the "last fragment" bit, and the command
//! bit is set for command sets only (command and data never share a PDV).
//! [`parse_pdvs`] lists the PDV items of a received P-DATA-TF body, checking
//! every length against the body. [`receive_data`] is the receiving half of
//! the data plane: it reads P-DATA-TF PDUs and writes the fragments of one
//! data set to a sink in large vectored writes, stopping at the last fragment
//! or at the first thing the association's state machine must see.
//! [`staging`] creates and flushes a Storage SCP's staged files.
#![forbid(unsafe_code)]

pub mod staging;

use std::fmt;
use std::io::{self, IoSlice, Read, Write};

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

/// A PDV item copied out of a received PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedPdv {
    pub context_id: u8,
    pub control: u8,
    pub value: Vec<u8>,
}

/// Why [`receive_data`] returned.
#[derive(Debug)]
pub enum Stop {
    /// The data set's last fragment went to the sink; these PDVs followed it in the same PDU.
    Done(Vec<OwnedPdv>),
    /// A PDV that is not a data fragment on the expected context, with the ones after it.
    Pdvs(Vec<OwnedPdv>),
    /// The header of a PDU that is not P-DATA-TF, or is longer than the limit; its body is unread.
    Header([u8; 6]),
    /// A P-DATA-TF body that does not parse (the message says why).
    Malformed(String),
}

/// What [`receive_data`] did.
#[derive(Debug)]
pub struct Received {
    /// Data set bytes received (written or not).
    pub bytes: u64,
    /// The first error the sink returned; later fragments were drained, not written.
    pub write_error: Option<io::Error>,
    pub stop: Stop,
}

/// A byte source that is told where each PDU starts (a socket resets its deadline there).
pub trait PduRead: Read {
    /// Called before the header of every PDU is read.
    fn begin_pdu(&mut self) {}
}

impl PduRead for &[u8] {}
impl PduRead for io::Cursor<Vec<u8>> {}

/// Bytes gathered before the sink is written (whole PDUs are read into one buffer).
const GATHER: usize = 4 << 20;
/// Slices per vectored write of the sink (IOV_MAX is 1024 on Linux).
const MAX_IOV: usize = 1024;

fn drain_to<W: Write>(
    sink: &mut Option<&mut W>,
    error: &mut Option<io::Error>,
    buf: &[u8],
    ranges: &mut Vec<(usize, usize)>,
) {
    if let Some(w) = sink.as_mut() {
        let mut result = Ok(());
        for chunk in ranges.chunks(MAX_IOV) {
            let mut slices: Vec<IoSlice<'_>> = chunk
                .iter()
                .map(|&(a, b)| IoSlice::new(&buf[a..b]))
                .collect();
            result = write_all_vectored(w, &mut slices);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = w.flush();
        }
        if let Err(e) = result {
            *error = Some(e);
            *sink = None;
        }
    }
    ranges.clear();
}

fn owned(body: &[u8], pdvs: &[Pdv]) -> Vec<OwnedPdv> {
    pdvs.iter()
        .map(|p| OwnedPdv {
            context_id: p.context_id,
            control: p.control,
            value: body[p.offset..p.offset + p.length].to_vec(),
        })
        .collect()
}

/// Receive the fragments of one data set on presentation context `context_id`.
///
/// Reads whole PDUs (a 6-byte header, then exactly its body: nothing past the
/// PDU is consumed), gathers up to 4 MiB of them and writes their data
/// fragments to `sink` in vectored writes, calling `flush` after each batch.
/// `buf` is scratch space the caller may keep between calls (it grows to the
/// batch size, or the largest PDU, and is never cleared).
/// `sink` None drains without writing. A sink error is kept and the rest of
/// the data set is drained, so the association survives a full disk. Stops
/// after the last fragment, or before anything else: a PDU that is not
/// P-DATA-TF or is longer than `max_pdu` (header only), a command PDV or a PDV
/// on another context (that PDV and the rest of its PDU), a malformed body.
/// I/O errors of `r` (closed, timed out) are returned as they come.
pub fn receive_data<R: PduRead, W: Write>(
    r: &mut R,
    mut sink: Option<&mut W>,
    context_id: u8,
    max_pdu: u32,
    buf: &mut Vec<u8>,
) -> io::Result<Received> {
    let mut bytes = 0u64;
    let mut write_error = None;
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    // `buf` keeps its length between PDUs and calls (zeroed once when it grows); `used` is what holds PDUs.
    let mut used = 0usize;
    let stop = loop {
        r.begin_pdu();
        let mut header = [0u8; 6];
        r.read_exact(&mut header)?;
        let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        if header[0] != P_DATA_TF || length > max_pdu {
            drain_to(&mut sink, &mut write_error, buf, &mut ranges);
            break Stop::Header(header);
        }
        let length = length as usize;
        if used > 0 && used + length > GATHER {
            drain_to(&mut sink, &mut write_error, buf, &mut ranges);
            used = 0;
        }
        let start = used;
        used += length;
        if buf.len() < used {
            buf.resize(used, 0);
        }
        r.read_exact(&mut buf[start..used])?;
        let pdvs = match parse_pdvs(&buf[start..used]) {
            Ok(p) => p,
            Err(e) => {
                drain_to(&mut sink, &mut write_error, buf, &mut ranges);
                break Stop::Malformed(e.0);
            }
        };
        let mut stop = None;
        for (k, p) in pdvs.iter().enumerate() {
            if p.context_id != context_id || p.control & 0x01 != 0 {
                stop = Some(Stop::Pdvs(owned(&buf[start..used], &pdvs[k..])));
                break;
            }
            ranges.push((start + p.offset, start + p.offset + p.length));
            bytes += p.length as u64;
            if p.control & 0x02 != 0 {
                stop = Some(Stop::Done(owned(&buf[start..used], &pdvs[k + 1..])));
                break;
            }
        }
        if let Some(stop) = stop {
            drain_to(&mut sink, &mut write_error, buf, &mut ranges);
            break stop;
        }
    };
    Ok(Received {
        bytes,
        write_error,
        stop,
    })
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

    fn pdu(pdvs: &[(u8, u8, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (ctx, control, value) in pdvs {
            body.extend_from_slice(&((value.len() + 2) as u32).to_be_bytes());
            body.push(*ctx);
            body.push(*control);
            body.extend_from_slice(value);
        }
        let mut out = vec![P_DATA_TF, 0];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn receive_writes_fragments_and_keeps_what_follows() {
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        for chunk in payload.chunks(16378) {
            wire.extend_from_slice(&pdu(&[(3, 0x00, chunk)]));
        }
        // the next message's command shares the PDU of the last fragment
        wire.extend_from_slice(&pdu(&[(3, 0x02, b"zz"), (3, 0x03, b"next")]));
        wire.extend_from_slice(&[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
        let mut r = &wire[..];
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let got = receive_data(&mut r, Some(&mut out), 3, 1 << 20, &mut buf).unwrap();
        assert!(got.write_error.is_none());
        assert_eq!(got.bytes, payload.len() as u64 + 2);
        assert_eq!(&out[..payload.len()], &payload[..]);
        assert_eq!(&out[payload.len()..], b"zz");
        match got.stop {
            Stop::Done(rest) => assert_eq!(
                rest,
                vec![OwnedPdv {
                    context_id: 3,
                    control: 3,
                    value: b"next".to_vec()
                }]
            ),
            other => panic!("{other:?}"),
        }
        // nothing past the PDU was read: the A-RELEASE-RQ is still there
        assert_eq!(r.len(), 10);
        let got = receive_data(&mut r, None::<&mut Vec<u8>>, 3, 1 << 20, &mut buf).unwrap();
        assert!(matches!(got.stop, Stop::Header(h) if h[0] == 0x05));
    }

    #[test]
    fn receive_stops_before_what_the_state_machine_must_see() {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        // a PDV on another context
        let wire = [pdu(&[(3, 0, b"ab")]), pdu(&[(5, 0, b"cd")])].concat();
        let got = receive_data(&mut &wire[..], Some(&mut out), 3, 1 << 20, &mut buf).unwrap();
        assert_eq!(out, b"ab");
        assert!(matches!(&got.stop, Stop::Pdvs(p) if p[0].context_id == 5));
        // a PDU longer than the limit: header only
        let wire = pdu(&[(3, 0, &[0u8; 100])]);
        let mut r = &wire[..];
        let got = receive_data(&mut r, Some(&mut out), 3, 50, &mut buf).unwrap();
        assert!(matches!(got.stop, Stop::Header(_)));
        assert_eq!(r.len(), wire.len() - 6);
        // malformed body
        let wire = [P_DATA_TF, 0, 0, 0, 0, 6, 0, 0, 0, 9, 3, 0].to_vec();
        let got = receive_data(&mut &wire[..], Some(&mut out), 3, 1 << 20, &mut buf).unwrap();
        assert!(matches!(got.stop, Stop::Malformed(_)));
        // the connection closes inside a PDU
        let wire = pdu(&[(3, 0, b"abcd")]);
        let err = receive_data(&mut &wire[..9], Some(&mut out), 3, 1 << 20, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_sink_error_drains_the_rest() {
        let payload = vec![7u8; 10_000_000];
        let mut wire = Vec::new();
        send_message(&mut wire, &payload, 1, false, 65536).unwrap();
        let mut buf = Vec::new();
        let got = receive_data(&mut &wire[..], Some(&mut Full), 1, 1 << 20, &mut buf).unwrap();
        assert_eq!(got.bytes, payload.len() as u64);
        assert!(got.write_error.is_some());
        assert!(matches!(got.stop, Stop::Done(ref r) if r.is_empty()));
    }
}
