//! Fuzz the strict parser: any input must end in Stop or a ParseError —
//! never a panic, an out-of-bounds slice, or an allocation the input
//! cannot back — and every op must keep the parser's own invariants.
#![no_main]

use anypickle_parser::{Error, ErrorKind, Op, Parser, SliceSource};
use libfuzzer_sys::fuzz_target;

/// Check one op's argument against the input; true when parsing is over.
fn check(op: Op<'_>, input_len: usize) -> bool {
    let borrowed = match op {
        Op::Stop => return true,
        Op::Str(b)
        | Op::Bytes(b)
        | Op::ByteArray(b)
        | Op::Long(b)
        | Op::Py2Str(b)
        | Op::Py2StrEscaped(b)
        | Op::RawUnicode(b)
        | Op::IntText(b)
        | Op::PersId(b) => b.len(),
        Op::Global { module, name } | Op::Inst { module, name } => module.len() + name.len(),
        Op::Frame(n) => usize::try_from(n).unwrap(),
        Op::Proto(p) => {
            assert!(p <= 5, "unsupported protocol accepted");
            0
        }
        Op::Ext(code) => {
            assert!(code > 0, "EXT code 0 accepted");
            0
        }
        _ => 0,
    };
    assert!(borrowed <= input_len, "{op:?} claims more than the input holds");
    false
}

fuzz_target!(|data: &[u8]| {
    let mut parser = Parser::new(SliceSource::new(data));
    let mut last_offset = None;
    loop {
        let done = match parser.next_op() {
            Ok(op) => check(op, data.len()),
            Err(Error::Parse(e)) => {
                // The error names the opcode it was parsing, inside the input.
                assert!(e.offset <= data.len() as u64);
                assert!(e.kind == ErrorKind::RanOutOfInput || e.opcode.is_some());
                let _ = e.to_string();
                true
            }
            Err(Error::Source(never)) => match never {},
        };
        // Every op consumes at least its opcode byte: nothing loops in place.
        let offset = parser.op_offset();
        assert!(last_offset.is_none_or(|prev| offset > prev));
        last_offset = Some(offset);
        assert!(parser.offset() <= data.len() as u64);
        if done {
            break;
        }
    }
    // The text decoders see arbitrary bytes too.
    let _ = anypickle_parser::text::unescape_bytes(data);
    let _ = anypickle_parser::text::decode_raw_unicode_escape(data);
    let _ = anypickle_parser::text::parse_float(data);
    let _ = anypickle_parser::text::parse_index(data);
});
