//! One field reader for the whole wire model: a value of an unexpected type reads as absent.
//!
//! `#[serde(deserialize_with = "lenient")]` on an `Option<T>` field takes whatever JSON value
//! is there and offers it to `T`. When `T` refuses it before reading any of it (a string where
//! an object was expected, an object where a list was, a fraction where an integer was), the
//! value is passed over (still checked to be JSON) and the field is `None`. Strings and numbers
//! are also offered as each other, because Azure has sent both spellings (the 2017 api-version
//! sends `platformUpgradeDomain` as a string). An error from inside a value that `T` did accept
//! (malformed JSON, a key given twice) is kept: it says the page itself is broken.

use serde::de::value::{
    BoolDeserializer, BorrowedStrDeserializer, F64Deserializer, I64Deserializer,
    MapAccessDeserializer, StrDeserializer, StringDeserializer, U64Deserializer,
};
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

/// Reads `T`, or `None` when the value is `null` or of a type `T` does not take.
pub fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_any(Offer(PhantomData))
}

/// A list element read by [`lenient`]: lists hold `Lenient<T>`, so that an element of another
/// shape is dropped rather than costing the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient(d).map(Lenient)
    }
}

/// A list of which only the elements of the expected shape count.
pub type List<T> = Option<Vec<Lenient<T>>>;

/// The elements of `list` that were read.
pub fn each<T>(list: &List<T>) -> impl Iterator<Item = &T> {
    list.iter().flatten().filter_map(|item| item.0.as_ref())
}

/// A string from the page, borrowed unless it had escapes (serde's own `Cow` always copies).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Str;
        impl<'de> Visitor<'de> for Str {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(Str).map(Text)
    }
}

/// `T` from a complete scalar, or `None` when `T` does not take it.
fn take<'de, T: Deserialize<'de>>(d: impl Deserializer<'de>) -> Option<T> {
    T::deserialize(d).ok()
}

/// `T` from the integer a string spells, if it spells one.
fn number<'de, T: Deserialize<'de>, E: de::Error>(s: &str) -> Option<T> {
    let n: i64 = s.trim().parse().ok()?;
    take(I64Deserializer::<E>::new(n))
}

struct Offer<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Offer<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<T>, E> {
        let text = if v { "true" } else { "false" };
        Ok(take(BoolDeserializer::<E>::new(v))
            .or_else(|| take(BorrowedStrDeserializer::<E>::new(text))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<T>, E> {
        Ok(take(I64Deserializer::<E>::new(v))
            .or_else(|| take(StringDeserializer::<E>::new(v.to_string()))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<T>, E> {
        Ok(take(U64Deserializer::<E>::new(v))
            .or_else(|| take(StringDeserializer::<E>::new(v.to_string()))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<T>, E> {
        Ok(take(F64Deserializer::<E>::new(v))
            .or_else(|| take(StringDeserializer::<E>::new(v.to_string()))))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Option<T>, E> {
        Ok(take(BorrowedStrDeserializer::<E>::new(v)).or_else(|| number::<T, E>(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
        Ok(take(StrDeserializer::<E>::new(v)).or_else(|| number::<T, E>(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let touched = Cell::new(false);
        let read = T::deserialize(MapAccessDeserializer::new(Touch {
            inner: &mut map,
            touched: &touched,
        }));
        match read {
            Ok(t) => Ok(Some(t)),
            Err(e) if touched.get() => Err(e),
            Err(_) => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(None)
            }
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        let touched = Cell::new(false);
        let read = T::deserialize(SeqOnly(Touch {
            inner: &mut seq,
            touched: &touched,
        }));
        match read {
            Ok(t) => Ok(Some(t)),
            Err(e) if touched.get() => Err(e),
            Err(_) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
        }
    }
}

/// Notes whether `T` read anything, which tells a refusal of the whole value (nothing read,
/// the rest can be skipped) from an error inside it (which must stand).
struct Touch<'r, A> {
    inner: &'r mut A,
    touched: &'r Cell<bool>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Touch<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.touched.set(true);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.touched.set(true);
        self.inner.next_value_seed(seed)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Touch<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.touched.set(true);
        self.inner.next_element_seed(seed)
    }
}

/// A list, offered as such. A derived struct would read a list's elements as its fields by
/// position; a list where an object belongs is no object, so structs are refused.
struct SeqOnly<A>(A);

impl<'de, A: SeqAccess<'de>> Deserializer<'de> for SeqOnly<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_seq(self.0)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(Unexpected::Seq, &visitor))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// An object and nothing else, for the page's strict skeleton.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Map<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Map<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Map(PhantomData)).map(Object)
    }
}
