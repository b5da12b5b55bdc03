//! `Limits`: what a decoder accepts, in one value with documented defaults.

/// Bounds on what one pickle may make a decoder do. Every violation is
/// [`Error::LimitExceeded`](crate::Error::LimitExceeded); the message is consumed and nothing
/// else is affected.
///
/// Whatever the limits, decoding never recurses on the input's nesting and never allocates by
/// a claimed length, and memory is a small constant times the message size whatever its
/// opcodes: see the crate docs for the bound (which a counting allocator checks in the tests
/// and under the fuzzer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Deepest nesting of containers and objects. Default 1000: CPython's default recursion
    /// limit, so nothing CPython can pickle without raising it is refused. Typed (serde)
    /// decoding recurses once per level, so this also bounds its stack use.
    pub max_depth: u32,
    /// Memo entries (`PUT` / `MEMOIZE`). Default 2^26.
    pub max_memo: u64,
    /// Values pushed while decoding. Default 2^28; a pickle cannot push more values than it has
    /// bytes, so this matters only for very large messages.
    pub max_values: u64,
    /// Decimal digits of a text `INT` / `LONG` (protocol 0). Default 4300, CPython's
    /// `sys.get_int_max_str_digits()`; conversion is quadratic in the digits.
    pub max_int_digits: u32,
    /// Bytes of a binary `LONG1` / `LONG4` int. Default 1 MiB (about 2.5 million digits).
    pub max_int_bytes: u64,
    /// Size of the value once copied out into Rust types by serde, where a structure shared in
    /// the pickle becomes one copy per reference: values plus one per 16 bytes of text or bytes.
    /// Default 2^24; whatever it is set to, a message of `n` bytes may expand to at most
    /// [`EXPANSION_PER_BYTE`]` * n + `[`EXPANSION_FLOOR`], so a small message cannot make a
    /// large value. Decoding into [`Value`](crate::Value) keeps sharing and is not bound by it.
    pub max_expanded: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 1000,
            max_memo: 1 << 26,
            max_values: 1 << 28,
            max_int_digits: 4300,
            max_int_bytes: 1 << 20,
            max_expanded: 1 << 24,
        }
    }
}

/// How far typed decoding may expand each byte of a message (see [`Limits::max_expanded`]): a
/// structure shared in the pickle is copied per reference, within this.
pub const EXPANSION_PER_BYTE: u64 = 8;

/// Expansion any message may have whatever its size (see [`Limits::max_expanded`]).
pub const EXPANSION_FLOOR: u64 = 1 << 16;

impl Limits {
    /// The expansion allowed for a message of `len` bytes: [`max_expanded`](Self::max_expanded),
    /// and at most [`EXPANSION_PER_BYTE`] per byte plus [`EXPANSION_FLOOR`].
    pub fn expanded_for(&self, len: usize) -> u64 {
        let relative = EXPANSION_PER_BYTE
            .saturating_mul(len as u64)
            .saturating_add(EXPANSION_FLOOR);
        self.max_expanded.min(relative)
    }

    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`max_depth`](Self::max_depth).
    pub fn max_depth(mut self, v: u32) -> Self {
        self.max_depth = v;
        self
    }
    /// Sets [`max_memo`](Self::max_memo).
    pub fn max_memo(mut self, v: u64) -> Self {
        self.max_memo = v;
        self
    }
    /// Sets [`max_values`](Self::max_values).
    pub fn max_values(mut self, v: u64) -> Self {
        self.max_values = v;
        self
    }
    /// Sets [`max_int_digits`](Self::max_int_digits).
    pub fn max_int_digits(mut self, v: u32) -> Self {
        self.max_int_digits = v;
        self
    }
    /// Sets [`max_int_bytes`](Self::max_int_bytes).
    pub fn max_int_bytes(mut self, v: u64) -> Self {
        self.max_int_bytes = v;
        self
    }
    /// Sets [`max_expanded`](Self::max_expanded).
    pub fn max_expanded(mut self, v: u64) -> Self {
        self.max_expanded = v;
        self
    }
}
