//! One decoded opcode with its argument.
//!
//! Several opcodes that mean the same thing share a variant (BININT, BININT1,
//! BININT2 and a small INT are all `Int`); the parser keeps the opcode byte
//! itself for messages and the inspector (`Parser::opcode`).

/// An opcode and its argument, borrowing byte arguments from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op<'a> {
    /// PROTO n.
    Proto(u8),
    /// FRAME n: the parser has already checked that n bytes follow.
    Frame(u64),
    Stop,
    Mark,
    Pop,
    PopMark,
    Dup,
    None,
    /// NEWTRUE/NEWFALSE, and INT's `01`/`00`.
    Bool(bool),
    /// Any integer that fits an i64 (BININT*, INT, LONG text).
    Int(i64),
    /// INT or LONG text that is not a plain i64 (big, or another base);
    /// the reader converts it as `int(text, 0)` would.
    IntText(&'a [u8]),
    /// LONG1/LONG4: two's-complement little-endian bytes.
    Long(&'a [u8]),
    /// BINFLOAT, FLOAT.
    Float(f64),
    /// BINBYTES, SHORT_BINBYTES, BINBYTES8.
    Bytes(&'a [u8]),
    /// BYTEARRAY8.
    ByteArray(&'a [u8]),
    /// BINUNICODE, SHORT_BINUNICODE, BINUNICODE8: UTF-8, surrogates allowed.
    Str(&'a [u8]),
    /// UNICODE (protocol 0): raw-unicode-escape text, without the newline.
    RawUnicode(&'a [u8]),
    /// BINSTRING, SHORT_BINSTRING: a Python 2 `str`.
    Py2Str(&'a [u8]),
    /// STRING (protocol 0): a Python 2 `str` as escaped text, quotes removed.
    Py2StrEscaped(&'a [u8]),
    EmptyTuple,
    Tuple,
    Tuple1,
    Tuple2,
    Tuple3,
    EmptyList,
    Append,
    Appends,
    List,
    EmptyDict,
    Dict,
    SetItem,
    SetItems,
    EmptySet,
    AddItems,
    FrozenSet,
    /// GLOBAL: module and name lines (checked UTF-8, newline removed).
    Global {
        module: &'a str,
        name: &'a str,
    },
    /// INST: module and name lines (checked ASCII, newline removed).
    Inst {
        module: &'a str,
        name: &'a str,
    },
    StackGlobal,
    /// EXT1/EXT2/EXT4: a positive extension code.
    Ext(u32),
    Reduce,
    Build,
    Obj,
    NewObj,
    NewObjEx,
    /// PUT, BINPUT, LONG_BINPUT.
    Put(u64),
    Memoize,
    /// GET, BINGET, LONG_BINGET.
    Get(u64),
    /// PERSID: the id line (ASCII text, newline removed).
    PersId(&'a [u8]),
    BinPersId,
    NextBuffer,
    ReadOnlyBuffer,
}
