//! Where the parser's bytes come from.
//!
//! The parser asks a [`Source`] for bytes and gets back *ranges*, which
//! [`Source::bytes`] resolves, so that a source may grow its buffer while one
//! opcode is being parsed (a file read). A source only drops bytes in
//! [`Source::begin_op`], between opcodes, so every range handed out for the
//! current opcode stays valid until the next one starts. A range need not
//! index one buffer: a file source reads a big payload into a buffer of its
//! own and hands out a range only it can resolve.

use std::convert::Infallible;
use std::ops::Range;

pub trait Source {
    /// What reading can fail with (a Python exception for a file source).
    type Error;

    /// Called before each opcode; the source may drop bytes already used.
    fn begin_op(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The next byte, or `None` at the end of the input.
    fn next_byte(&mut self) -> Result<Option<u8>, Self::Error>;

    /// Exactly `n` more bytes, or `None` if the input ends first. Must not
    /// allocate more than the input can back: a source that reads a file
    /// grows its buffer as the bytes actually arrive.
    fn take(&mut self, n: usize) -> Result<Option<Range<usize>>, Self::Error>;

    /// The bytes up to and including the next `b'\n'`, or `None` if the
    /// input ends first.
    fn take_line(&mut self) -> Result<Option<Range<usize>>, Self::Error>;

    /// Make `n` more bytes available without consuming them (a frame is
    /// announced); `false` if the input ends first.
    fn fill(&mut self, n: u64) -> Result<bool, Self::Error>;

    /// The bytes of a range handed out for the current opcode.
    fn bytes(&self, range: Range<usize>) -> &[u8];

    /// Offset of the next unread byte from the start of the pickle.
    fn offset(&self) -> u64;

    /// The next byte if it is already in memory, without consuming it
    /// (never reads; `None` when it would have to).
    fn peek_byte(&self) -> Option<u8> {
        None
    }
}

/// A whole pickle in memory (`loads`).
pub struct SliceSource<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        SliceSource { data, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

impl Source for SliceSource<'_> {
    type Error = Infallible;

    #[inline(always)]
    fn next_byte(&mut self) -> Result<Option<u8>, Infallible> {
        let b = self.data.get(self.pos).copied();
        self.pos += usize::from(b.is_some());
        Ok(b)
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<Option<Range<usize>>, Infallible> {
        if n > self.remaining() {
            return Ok(None);
        }
        let start = self.pos;
        self.pos += n;
        Ok(Some(start..self.pos))
    }

    fn take_line(&mut self) -> Result<Option<Range<usize>>, Infallible> {
        let rest = &self.data[self.pos..];
        Ok(rest.iter().position(|&b| b == b'\n').map(|i| {
            let start = self.pos;
            self.pos += i + 1;
            start..self.pos
        }))
    }

    fn fill(&mut self, n: u64) -> Result<bool, Infallible> {
        Ok(n <= self.remaining() as u64)
    }

    #[inline(always)]
    fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.data[range]
    }

    #[inline(always)]
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    #[inline(always)]
    fn peek_byte(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }
}
