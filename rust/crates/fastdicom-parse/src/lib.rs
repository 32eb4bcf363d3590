//! Zero-copy tokenizer for DICOM data sets (PS3.5 section 7).
//!
//! The tokenizer reads one level of a data set and returns a [`Record`] per
//! element: its tag, VR, and where its value lies in the buffer. Nothing is
//! copied and no value is decoded. Sequences are not descended into unless
//! their length is undefined, in which case their content is walked (without
//! collecting anything) only to find where they end; [`parse_items`] lists the
//! items of a sequence later, when somebody asks for them.
//!
//! The rules follow PS3.5 and, where files break them, what pydicom does, so
//! that both readers agree on real files:
//! - in an explicit VR data set an element whose VR bytes are not two upper
//!   case letters is read as implicit VR;
//! - each data set (the top level and every item) is checked at its first
//!   element for an explicit/implicit switch; items of an implicit VR data set
//!   stay implicit;
//! - a VR of UN with undefined length holds a sequence in implicit VR little
//!   endian (CP-246);
//! - an item delimitation item ends the data set being read.
//!
//! Every length is checked against the end of its enclosing value before it is
//! used, nesting is limited by [`Options::max_depth`], and the only allocation
//! is the record vector (at most one record per 8 input bytes).
#![forbid(unsafe_code)]

use std::fmt;

pub mod value;

/// The undefined length marker (PS3.5 section 7.1).
pub const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;
/// Item tag (FFFE,E000).
pub const ITEM: u32 = 0xFFFE_E000;
/// Item Delimitation Item tag (FFFE,E00D).
pub const ITEM_DELIMITATION: u32 = 0xFFFE_E00D;
/// Sequence Delimitation Item tag (FFFE,E0DD).
pub const SEQUENCE_DELIMITATION: u32 = 0xFFFE_E0DD;
/// Pixel Data (7FE0,0010).
pub const PIXEL_DATA: u32 = 0x7FE0_0010;
/// Float Pixel Data (7FE0,0008).
pub const FLOAT_PIXEL_DATA: u32 = 0x7FE0_0008;
/// Double Float Pixel Data (7FE0,0009).
pub const DOUBLE_FLOAT_PIXEL_DATA: u32 = 0x7FE0_0009;
/// Default limit on sequence nesting.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// VRs whose explicit VR header has a reserved field and a 32-bit length.
const LONG_VRS: [&[u8; 2]; 13] = [
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV",
];

/// The byte order and VR encoding of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    pub little_endian: bool,
    pub explicit_vr: bool,
}

impl Encoding {
    pub const IMPLICIT_LITTLE: Encoding = Encoding {
        little_endian: true,
        explicit_vr: false,
    };
    pub const EXPLICIT_LITTLE: Encoding = Encoding {
        little_endian: true,
        explicit_vr: true,
    };
    pub const EXPLICIT_BIG: Encoding = Encoding {
        little_endian: false,
        explicit_vr: true,
    };
}

/// Parsing options.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Stop at the first top-level (Float/Double Float) Pixel Data element.
    pub stop_before_pixels: bool,
    /// The deepest nesting of sequences accepted.
    pub max_depth: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stop_before_pixels: false,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// One element of a data set, located in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub tag: u32,
    /// The VR as encoded, or `[0, 0]` when the element was encoded implicit VR.
    pub vr: [u8; 2],
    /// Offset of the element's first byte (its tag).
    pub header_offset: usize,
    /// Offset of the value's first byte.
    pub value_offset: usize,
    /// Length of the value in bytes. For an undefined length, the length of
    /// the content up to (not including) the Sequence Delimitation Item.
    pub value_length: usize,
    /// The value had undefined length.
    pub undefined_length: bool,
}

impl Record {
    /// Offset just past the element (past its delimiter for undefined length).
    pub fn end(&self) -> usize {
        self.value_offset + self.value_length + if self.undefined_length { 8 } else { 0 }
    }
}

/// A parsed data set level.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    /// Offset just past the data set (past its Item Delimitation Item if any).
    pub end: usize,
    /// Whether the tags came in strictly ascending order.
    pub sorted: bool,
    /// Whether the data set turned out to be explicit VR.
    pub explicit_vr: bool,
}

/// An item of a sequence, or a fragment of encapsulated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// Offset of the item tag.
    pub header_offset: usize,
    /// Offset of the item's content.
    pub value_offset: usize,
    /// Length of the content (without an Item Delimitation Item).
    pub value_length: usize,
    pub undefined_length: bool,
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The buffer ends inside an element header or before a delimiter.
    Truncated,
    /// A length points past the end of the enclosing value.
    LengthPastEnd,
    /// Sequences nest deeper than the limit.
    TooDeep,
    /// Something other than an item where an item must be.
    UnexpectedTag,
    /// A fragment of encapsulated data with undefined length.
    UndefinedFragmentLength,
    /// A range handed to the parser lies outside the buffer.
    BadRange,
}

/// A typed parse error that names the tag and byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    pub tag: Option<u32>,
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tag {
            Some(t) => write!(
                f,
                "{} (tag ({:04X},{:04X}) at offset {})",
                self.message,
                t >> 16,
                t & 0xFFFF,
                self.offset
            ),
            None => write!(f, "{} (at offset {})", self.message, self.offset),
        }
    }
}

impl std::error::Error for ParseError {}

fn err(kind: ErrorKind, tag: Option<u32>, offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        kind,
        tag,
        offset,
        message: message.into(),
    }
}

#[inline]
fn u16_at(buf: &[u8], pos: usize, little: bool) -> u16 {
    let b = [buf[pos], buf[pos + 1]];
    if little {
        u16::from_le_bytes(b)
    } else {
        u16::from_be_bytes(b)
    }
}

#[inline]
fn u32_at(buf: &[u8], pos: usize, little: bool) -> u32 {
    let b = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
    if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    }
}

#[inline]
fn tag_at(buf: &[u8], pos: usize, little: bool) -> u32 {
    ((u16_at(buf, pos, little) as u32) << 16) | u16_at(buf, pos + 2, little) as u32
}

#[inline]
fn is_vr_letters(vr: &[u8]) -> bool {
    vr[0].is_ascii_uppercase() && vr[1].is_ascii_uppercase()
}

#[inline]
fn is_long_vr(vr: &[u8; 2]) -> bool {
    LONG_VRS.contains(&vr)
}

/// Where a data set being parsed comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Top,
    Item,
}

/// Parse one level of a data set in `buf[start..end]`.
///
/// With `in_item` the data set is the content of a sequence item: an Item
/// Delimitation Item ends it (undefined length items), and an implicit VR
/// parent keeps it implicit. `depth` is the nesting depth of this data set
/// (0 for the top level).
pub fn parse_dataset(
    buf: &[u8],
    start: usize,
    end: usize,
    encoding: Encoding,
    options: &Options,
    in_item: bool,
    depth: usize,
) -> Result<Parsed, ParseError> {
    if start > end || end > buf.len() {
        return Err(err(
            ErrorKind::BadRange,
            None,
            start,
            "data set range outside the buffer",
        ));
    }
    let mut out = Parsed {
        records: Vec::new(),
        end,
        sorted: true,
        explicit_vr: encoding.explicit_vr,
    };
    let level = if in_item { Level::Item } else { Level::Top };
    let stop = walk_dataset(
        buf,
        start,
        end,
        encoding,
        options,
        level,
        depth,
        Some(&mut out),
    )?;
    out.end = stop;
    Ok(out)
}

/// Decide explicit or implicit VR from the first element, as PS3.5 readers
/// that tolerate broken writers do.
fn detect_explicit(buf: &[u8], start: usize, end: usize, encoding: Encoding, level: Level) -> bool {
    if level == Level::Item && !encoding.explicit_vr {
        return false;
    }
    if end < start + 6 {
        return encoding.explicit_vr;
    }
    is_vr_letters(&buf[start + 4..start + 6])
}

#[allow(clippy::too_many_arguments)]
fn walk_dataset(
    buf: &[u8],
    start: usize,
    end: usize,
    encoding: Encoding,
    options: &Options,
    level: Level,
    depth: usize,
    mut sink: Option<&mut Parsed>,
) -> Result<usize, ParseError> {
    if depth > options.max_depth {
        return Err(err(
            ErrorKind::TooDeep,
            None,
            start,
            format!("sequences nested deeper than {}", options.max_depth),
        ));
    }
    let little = encoding.little_endian;
    let explicit = detect_explicit(buf, start, end, encoding, level);
    if let Some(s) = sink.as_deref_mut() {
        s.explicit_vr = explicit;
    }
    let mut pos = start;
    let mut last_tag: Option<u32> = None;
    loop {
        if pos >= end {
            if level == Level::Item && sink.is_none() {
                // Only reached while skipping an undefined-length item.
                return Err(err(
                    ErrorKind::Truncated,
                    None,
                    pos,
                    "item of undefined length has no Item Delimitation Item",
                ));
            }
            return Ok(pos);
        }
        if end - pos < 8 {
            return Err(err(
                ErrorKind::Truncated,
                None,
                pos,
                "data set ends inside an element header",
            ));
        }
        let tag = tag_at(buf, pos, little);
        let mut vr = [0u8; 2];
        let (length, value_offset) =
            if explicit && (tag >> 16) != 0xFFFE && is_vr_letters(&buf[pos + 4..pos + 6]) {
                vr = [buf[pos + 4], buf[pos + 5]];
                if is_long_vr(&vr) {
                    if end - pos < 12 {
                        return Err(err(
                            ErrorKind::Truncated,
                            Some(tag),
                            pos,
                            "data set ends inside an element header",
                        ));
                    }
                    (u32_at(buf, pos + 8, little), pos + 12)
                } else {
                    (u16_at(buf, pos + 6, little) as u32, pos + 8)
                }
            } else {
                (u32_at(buf, pos + 4, little), pos + 8)
            };

        if tag == ITEM_DELIMITATION {
            // Ends the current data set, wherever it is met.
            return Ok(value_offset);
        }
        if tag == SEQUENCE_DELIMITATION || tag == ITEM {
            if level == Level::Top && tag == SEQUENCE_DELIMITATION && length == 0 {
                // A stray delimiter between top-level elements: skip it.
                pos = value_offset;
                continue;
            }
            return Err(err(
                ErrorKind::UnexpectedTag,
                Some(tag),
                pos,
                "item or delimiter tag outside a sequence",
            ));
        }
        if level == Level::Top
            && depth == 0
            && options.stop_before_pixels
            && (tag == PIXEL_DATA || tag == FLOAT_PIXEL_DATA || tag == DOUBLE_FLOAT_PIXEL_DATA)
        {
            return Ok(pos);
        }

        let (value_length, next, undefined) = if length == UNDEFINED_LENGTH {
            let content_end = if &vr == b"UN" {
                walk_sequence(
                    buf,
                    value_offset,
                    end,
                    Encoding::IMPLICIT_LITTLE,
                    options,
                    depth + 1,
                    tag,
                )?
            } else if tag == PIXEL_DATA || &vr == b"OB" || &vr == b"OW" {
                walk_fragments(buf, value_offset, end, little, tag)?
            } else {
                // SQ, or an implicit VR element of undefined length (a sequence).
                let item_encoding = Encoding {
                    little_endian: little,
                    explicit_vr: explicit,
                };
                walk_sequence(
                    buf,
                    value_offset,
                    end,
                    item_encoding,
                    options,
                    depth + 1,
                    tag,
                )?
            };
            (content_end - value_offset, content_end + 8, true)
        } else {
            let length = length as usize;
            if length > end - value_offset {
                return Err(err(
                    ErrorKind::LengthPastEnd,
                    Some(tag),
                    pos,
                    format!(
                        "value length {} goes past the end of its data set ({} bytes left)",
                        length,
                        end - value_offset
                    ),
                ));
            }
            (length, value_offset + length, false)
        };

        if let Some(s) = sink.as_deref_mut() {
            if let Some(prev) = last_tag {
                if tag <= prev {
                    s.sorted = false;
                }
            }
            s.records.push(Record {
                tag,
                vr,
                header_offset: pos,
                value_offset,
                value_length,
                undefined_length: undefined,
            });
        }
        last_tag = Some(tag);
        pos = next;
    }
}

/// Walk the items of an undefined-length sequence starting at `pos`; return
/// the offset of its Sequence Delimitation Item.
fn walk_sequence(
    buf: &[u8],
    mut pos: usize,
    end: usize,
    encoding: Encoding,
    options: &Options,
    depth: usize,
    owner: u32,
) -> Result<usize, ParseError> {
    if depth > options.max_depth {
        return Err(err(
            ErrorKind::TooDeep,
            Some(owner),
            pos,
            format!("sequences nested deeper than {}", options.max_depth),
        ));
    }
    let little = encoding.little_endian;
    loop {
        if end < pos + 8 {
            return Err(err(
                ErrorKind::Truncated,
                Some(owner),
                pos,
                "sequence of undefined length has no Sequence Delimitation Item",
            ));
        }
        let tag = tag_at(buf, pos, little);
        let length = u32_at(buf, pos + 4, little);
        if tag == SEQUENCE_DELIMITATION {
            return Ok(pos);
        }
        if tag != ITEM {
            return Err(err(
                ErrorKind::UnexpectedTag,
                Some(owner),
                pos,
                format!(
                    "expected an item tag in the sequence, found ({:04X},{:04X})",
                    tag >> 16,
                    tag & 0xFFFF
                ),
            ));
        }
        if length == UNDEFINED_LENGTH {
            pos = walk_dataset(
                buf,
                pos + 8,
                end,
                encoding,
                options,
                Level::Item,
                depth,
                None,
            )?;
        } else {
            let length = length as usize;
            if length > end - (pos + 8) {
                return Err(err(
                    ErrorKind::LengthPastEnd,
                    Some(owner),
                    pos,
                    format!("item length {} goes past the end of the sequence", length),
                ));
            }
            pos += 8 + length;
        }
    }
}

/// Walk the fragments of encapsulated data starting at `pos`; return the
/// offset of the Sequence Delimitation Item.
fn walk_fragments(
    buf: &[u8],
    mut pos: usize,
    end: usize,
    little: bool,
    owner: u32,
) -> Result<usize, ParseError> {
    loop {
        if end < pos + 8 {
            return Err(err(
                ErrorKind::Truncated,
                Some(owner),
                pos,
                "encapsulated data has no Sequence Delimitation Item",
            ));
        }
        let tag = tag_at(buf, pos, little);
        let length = u32_at(buf, pos + 4, little);
        if tag == SEQUENCE_DELIMITATION {
            return Ok(pos);
        }
        if tag != ITEM {
            return Err(err(
                ErrorKind::UnexpectedTag,
                Some(owner),
                pos,
                format!(
                    "expected a fragment item, found ({:04X},{:04X})",
                    tag >> 16,
                    tag & 0xFFFF
                ),
            ));
        }
        if length == UNDEFINED_LENGTH {
            return Err(err(
                ErrorKind::UndefinedFragmentLength,
                Some(owner),
                pos,
                "fragment of encapsulated data with undefined length",
            ));
        }
        let length = length as usize;
        if length > end - (pos + 8) {
            return Err(err(
                ErrorKind::LengthPastEnd,
                Some(owner),
                pos,
                format!("fragment length {} goes past the end of the data", length),
            ));
        }
        pos += 8 + length;
    }
}

/// List the items of a sequence value `buf[start..start + length]`.
///
/// For a sequence of undefined length, `length` is the content length (up to
/// the Sequence Delimitation Item), as in [`Record::value_length`].
/// `encoding` is the encoding of the items (implicit VR little endian for a
/// UN sequence, CP-246). `depth` is the depth of the items' data sets.
pub fn parse_items(
    buf: &[u8],
    start: usize,
    length: usize,
    encoding: Encoding,
    options: &Options,
    depth: usize,
    owner: u32,
) -> Result<Vec<Item>, ParseError> {
    let end = start
        .checked_add(length)
        .filter(|e| *e <= buf.len())
        .ok_or_else(|| {
            err(
                ErrorKind::BadRange,
                Some(owner),
                start,
                "sequence range outside the buffer",
            )
        })?;
    if depth > options.max_depth {
        return Err(err(
            ErrorKind::TooDeep,
            Some(owner),
            start,
            format!("sequences nested deeper than {}", options.max_depth),
        ));
    }
    let little = encoding.little_endian;
    let mut items = Vec::new();
    let mut pos = start;
    while pos < end {
        if end - pos < 8 {
            return Err(err(
                ErrorKind::Truncated,
                Some(owner),
                pos,
                "sequence ends inside an item header",
            ));
        }
        let tag = tag_at(buf, pos, little);
        let raw_length = u32_at(buf, pos + 4, little);
        if tag == SEQUENCE_DELIMITATION {
            // A delimiter inside a defined-length sequence ends it.
            break;
        }
        if tag != ITEM {
            return Err(err(
                ErrorKind::UnexpectedTag,
                Some(owner),
                pos,
                format!(
                    "expected an item tag in the sequence, found ({:04X},{:04X})",
                    tag >> 16,
                    tag & 0xFFFF
                ),
            ));
        }
        if raw_length == UNDEFINED_LENGTH {
            let after = walk_dataset(
                buf,
                pos + 8,
                end,
                encoding,
                options,
                Level::Item,
                depth,
                None,
            )?;
            // `after` is past the Item Delimitation Item (8 bytes).
            items.push(Item {
                header_offset: pos,
                value_offset: pos + 8,
                value_length: after - 8 - (pos + 8),
                undefined_length: true,
            });
            pos = after;
        } else {
            let l = raw_length as usize;
            if l > end - (pos + 8) {
                return Err(err(
                    ErrorKind::LengthPastEnd,
                    Some(owner),
                    pos,
                    format!("item length {} goes past the end of the sequence", l),
                ));
            }
            items.push(Item {
                header_offset: pos,
                value_offset: pos + 8,
                value_length: l,
                undefined_length: false,
            });
            pos += 8 + l;
        }
    }
    Ok(items)
}

/// List the fragments of encapsulated data `buf[start..start + length]`
/// (the content of an undefined-length Pixel Data element). The first
/// fragment is the Basic Offset Table.
pub fn parse_fragments(
    buf: &[u8],
    start: usize,
    length: usize,
    little: bool,
    owner: u32,
) -> Result<Vec<Item>, ParseError> {
    let end = start
        .checked_add(length)
        .filter(|e| *e <= buf.len())
        .ok_or_else(|| {
            err(
                ErrorKind::BadRange,
                Some(owner),
                start,
                "fragment range outside the buffer",
            )
        })?;
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        if end - pos < 8 {
            return Err(err(
                ErrorKind::Truncated,
                Some(owner),
                pos,
                "data ends inside a fragment header",
            ));
        }
        let tag = tag_at(buf, pos, little);
        let l = u32_at(buf, pos + 4, little);
        if tag == SEQUENCE_DELIMITATION {
            break;
        }
        if tag != ITEM {
            return Err(err(
                ErrorKind::UnexpectedTag,
                Some(owner),
                pos,
                format!(
                    "expected a fragment item, found ({:04X},{:04X})",
                    tag >> 16,
                    tag & 0xFFFF
                ),
            ));
        }
        if l == UNDEFINED_LENGTH {
            return Err(err(
                ErrorKind::UndefinedFragmentLength,
                Some(owner),
                pos,
                "fragment of encapsulated data with undefined length",
            ));
        }
        let l = l as usize;
        if l > end - (pos + 8) {
            return Err(err(
                ErrorKind::LengthPastEnd,
                Some(owner),
                pos,
                format!("fragment length {} goes past the end of the data", l),
            ));
        }
        out.push(Item {
            header_offset: pos,
            value_offset: pos + 8,
            value_length: l,
            undefined_length: false,
        });
        pos += 8 + l;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el_ex_le(tag: u32, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
        v.extend_from_slice(&((tag & 0xFFFF) as u16).to_le_bytes());
        v.extend_from_slice(vr);
        if is_long_vr(vr) {
            v.extend_from_slice(&[0, 0]);
            v.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            v.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn explicit_le_two_elements() {
        let mut b = el_ex_le(0x0010_0010, b"PN", b"Doe^John");
        b.extend(el_ex_le(0x0010_0020, b"LO", b"12"));
        let p = parse_dataset(
            &b,
            0,
            b.len(),
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            false,
            0,
        )
        .unwrap();
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.records[0].tag, 0x0010_0010);
        assert_eq!(&p.records[0].vr, b"PN");
        assert_eq!(p.records[0].value_offset, 8);
        assert_eq!(p.records[0].value_length, 8);
        assert_eq!(p.records[1].value_offset, 24);
        assert!(p.sorted);
        assert_eq!(p.end, b.len());
    }

    #[test]
    fn truncated_value_is_an_error() {
        let mut b = el_ex_le(0x0010_0010, b"PN", b"Doe^John");
        b.truncate(12);
        let e = parse_dataset(
            &b,
            0,
            b.len(),
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            false,
            0,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::LengthPastEnd);
        assert_eq!(e.tag, Some(0x0010_0010));
        assert_eq!(e.offset, 0);
    }

    #[test]
    fn undefined_length_sequence() {
        // (0008,1140) SQ undefined, one undefined item holding (0008,1150) UI.
        let mut b = Vec::new();
        b.extend_from_slice(&[
            0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        b.extend(el_ex_le(0x0008_1150, b"UI", b"1.2\0"));
        b.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        b.extend(el_ex_le(0x0010_0010, b"PN", b"A^B "));
        let p = parse_dataset(
            &b,
            0,
            b.len(),
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            false,
            0,
        )
        .unwrap();
        assert_eq!(p.records.len(), 2);
        let sq = p.records[0];
        assert!(sq.undefined_length);
        assert_eq!(sq.end(), p.records[1].header_offset);
        let items = parse_items(
            &b,
            sq.value_offset,
            sq.value_length,
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            1,
            sq.tag,
        )
        .unwrap();
        assert_eq!(items.len(), 1);
        let inner = parse_dataset(
            &b,
            items[0].value_offset,
            items[0].value_offset + items[0].value_length,
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            true,
            1,
        )
        .unwrap();
        assert_eq!(inner.records.len(), 1);
        assert_eq!(inner.records[0].tag, 0x0008_1150);
    }

    #[test]
    fn unterminated_sequence_is_an_error() {
        let mut b = Vec::new();
        b.extend_from_slice(&[
            0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        let e = parse_dataset(
            &b,
            0,
            b.len(),
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            false,
            0,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Truncated);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut b = Vec::new();
        for _ in 0..200 {
            b.extend_from_slice(&[
                0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let e = parse_dataset(
            &b,
            0,
            b.len(),
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            false,
            0,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooDeep);
    }

    #[test]
    fn stop_before_pixels() {
        let mut b = el_ex_le(0x0028_0010, b"US", &[2, 0]);
        b.extend(el_ex_le(PIXEL_DATA, b"OW", &[0, 0, 0, 0]));
        let o = Options {
            stop_before_pixels: true,
            ..Options::default()
        };
        let p = parse_dataset(&b, 0, b.len(), Encoding::EXPLICIT_LITTLE, &o, false, 0).unwrap();
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.end, 10);
    }

    #[test]
    fn fragments() {
        let mut b = Vec::new();
        b.extend_from_slice(&[
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 1, 2, 3, 4]);
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let p = parse_dataset(
            &b,
            0,
            b.len(),
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            false,
            0,
        )
        .unwrap();
        let r = p.records[0];
        let f = parse_fragments(&b, r.value_offset, r.value_length, true, r.tag).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].value_length, 4);
        assert_eq!(&b[f[1].value_offset..f[1].value_offset + 4], &[1, 2, 3, 4]);
    }

    #[test]
    fn implicit_element_inside_explicit() {
        // VR bytes that are not letters: read the element as implicit VR.
        let mut b = el_ex_le(0x0008_0016, b"UI", b"1.2\0");
        b.extend_from_slice(&[0x09, 0x00, 0x10, 0x00, 4, 0, 0, 0, b'a', b'b', b'c', b'd']);
        let p = parse_dataset(
            &b,
            0,
            b.len(),
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            false,
            0,
        )
        .unwrap();
        assert_eq!(p.records[1].vr, [0, 0]);
        assert_eq!(p.records[1].value_length, 4);
    }
}

/// Transfer syntax UIDs whose data set encoding is not explicit VR little endian.
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
pub const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";

/// The File Meta group (group 0002) of a Part 10 file.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// Offset of its first element.
    pub start: usize,
    /// Offset just past its last element.
    pub end: usize,
    /// Its elements.
    pub elements: Parsed,
}

/// A Part 10 file (or raw data set) located in a buffer.
#[derive(Clone, Debug, Default)]
pub struct Opened {
    /// A 128-byte preamble followed by `DICM` was found.
    pub preamble: bool,
    /// The File Meta group, when there is one.
    pub meta: Option<Meta>,
    /// Transfer Syntax UID from File Meta (first value, padding removed).
    pub transfer_syntax: Option<String>,
    pub encoding: Option<Encoding>,
    pub deflated: bool,
    /// Where the data set starts.
    pub body_start: usize,
    /// The top-level data set (None when deflated: it must be inflated first).
    pub body: Option<Parsed>,
}

/// The encoding of a transfer syntax: `(encoding, deflated)`. Every syntax
/// other than implicit VR LE and explicit VR BE encodes explicit VR LE.
pub fn encoding_of(ts: &str) -> (Encoding, bool) {
    match ts {
        IMPLICIT_VR_LITTLE_ENDIAN => (Encoding::IMPLICIT_LITTLE, false),
        EXPLICIT_VR_BIG_ENDIAN => (Encoding::EXPLICIT_BIG, false),
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN => (Encoding::EXPLICIT_LITTLE, true),
        _ => (Encoding::EXPLICIT_LITTLE, false),
    }
}

/// Guess the byte order of a raw data set from its first group number.
pub fn looks_little(buf: &[u8], pos: usize) -> bool {
    if buf.len() < pos + 2 {
        return true;
    }
    let le = u16::from_le_bytes([buf[pos], buf[pos + 1]]);
    let be = u16::from_be_bytes([buf[pos], buf[pos + 1]]);
    !(le > 0xFF && be <= 0xFF)
}

/// Guess explicit VR from the first element's VR bytes.
pub fn looks_explicit(buf: &[u8], pos: usize) -> bool {
    if buf.len() < pos + 6 {
        return true;
    }
    is_vr_letters(&buf[pos + 4..pos + 6])
}

fn plausible_dataset(buf: &[u8], pos: usize) -> bool {
    let le = u16::from_le_bytes([buf[pos], buf[pos + 1]]);
    let be = u16::from_be_bytes([buf[pos], buf[pos + 1]]);
    le.min(be) <= 0x0FFF && le != 0xFFFE && be != 0xFFFE
}

/// End of the File Meta group (group 0002), walked element by element.
fn meta_end_walk(buf: &[u8], mut pos: usize) -> Result<usize, ParseError> {
    let n = buf.len();
    while n - pos >= 8 {
        if u16::from_le_bytes([buf[pos], buf[pos + 1]]) != 0x0002 {
            break;
        }
        let (length, value) = if looks_explicit(buf, pos) {
            let vr = [buf[pos + 4], buf[pos + 5]];
            if is_long_vr(&vr) {
                if n - pos < 12 {
                    break;
                }
                (u32_at(buf, pos + 8, true), pos + 12)
            } else {
                (u16_at(buf, pos + 6, true) as u32, pos + 8)
            }
        } else {
            (u32_at(buf, pos + 4, true), pos + 8)
        };
        if length == UNDEFINED_LENGTH || length as usize > n - value {
            return Err(err(
                ErrorKind::LengthPastEnd,
                None,
                value,
                "File Meta element length goes past the end of the file",
            ));
        }
        pos = value + length as usize;
    }
    Ok(pos)
}

/// Locate and parse a Part 10 file or raw data set: preamble, File Meta,
/// transfer syntax, and the top-level data set.
pub fn open(buf: &[u8], options: &Options) -> Result<Opened, ParseError> {
    let n = buf.len();
    let mut out = Opened::default();
    let mut pos = 0;
    if n >= 132 && &buf[128..132] == b"DICM" {
        out.preamble = true;
        pos = 132;
    } else if n >= 4 && &buf[..4] == b"DICM" {
        pos = 4;
    }
    if n - pos >= 8 && buf[pos] == 0x02 && buf[pos + 1] == 0x00 {
        let mut end = None;
        if n - pos >= 12 && &buf[pos..pos + 6] == b"\x02\x00\x00\x00UL" {
            let cand = pos + 12 + u32_at(buf, pos + 8, true) as usize;
            if cand <= n && (n - cand < 2 || buf[cand..cand + 2] != [0x02, 0x00]) {
                end = Some(cand);
            }
        }
        let end = match end {
            Some(e) => e,
            None => meta_end_walk(buf, pos)?,
        };
        let meta = parse_dataset(
            buf,
            pos,
            end,
            Encoding::EXPLICIT_LITTLE,
            &Options::default(),
            false,
            0,
        )?;
        if let Some(r) = meta.records.iter().find(|r| r.tag == 0x0002_0010) {
            let raw = &buf[r.value_offset..r.value_offset + r.value_length];
            let text: String = raw.iter().map(|&b| b as char).collect();
            let first = text
                .trim_end_matches(['\0', ' '])
                .split('\\')
                .next()
                .unwrap_or("")
                .to_string();
            if !first.is_empty() {
                out.transfer_syntax = Some(first);
            }
        }
        out.meta = Some(Meta {
            start: pos,
            end,
            elements: meta,
        });
        pos = end;
    } else if !out.preamble && n >= 8 && !plausible_dataset(buf, pos) {
        return Err(err(
            ErrorKind::UnexpectedTag,
            None,
            0,
            "not a DICOM file: no preamble, no File Meta, no plausible data set",
        ));
    }
    let (encoding, deflated) = match &out.transfer_syntax {
        Some(ts) => encoding_of(ts),
        None => (
            Encoding {
                little_endian: looks_little(buf, pos),
                explicit_vr: looks_explicit(buf, pos),
            },
            false,
        ),
    };
    out.encoding = Some(encoding);
    out.deflated = deflated;
    out.body_start = pos;
    if !deflated {
        out.body = Some(parse_dataset(buf, pos, n, encoding, options, false, 0)?);
    }
    Ok(out)
}

#[cfg(test)]
mod open_tests {
    use super::*;

    #[test]
    fn part10_with_group_length() {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        let ts = b"1.2.840.10008.1.2\0";
        let mut meta = vec![0x02, 0x00, 0x10, 0x00, b'U', b'I', ts.len() as u8, 0];
        meta.extend_from_slice(ts);
        b.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        b.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        b.extend(meta);
        // implicit VR LE body: (0010,0010) length 4
        b.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 4, 0, 0, 0, b'A', b'^', b'B', b' ']);
        let o = open(&b, &Options::default()).unwrap();
        assert!(o.preamble);
        let meta = o.meta.as_ref().unwrap();
        assert_eq!((meta.start, meta.end), (132, 132 + 12 + 8 + ts.len()));
        assert_eq!(meta.elements.records.len(), 2);
        assert_eq!(o.body_start, meta.end);
        assert_eq!(o.transfer_syntax.as_deref(), Some("1.2.840.10008.1.2"));
        assert_eq!(o.encoding, Some(Encoding::IMPLICIT_LITTLE));
        let body = o.body.unwrap();
        assert_eq!(body.records.len(), 1);
        assert_eq!(body.records[0].value_length, 4);
    }

    #[test]
    fn garbage_is_refused() {
        let e = open(b"\xfe\xff\x00\xe0garbage-garbage", &Options::default()).unwrap_err();
        assert_eq!(e.offset, 0);
    }
}
