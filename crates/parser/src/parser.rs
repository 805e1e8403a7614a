//! The strict pickle parser: bytes in, one [`Op`] at a time out.
//!
//! The parser owns everything that can be checked without Python: opcode
//! bytes, argument lengths (checked against the bytes actually present
//! before anything is allocated), text literals, protocol numbers and
//! framing. Framing is strict, as in `pickle.py`: an opcode may not straddle
//! the end of its frame and a frame may not start before the previous one
//! ends, so every reader of these bytes sees the same opcodes.

use std::ops::Range;

use crate::error::{Error, ErrorKind, ParseError};
use crate::op::Op;
use crate::opcodes::*;
use crate::source::Source;
use crate::text;

pub struct Parser<S> {
    source: S,
    /// End offset of the frame being read, if any.
    frame_end: Option<u64>,
    /// The protocol announced by PROTO (0 until one is seen).
    proto: u8,
    /// Offset and byte of the opcode parsed last, for messages.
    op_offset: u64,
    opcode: Option<u8>,
}

type Result<T, E> = std::result::Result<T, Error<E>>;

impl<S: Source> Parser<S> {
    pub fn new(source: S) -> Self {
        Parser {
            source,
            frame_end: None,
            proto: 0,
            op_offset: 0,
            opcode: None,
        }
    }

    /// The protocol announced by the last PROTO opcode (0 if none).
    pub fn proto(&self) -> u8 {
        self.proto
    }

    /// Offset of the opcode parsed last.
    pub fn op_offset(&self) -> u64 {
        self.op_offset
    }

    /// The opcode parsed last (None if the input ended before one).
    pub fn opcode(&self) -> Option<u8> {
        self.opcode
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.source.offset()
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Give back the source (to finish reading a file).
    pub fn into_source(self) -> S {
        self.source
    }

    /// Whether a frame is open and has bytes left.
    pub fn in_frame(&self) -> bool {
        self.frame_end.is_some_and(|end| self.source.offset() < end)
    }

    /// An error at the current opcode.
    pub fn error(&self, kind: ErrorKind) -> ParseError {
        ParseError {
            kind,
            offset: self.op_offset,
            opcode: self.opcode,
        }
    }

    fn fail<T>(&self, kind: ErrorKind) -> Result<T, S::Error> {
        Err(Error::Parse(self.error(kind)))
    }

    /// Check that reading `n` more bytes of the current opcode respects the
    /// frame it is in.
    #[inline(always)]
    fn frame_check(&mut self, n: u64) -> Result<(), S::Error> {
        // `frame_end` is only set here if the opcode byte was inside the
        // frame; its argument must then be inside it too (stricter than
        // pickle.py, which lets an argument start exactly at the frame end).
        if let Some(end) = self.frame_end {
            if n > end.saturating_sub(self.source.offset()) {
                return self.fail(ErrorKind::BadFrame("pickle exhausted before end of frame"));
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<Range<usize>, S::Error> {
        self.frame_check(n as u64)?;
        match self.source.take(n).map_err(Error::Source)? {
            Some(range) => Ok(range),
            None => self.fail(ErrorKind::Truncated),
        }
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], S::Error> {
        let range = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.source.bytes(range));
        Ok(out)
    }

    #[inline(always)]
    fn u8(&mut self) -> Result<u8, S::Error> {
        Ok(self.array::<1>()?[0])
    }

    /// A text line, without its newline.
    fn line(&mut self) -> Result<Range<usize>, S::Error> {
        self.frame_check(1)?;
        let start = self.source.offset();
        let Some(range) = self.source.take_line().map_err(Error::Source)? else {
            return self.fail(ErrorKind::Truncated);
        };
        if let Some(end) = self.frame_end {
            if start <= end && self.source.offset() > end {
                return self.fail(ErrorKind::BadFrame("pickle exhausted before end of frame"));
            }
        }
        Ok(range.start..range.end - 1)
    }

    /// A module or global name line: an empty one counts as truncated data,
    /// as in CPython's C reader.
    fn name_line(&mut self) -> Result<Range<usize>, S::Error> {
        let range = self.line()?;
        if range.is_empty() {
            return self.fail(ErrorKind::Truncated);
        }
        Ok(range)
    }

    /// A byte count from a 4- or 8-byte field, checked against the input.
    fn counted(&mut self, count: u64, what: &str) -> Result<Range<usize>, S::Error> {
        match usize::try_from(count) {
            Ok(n) if n <= isize::MAX as usize => self.take(n),
            _ => self.fail(ErrorKind::Overflow(format!(
                "{what} exceeds system's maximum size of {} bytes",
                isize::MAX
            ))),
        }
    }

    fn bytes(&self, range: Range<usize>) -> &[u8] {
        self.source.bytes(range)
    }

    fn bad_value<T>(&self, msg: impl Into<String>) -> Result<T, S::Error> {
        self.fail(ErrorKind::BadValue(msg.into()))
    }

    /// The next opcode, when its byte is already in memory, without
    /// consuming it (the reader uses this to see that a BUILD follows).
    #[inline(always)]
    pub fn peek_opcode(&self) -> Option<u8> {
        self.source.peek_byte()
    }

    /// Consume an opcode without an argument that `peek_opcode` showed,
    /// with the bookkeeping of `next_op` (offset, frame end); returns it.
    /// Kept apart from `next_op` so that the reader's loop keeps that
    /// inlined.
    pub fn take_peeked_opcode(&mut self) -> Result<u8, S::Error> {
        self.begin_opcode()
    }

    /// Start an opcode: note where it is, leave a finished frame, and read
    /// its byte.
    #[inline(always)]
    fn begin_opcode(&mut self) -> Result<u8, S::Error> {
        self.source.begin_op().map_err(Error::Source)?;
        self.op_offset = self.source.offset();
        self.opcode = None;
        if self.frame_end.is_some_and(|end| self.op_offset >= end) {
            self.frame_end = None;
        }
        let Some(code) = self.source.next_byte().map_err(Error::Source)? else {
            return self.fail(ErrorKind::RanOutOfInput);
        };
        self.opcode = Some(code);
        Ok(code)
    }

    /// Parse the next opcode and its argument.
    pub fn next_op(&mut self) -> Result<Op<'_>, S::Error> {
        let code = self.begin_opcode()?;
        Ok(match code {
            BININT1 => Op::Int(i64::from(self.u8()?)),
            BININT2 => Op::Int(i64::from(u16::from_le_bytes(self.array()?))),
            BININT => Op::Int(i64::from(i32::from_le_bytes(self.array()?))),
            BINFLOAT => Op::Float(f64::from_be_bytes(self.array()?)),
            SHORT_BINUNICODE => {
                let n = self.u8()?;
                let r = self.take(usize::from(n))?;
                Op::Str(self.bytes(r))
            }
            BINUNICODE => {
                let n = u32::from_le_bytes(self.array()?);
                let r = self.counted(u64::from(n), "BINUNICODE")?;
                Op::Str(self.bytes(r))
            }
            BINUNICODE8 => {
                let n = u64::from_le_bytes(self.array()?);
                let r = self.counted(n, "BINUNICODE8")?;
                Op::Str(self.bytes(r))
            }
            SHORT_BINBYTES => {
                let n = self.u8()?;
                let r = self.take(usize::from(n))?;
                Op::Bytes(self.bytes(r))
            }
            BINBYTES => {
                let n = u32::from_le_bytes(self.array()?);
                let r = self.counted(u64::from(n), "BINBYTES")?;
                Op::Bytes(self.bytes(r))
            }
            BINBYTES8 => {
                let n = u64::from_le_bytes(self.array()?);
                let r = self.counted(n, "BINBYTES8")?;
                Op::Bytes(self.bytes(r))
            }
            BYTEARRAY8 => {
                let n = u64::from_le_bytes(self.array()?);
                let r = self.counted(n, "BYTEARRAY8")?;
                Op::ByteArray(self.bytes(r))
            }
            SHORT_BINSTRING => {
                let n = self.u8()?;
                let r = self.take(usize::from(n))?;
                Op::Py2Str(self.bytes(r))
            }
            BINSTRING => {
                let n = i32::from_le_bytes(self.array()?);
                if n < 0 {
                    return self.bad_value("BINSTRING pickle has negative byte count");
                }
                let r = self.take(n as usize)?;
                Op::Py2Str(self.bytes(r))
            }
            LONG1 => {
                let n = self.u8()?;
                let r = self.take(usize::from(n))?;
                Op::Long(self.bytes(r))
            }
            LONG4 => {
                let n = i32::from_le_bytes(self.array()?);
                if n < 0 {
                    return self.bad_value("LONG pickle has negative byte count");
                }
                let r = self.take(n as usize)?;
                Op::Long(self.bytes(r))
            }
            NONE => Op::None,
            NEWTRUE => Op::Bool(true),
            NEWFALSE => Op::Bool(false),
            MARK => Op::Mark,
            STOP => Op::Stop,
            POP => Op::Pop,
            POP_MARK => Op::PopMark,
            DUP => Op::Dup,
            EMPTY_TUPLE => Op::EmptyTuple,
            TUPLE => Op::Tuple,
            TUPLE1 => Op::Tuple1,
            TUPLE2 => Op::Tuple2,
            TUPLE3 => Op::Tuple3,
            EMPTY_LIST => Op::EmptyList,
            APPEND => Op::Append,
            APPENDS => Op::Appends,
            LIST => Op::List,
            EMPTY_DICT => Op::EmptyDict,
            DICT => Op::Dict,
            SETITEM => Op::SetItem,
            SETITEMS => Op::SetItems,
            EMPTY_SET => Op::EmptySet,
            ADDITEMS => Op::AddItems,
            FROZENSET => Op::FrozenSet,
            STACK_GLOBAL => Op::StackGlobal,
            REDUCE => Op::Reduce,
            BUILD => Op::Build,
            OBJ => Op::Obj,
            NEWOBJ => Op::NewObj,
            NEWOBJ_EX => Op::NewObjEx,
            MEMOIZE => Op::Memoize,
            BINPERSID => Op::BinPersId,
            NEXT_BUFFER => Op::NextBuffer,
            READONLY_BUFFER => Op::ReadOnlyBuffer,
            BINPUT => Op::Put(u64::from(self.u8()?)),
            LONG_BINPUT => Op::Put(u64::from(u32::from_le_bytes(self.array()?))),
            BINGET => Op::Get(u64::from(self.u8()?)),
            LONG_BINGET => Op::Get(u64::from(u32::from_le_bytes(self.array()?))),
            EXT1 => {
                let code = i64::from(self.u8()?);
                self.ext(code)?
            }
            EXT2 => {
                let code = i64::from(u16::from_le_bytes(self.array()?));
                self.ext(code)?
            }
            EXT4 => {
                let code = i64::from(i32::from_le_bytes(self.array()?));
                self.ext(code)?
            }
            PROTO => {
                let p = self.u8()?;
                if p > HIGHEST_PROTOCOL {
                    return self.fail(ErrorKind::UnsupportedProtocol(p));
                }
                self.proto = p;
                Op::Proto(p)
            }
            FRAME => {
                let n = u64::from_le_bytes(self.array()?);
                if self.in_frame() {
                    return self.fail(ErrorKind::BadFrame(
                        "beginning of a new frame before end of current frame",
                    ));
                }
                if n > isize::MAX as u64 {
                    return self.fail(ErrorKind::Overflow(format!(
                        "frame size > sys.maxsize: {n}"
                    )));
                }
                if !self.source.fill(n).map_err(Error::Source)? {
                    return self.fail(ErrorKind::Truncated);
                }
                self.frame_end = Some(self.source.offset() + n);
                Op::Frame(n)
            }
            INT => {
                let r = self.line()?;
                let t = self.bytes(r);
                match t {
                    b"00" => Op::Bool(false),
                    b"01" => Op::Bool(true),
                    _ => text::parse_i64(t).map_or(Op::IntText(t), Op::Int),
                }
            }
            LONG => {
                let r = self.line()?;
                let t = self.bytes(r);
                let t = t.strip_suffix(b"L").unwrap_or(t);
                text::parse_i64(t).map_or(Op::IntText(t), Op::Int)
            }
            FLOAT => {
                let r = self.line()?;
                match text::parse_float(self.bytes(r.clone())) {
                    Ok(v) => Op::Float(v),
                    Err(text::FloatError::Overflow) => {
                        return self.fail(ErrorKind::Overflow("FLOAT value out of range".into()))
                    }
                    Err(text::FloatError::Invalid) => {
                        let t = String::from_utf8_lossy(self.bytes(r)).into_owned();
                        return self.bad_value(format!("could not convert string to float: {t:?}"));
                    }
                }
            }
            STRING => {
                let r = self.line()?;
                let t = self.bytes(r);
                match t {
                    [q @ (b'\'' | b'"'), inner @ .., last] if q == last => Op::Py2StrEscaped(inner),
                    _ => return self.bad_value("the STRING opcode argument must be quoted"),
                }
            }
            UNICODE => {
                let r = self.line()?;
                Op::RawUnicode(self.bytes(r))
            }
            PUT | GET => {
                let r = self.line()?;
                let index = text::parse_index(self.bytes(r));
                let index = match index {
                    Ok(i) => i,
                    Err(msg) => return self.bad_value(msg),
                };
                if code == PUT {
                    Op::Put(index)
                } else {
                    Op::Get(index)
                }
            }
            PERSID => {
                let r = self.line()?;
                Op::PersId(self.bytes(r))
            }
            GLOBAL | INST => {
                // Each line is checked as soon as it is read, as CPython does.
                let ascii = code == INST;
                let m = self.name_line()?;
                self.check_text(m.clone(), ascii)?;
                let n = self.name_line()?;
                self.check_text(n.clone(), ascii)?;
                let source = &self.source;
                // Checked just above; `from_utf8` cannot fail here.
                let text =
                    |r: Range<usize>| std::str::from_utf8(source.bytes(r)).unwrap_or_default();
                let (module, name) = (text(m), text(n));
                if ascii {
                    Op::Inst { module, name }
                } else {
                    Op::Global { module, name }
                }
            }
            other => return self.fail(ErrorKind::UnknownOpcode(other)),
        })
    }

    /// Check that a text line is UTF-8 (or ASCII), naming the first bad byte.
    fn check_text(&self, range: Range<usize>, ascii: bool) -> Result<(), S::Error> {
        let bytes = self.source.bytes(range);
        let bad = if ascii {
            bytes
                .iter()
                .position(|b| !b.is_ascii())
                .map(|i| (i, i + 1, "ordinal not in range(128)", "ascii"))
        } else {
            std::str::from_utf8(bytes).err().map(|e| {
                let end = e.valid_up_to() + e.error_len().unwrap_or(bytes.len() - e.valid_up_to());
                let reason = if e.error_len().is_none() {
                    "unexpected end of data"
                } else if bytes[e.valid_up_to()] >= 0xc2 && bytes[e.valid_up_to()] <= 0xf4 {
                    "invalid continuation byte"
                } else {
                    "invalid start byte"
                };
                (e.valid_up_to(), end, reason, "utf-8")
            })
        };
        match bad {
            None => Ok(()),
            Some((start, end, reason, encoding)) => self.fail(ErrorKind::Decode {
                encoding,
                bytes: bytes.to_vec(),
                start,
                end,
                reason,
            }),
        }
    }

    fn ext(&self, code: i64) -> Result<Op<'static>, S::Error> {
        match u32::try_from(code) {
            Ok(c) if c > 0 => Ok(Op::Ext(c)),
            _ => self.bad_value("EXT specifies code <= 0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SliceSource;

    fn ops(data: &[u8]) -> std::result::Result<Vec<String>, ParseError> {
        let mut p = Parser::new(SliceSource::new(data));
        let mut out = Vec::new();
        loop {
            match p.next_op() {
                Ok(Op::Stop) => return Ok(out),
                Ok(op) => out.push(format!("{op:?}")),
                Err(Error::Parse(e)) => return Err(e),
                Err(Error::Source(never)) => match never {},
            }
        }
    }

    #[test]
    fn protocol_4_frame() {
        // pickle.dumps([1, "ab"], 4)
        let data = b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01\x8c\x02ab\x94e.";
        assert_eq!(
            ops(data).unwrap(),
            [
                "Proto(4)",
                "Frame(12)",
                "EmptyList",
                "Memoize",
                "Mark",
                "Int(1)",
                "Str([97, 98])",
                "Memoize",
                "Appends"
            ]
        );
    }

    #[test]
    fn lying_lengths_fail_without_allocating() {
        let e = ops(b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7fabc").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Truncated);
        assert_eq!(e.opcode, Some(BINBYTES8));
        let e = ops(b"\x95\xff\xff\xff\xff\x00\x00\x00\x00N.").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Truncated);
        let e = ops(b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Overflow(_)));
    }

    #[test]
    fn strict_frames() {
        // A frame of 2 bytes, then BINUNICODE whose length field crosses its end.
        let e = ops(b"\x95\x02\x00\x00\x00\x00\x00\x00\x00NX\x01\x00\x00\x00a.").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadFrame(_)));
        assert_eq!(e.offset, 10);
        let e = ops(b"\x95\x0a\x00\x00\x00\x00\x00\x00\x00\x95\x00\x00\x00\x00\x00\x00\x00\x00N.")
            .unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadFrame(_)));
    }

    #[test]
    fn text_opcodes() {
        assert_eq!(
            ops(b"I01\nI-5\nL12L\nF1.5\nS'a\\n'\np3\ng3\n.").unwrap(),
            [
                "Bool(true)",
                "Int(-5)",
                "Int(12)",
                "Float(1.5)",
                "Py2StrEscaped([97, 92, 110])",
                "Put(3)",
                "Get(3)"
            ]
        );
        assert!(matches!(
            ops(b"S'a\n.").unwrap_err().kind,
            ErrorKind::BadValue(_)
        ));
        assert_eq!(ops(b"I12").unwrap_err().kind, ErrorKind::Truncated);
        assert_eq!(ops(b"").unwrap_err().kind, ErrorKind::RanOutOfInput);
        assert_eq!(
            ops(b"\xff").unwrap_err().kind,
            ErrorKind::UnknownOpcode(0xff)
        );
        assert_eq!(
            ops(b"\x80\x06").unwrap_err().kind,
            ErrorKind::UnsupportedProtocol(6)
        );
    }
}
