//! Fuzz the tokenizer: every level, every item, every fragment, in all four
//! encodings. Any input must give Ok or a ParseError: no panic, no hang.
#![no_main]

use fastdicom_parse::{parse_dataset, parse_fragments, parse_items, Encoding, Options, PIXEL_DATA};
use libfuzzer_sys::fuzz_target;

fn walk(data: &[u8], start: usize, end: usize, enc: Encoding, in_item: bool, depth: usize) {
    let opts = Options::default();
    let Ok(p) = parse_dataset(data, start, end, enc, &opts, in_item, depth) else {
        return;
    };
    assert!(p.end <= end);
    for r in &p.records {
        assert!(r.value_offset + r.value_length <= end);
        if r.tag == PIXEL_DATA && r.undefined_length {
            let _ = parse_fragments(data, r.value_offset, r.value_length, enc.little_endian, r.tag);
        } else if &r.vr == b"SQ" || (r.vr == [0, 0] && r.undefined_length) || &r.vr == b"UN" {
            let item_enc = if &r.vr == b"UN" { Encoding::IMPLICIT_LITTLE } else { enc };
            if let Ok(items) = parse_items(data, r.value_offset, r.value_length, item_enc, &opts, depth + 1, r.tag) {
                for it in items {
                    walk(data, it.value_offset, it.value_offset + it.value_length, item_enc, true, depth + 1);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for enc in [Encoding::EXPLICIT_LITTLE, Encoding::IMPLICIT_LITTLE, Encoding::EXPLICIT_BIG] {
        walk(data, 0, data.len(), enc, false, 0);
    }
});
