//! Pickle opcodes of protocols 0–5 (the table of CPython's `pickletools`).

pub(crate) const MARK: u8 = b'(';
pub(crate) const STOP: u8 = b'.';
pub(crate) const POP: u8 = b'0';
pub(crate) const POP_MARK: u8 = b'1';
pub(crate) const DUP: u8 = b'2';
pub(crate) const FLOAT: u8 = b'F';
pub(crate) const INT: u8 = b'I';
pub(crate) const BININT: u8 = b'J';
pub(crate) const BININT1: u8 = b'K';
pub(crate) const LONG: u8 = b'L';
pub(crate) const BININT2: u8 = b'M';
pub(crate) const NONE: u8 = b'N';
pub(crate) const PERSID: u8 = b'P';
pub(crate) const BINPERSID: u8 = b'Q';
pub(crate) const REDUCE: u8 = b'R';
pub(crate) const STRING: u8 = b'S';
pub(crate) const BINSTRING: u8 = b'T';
pub(crate) const SHORT_BINSTRING: u8 = b'U';
pub(crate) const UNICODE: u8 = b'V';
pub(crate) const BINUNICODE: u8 = b'X';
pub(crate) const APPEND: u8 = b'a';
pub(crate) const BUILD: u8 = b'b';
pub(crate) const GLOBAL: u8 = b'c';
pub(crate) const DICT: u8 = b'd';
pub(crate) const EMPTY_DICT: u8 = b'}';
pub(crate) const APPENDS: u8 = b'e';
pub(crate) const GET: u8 = b'g';
pub(crate) const BINGET: u8 = b'h';
pub(crate) const INST: u8 = b'i';
pub(crate) const LONG_BINGET: u8 = b'j';
pub(crate) const LIST: u8 = b'l';
pub(crate) const EMPTY_LIST: u8 = b']';
pub(crate) const OBJ: u8 = b'o';
pub(crate) const PUT: u8 = b'p';
pub(crate) const BINPUT: u8 = b'q';
pub(crate) const LONG_BINPUT: u8 = b'r';
pub(crate) const SETITEM: u8 = b's';
pub(crate) const TUPLE: u8 = b't';
pub(crate) const EMPTY_TUPLE: u8 = b')';
pub(crate) const SETITEMS: u8 = b'u';
pub(crate) const BINFLOAT: u8 = b'G';
// Protocol 2.
pub(crate) const PROTO: u8 = 0x80;
pub(crate) const NEWOBJ: u8 = 0x81;
pub(crate) const EXT1: u8 = 0x82;
pub(crate) const EXT2: u8 = 0x83;
pub(crate) const EXT4: u8 = 0x84;
pub(crate) const TUPLE1: u8 = 0x85;
pub(crate) const TUPLE2: u8 = 0x86;
pub(crate) const TUPLE3: u8 = 0x87;
pub(crate) const NEWTRUE: u8 = 0x88;
pub(crate) const NEWFALSE: u8 = 0x89;
pub(crate) const LONG1: u8 = 0x8a;
pub(crate) const LONG4: u8 = 0x8b;
// Protocol 3.
pub(crate) const BINBYTES: u8 = b'B';
pub(crate) const SHORT_BINBYTES: u8 = b'C';
// Protocol 4.
pub(crate) const SHORT_BINUNICODE: u8 = 0x8c;
pub(crate) const BINUNICODE8: u8 = 0x8d;
pub(crate) const BINBYTES8: u8 = 0x8e;
pub(crate) const EMPTY_SET: u8 = 0x8f;
pub(crate) const ADDITEMS: u8 = 0x90;
pub(crate) const FROZENSET: u8 = 0x91;
pub(crate) const NEWOBJ_EX: u8 = 0x92;
pub(crate) const STACK_GLOBAL: u8 = 0x93;
pub(crate) const MEMOIZE: u8 = 0x94;
pub(crate) const FRAME: u8 = 0x95;
// Protocol 5.
pub(crate) const BYTEARRAY8: u8 = 0x96;
pub(crate) const NEXT_BUFFER: u8 = 0x97;
pub(crate) const READONLY_BUFFER: u8 = 0x98;

/// How many items CPython's pickler puts between one `MARK` and its `APPENDS` / `SETITEMS` /
/// `ADDITEMS` (`BATCHSIZE` in `pickle.py` and `_pickle.c`).
pub(crate) const BATCH: usize = 1000;

/// Reading opcode arguments, for both interpreters of the opcodes: the fast typed reader
/// (`stream.rs`) and the arena machine (`decode/machine.rs`). Every read is checked against the
/// end of the input (`None` when the input ends first) and nothing is allocated or sized by a
/// length the input claims; each interpreter turns `None` into its own error.
pub(crate) mod args {
    use super::{
        BINBYTES, BINGET, BINPUT, BINUNICODE, LONG_BINGET, LONG_BINPUT, SHORT_BINBYTES,
        SHORT_BINUNICODE,
    };

    /// The next `n` bytes.
    #[inline(always)]
    pub(crate) fn take<'a>(input: &'a [u8], pos: &mut usize, n: u64) -> Option<&'a [u8]> {
        let end = pos.checked_add(usize::try_from(n).ok()?)?;
        let bytes = input.get(*pos..end)?;
        *pos = end;
        Some(bytes)
    }

    /// The next `N` bytes, as an array (fixed-width arguments).
    #[inline(always)]
    pub(crate) fn array<const N: usize>(input: &[u8], pos: &mut usize) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(take(input, pos, N as u64)?);
        Some(out)
    }

    /// A text argument up to (not including) the next newline, which is consumed.
    pub(crate) fn line<'a>(input: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
        let rest = input.get(*pos..)?;
        let n = rest.iter().position(|&b| b == b'\n')?;
        *pos += n + 1;
        Some(&rest[..n])
    }

    /// The length argument of a text or bytes opcode: one byte for the `SHORT_` forms, four
    /// for `BINUNICODE` and `BINBYTES`, eight for the `8` forms (`BINUNICODE8`, `BINBYTES8`,
    /// `BYTEARRAY8`), all little-endian.
    #[inline(always)]
    pub(crate) fn length(input: &[u8], pos: &mut usize, op: u8) -> Option<u64> {
        Some(match op {
            SHORT_BINUNICODE | SHORT_BINBYTES => array::<1>(input, pos)?[0].into(),
            BINUNICODE | BINBYTES => u32::from_le_bytes(array(input, pos)?).into(),
            _ => u64::from_le_bytes(array(input, pos)?),
        })
    }

    /// The memo index argument of a binary memo opcode: one byte for `BINGET` / `BINPUT`,
    /// four (little-endian) for `LONG_BINGET` / `LONG_BINPUT`.
    #[inline(always)]
    pub(crate) fn memo_index(input: &[u8], pos: &mut usize, op: u8) -> Option<u64> {
        Some(match op {
            BINGET | BINPUT => array::<1>(input, pos)?[0].into(),
            LONG_BINGET | LONG_BINPUT => u32::from_le_bytes(array(input, pos)?).into(),
            _ => return None,
        })
    }
}
