//! serde `Serializer` writing pickle opcodes directly (no intermediate tree). The type table in
//! the crate docs says what Python sees for each Rust shape.

use serde::ser::{self, Serialize};

use crate::encode::{Out, write_value};
use crate::error::Error as Failure;

/// The serializer's error: the crate's [`Failure`] boxed, so that every `Result<(), Error>` of
/// the per-value calls is one register wide (a 40-byte error returned through memory cost
/// about a third of the time spent writing a float).
#[derive(Debug)]
pub(crate) struct Error(pub(crate) Box<Failure>);

impl From<Failure> for Error {
    #[cold]
    fn from(e: Failure) -> Self {
        Self(Box::new(e))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    #[cold]
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(Box::new(Failure::Custom(msg.to_string())))
    }
}
use crate::opcodes::*;
use crate::serde_impl::{VALUE_TOKEN, take_handed};

pub(crate) struct Ser<'o, 'b> {
    pub(crate) out: &'o mut Out<'b>,
}

/// How a compound value ends.
enum End {
    /// `APPENDS` / `SETITEMS` after a `MARK`, or nothing when empty.
    Batch { marked: bool, op: u8 },
    /// A tuple of this many items.
    Tuple(usize),
}

pub(crate) struct Compound<'s, 'o, 'b> {
    ser: &'s mut Ser<'o, 'b>,
    end: End,
    /// Close a variant's dict with `SETITEM` afterwards.
    variant: bool,
    /// Items until the open batch is full (a tuple's never is). Lists and dicts go in
    /// CPython's batches of [`BATCH`] items, so streaming readers (CPython's unpickler,
    /// conn's) see what they see from Python, and conn's sizes a vector of floats from them.
    /// Unlike CPython, a batch of one item is `MARK item APPENDS` too, not `item APPEND`: a
    /// streaming reader cannot tell that item from the next value of the list's parent without
    /// reading ahead, so conn's stream reads only the marked form without falling back.
    left: usize,
}

impl Compound<'_, '_, '_> {
    /// After an item (a value of a dict): a countdown, so that the per-item cost stays one
    /// decrement and one branch. Nothing here takes the address of `self`, so the count can
    /// stay in a register (a count kept in memory made a loop-carried store and reload, and
    /// writing the float sample 60 % slower).
    #[inline(always)]
    fn item_done(&mut self) {
        self.left -= 1;
        if self.left == 0 {
            self.left = BATCH;
            if let End::Batch { op, .. } = self.end {
                next_batch(self.ser.out, op);
            }
        }
    }

    #[inline]
    fn finish(self) -> Result<(), Error> {
        let out = &mut *self.ser.out;
        match self.end {
            // A batch opened with no item after it (the last was full, or the length was not
            // told and there were none): its `MARK` is the last byte written, and goes.
            End::Batch { marked: true, .. } if self.left == BATCH => {
                out.buf.pop();
            }
            End::Batch { marked: true, op } => out.op(op),
            End::Batch { marked: false, .. } => {}
            End::Tuple(0) => out.op(EMPTY_TUPLE),
            End::Tuple(n @ 1..=3) => out.op(TUPLE1 + n as u8 - 1),
            End::Tuple(_) => out.op(TUPLE),
        }
        if self.variant {
            out.op(SETITEM);
        }
        Ok(())
    }
}

/// Closes a full batch and opens the next.
#[cold]
#[inline(never)]
fn next_batch(out: &mut Out<'_>, op: u8) {
    out.op(op);
    out.op(MARK);
}

impl<'s, 'o, 'b> Ser<'o, 'b> {
    fn batch(
        &'s mut self,
        empty: u8,
        len: Option<usize>,
        op: u8,
        variant: bool,
    ) -> Compound<'s, 'o, 'b> {
        let marked = len != Some(0);
        if marked {
            self.out.buf.extend_from_slice(&[empty, MARK]);
        } else {
            self.out.op(empty);
        }
        Compound {
            ser: self,
            end: End::Batch { marked, op },
            variant,
            left: BATCH,
        }
    }

    fn tuple(&'s mut self, len: usize, variant: bool) -> Compound<'s, 'o, 'b> {
        if len > 3 {
            self.out.op(MARK);
        }
        Compound {
            ser: self,
            end: End::Tuple(len),
            variant,
            left: usize::MAX,
        }
    }

    fn open_variant(&mut self, variant: &str) -> Result<(), Error> {
        self.out.op(EMPTY_DICT);
        Ok(self.out.str(variant)?)
    }
}

impl<'s, 'o, 'b> ser::Serializer for &'s mut Ser<'o, 'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'s, 'o, 'b>;
    type SerializeTuple = Compound<'s, 'o, 'b>;
    type SerializeTupleStruct = Compound<'s, 'o, 'b>;
    type SerializeTupleVariant = Compound<'s, 'o, 'b>;
    type SerializeMap = Compound<'s, 'o, 'b>;
    type SerializeStruct = Compound<'s, 'o, 'b>;
    type SerializeStructVariant = Compound<'s, 'o, 'b>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.bool(v);
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.out.int(v);
        Ok(())
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        match i64::try_from(v) {
            Ok(v) => self.out.int(v),
            // The shortest two's complement, made on the stack (no `BigInt`).
            Err(_) => {
                let le = v.to_le_bytes();
                self.out.long(&le[..crate::int::shortest_len(&le).max(1)]);
            }
        }
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.serialize_u128(v.into())
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match i64::try_from(v) {
            Ok(v) => self.out.int(v),
            Err(_) => {
                // 17 bytes: a zero above the top bit keeps it positive.
                let mut le = [0u8; 17];
                le[..16].copy_from_slice(&v.to_le_bytes());
                self.out.long(&le[..crate::int::shortest_len(&le).max(1)]);
            }
        }
        Ok(())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.out.float(v);
        Ok(())
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Error> {
        Ok(self.out.str(v.encode_utf8(&mut [0u8; 4]))?)
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        Ok(self.out.str(v)?)
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        Ok(self.out.bytes(v)?)
    }
    #[inline]
    fn serialize_none(self) -> Result<(), Error> {
        self.out.none();
        Ok(())
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.none();
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.out.none();
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        Ok(self.out.str(variant)?)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if name == VALUE_TOKEN {
            if let Some(v) = take_handed() {
                return Ok(write_value(self.out, &v)?);
            }
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open_variant(variant)?;
        value.serialize(&mut *self)?;
        self.out.op(SETITEM);
        Ok(())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        // At least two bytes an item: one allocation for most lists.
        self.out
            .buf
            .reserve(len.unwrap_or(0).saturating_mul(2).min(1 << 20));
        Ok(self.batch(EMPTY_LIST, len, APPENDS, false))
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Error> {
        Ok(self.tuple(len, false))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Ok(self.tuple(len, false))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        self.open_variant(variant)?;
        Ok(self.tuple(len, true))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Ok(self.batch(EMPTY_DICT, len, SETITEMS, false))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Ok(self.batch(EMPTY_DICT, Some(len), SETITEMS, false))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        self.open_variant(variant)?;
        Ok(self.batch(EMPTY_DICT, Some(len), SETITEMS, true))
    }
}

impl ser::SerializeSeq for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)?;
        self.item_done();
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        key.serialize(&mut *self.ser)
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)?;
        self.item_done();
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.ser.out.field_name(key)?;
        value.serialize(&mut *self.ser)?;
        self.item_done();
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.ser.out.field_name(key)?;
        value.serialize(&mut *self.ser)?;
        self.item_done();
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::opcodes::*;
    use crate::{Protocol, to_vec};

    /// 128-bit ints are written in pickle's shortest `LONG1` form and read back exactly, at
    /// every boundary.
    #[test]
    fn wide_ints_round_trip_in_shortest_form() {
        for v in [
            i128::MIN,
            i128::MAX,
            -(1i128 << 64),
            1 << 64,
            i128::from(i64::MAX) + 1,
            i128::from(i64::MIN) - 1,
            -(1 << 100),
        ] {
            let bytes = to_vec(&v, Protocol::V4).unwrap();
            assert_eq!(crate::from_slice::<i128>(&bytes).unwrap(), v);
            let value = crate::value_from_slice(&bytes).unwrap();
            let Some(crate::Value::BigInt(b)) = Some(value) else {
                panic!("{v} is not a big int")
            };
            assert_eq!(b.to_i128(), Some(v));
            assert_eq!(b, crate::BigInt::from_i128(v), "{v}: not the shortest form");
        }
        for v in [u128::MAX, 1 << 127, u128::from(u64::MAX) + 1] {
            let bytes = to_vec(&v, Protocol::V4).unwrap();
            assert_eq!(crate::from_slice::<u128>(&bytes).unwrap(), v);
            let value = crate::value_from_slice(&bytes).unwrap();
            assert_eq!(value, crate::Value::BigInt(crate::BigInt::from_u128(v)));
        }
    }

    /// A struct's field names are written once and fetched from the memo after that (in any
    /// order, for up to 16 names a message; past those, written each time), and read back as
    /// the same records.
    #[test]
    fn field_names_are_written_once() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Point {
            x: i32,
            z: i32,
        }
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Pair {
            y: i32,
            a: Point,
        }
        let records: Vec<Pair> = (0..5)
            .map(|i| Pair {
                y: i,
                a: Point { x: i, z: -i },
            })
            .collect();
        let written = |bytes: &[u8], proto: Protocol, name: u8| {
            let op: &[u8] = match proto {
                Protocol::V2 => &[BINUNICODE, 1, 0, 0, 0, name],
                _ => &[SHORT_BINUNICODE, 1, name],
            };
            bytes.windows(op.len()).filter(|w| *w == op).count()
        };
        for proto in [Protocol::V2, Protocol::V4] {
            let bytes = to_vec(&records, proto).unwrap();
            for name in *b"xyza" {
                assert_eq!(written(&bytes, proto, name), 1, "{}", char::from(name));
            }
            assert_eq!(crate::from_slice::<Vec<Pair>>(&bytes).unwrap(), records);
            let value = crate::value_from_slice(&bytes).unwrap();
            assert_eq!(
                value.to_string(),
                "[{'y': 0, 'a': {'x': 0, 'z': 0}}, {'y': 1, 'a': {'x': 1, 'z': -1}}, \
                 {'y': 2, 'a': {'x': 2, 'z': -2}}, {'y': 3, 'a': {'x': 3, 'z': -3}}, \
                 {'y': 4, 'a': {'x': 4, 'z': -4}}]"
            );
        }
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Default)]
        struct Wide {
            a: u8,
            b: u8,
            c: u8,
            d: u8,
            e: u8,
            f: u8,
            g: u8,
            h: u8,
            i: u8,
            j: u8,
            k: u8,
            l: u8,
            m: u8,
            n: u8,
            o: u8,
            p: u8,
            q: u8,
            r: u8,
        }
        let wide = vec![Wide::default(), Wide::default()];
        let bytes = to_vec(&wide, Protocol::V4).unwrap();
        assert_eq!(written(&bytes, Protocol::V4, b'p'), 1);
        assert_eq!(written(&bytes, Protocol::V4, b'q'), 2);
        assert_eq!(crate::from_slice::<Vec<Wide>>(&bytes).unwrap(), wide);
    }

    /// Lists and dicts are written in CPython's batches of 1000 items.
    #[test]
    fn items_go_in_batches_of_a_thousand() {
        let mut want = vec![PROTO, 2, EMPTY_LIST];
        for n in [1000, 1000, 500] {
            want.push(MARK);
            for _ in 0..n {
                want.extend([BININT1, 7]);
            }
            want.push(APPENDS);
        }
        want.push(STOP);
        assert_eq!(to_vec(&vec![7u8; 2500], Protocol::V2).unwrap(), want);
        // Exactly one batch, then nothing more; an empty list has none.
        let one = to_vec(&vec![7u8; 1000], Protocol::V2).unwrap();
        assert_eq!(one.iter().filter(|&&b| b == MARK).count(), 1);
        assert_eq!(one[one.len() - 2..], [APPENDS, STOP]);
        assert_eq!(
            to_vec(&Vec::<u8>::new(), Protocol::V2).unwrap(),
            [PROTO, 2, EMPTY_LIST, STOP]
        );
        // A dict of 1001 entries: a batch of 1000 and a batch of one.
        let map: std::collections::BTreeMap<u16, ()> = (0..1001).map(|k| (k, ())).collect();
        let mut want = vec![PROTO, 2, EMPTY_DICT, MARK];
        for k in 0..1001u16 {
            if k == 1000 {
                want.extend([SETITEMS, MARK]);
            }
            match u8::try_from(k) {
                Ok(b) => want.extend([BININT1, b]),
                Err(_) => want.extend([BININT2, k.to_le_bytes()[0], k.to_le_bytes()[1]]),
            }
            want.push(NONE);
        }
        want.extend([SETITEMS, STOP]);
        assert_eq!(to_vec(&map, Protocol::V2).unwrap(), want);
    }
}
