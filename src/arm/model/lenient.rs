//! Field deserializers that turn a value of an unexpected type into "absent".
//!
//! Each is a streaming visitor: a value of the wrong shape is skipped in place, never buffered,
//! so tolerance costs nothing on the well-formed responses that are nearly all of them.

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Visitor methods for the shapes a field does not take: the value is skipped in place and the
/// field reads as `$absent`.
macro_rules! absent_on {
    ($de:lifetime, $absent:expr; $($shape:ident),+) => { $( absent_on!(@$shape $de, $absent); )+ };
    (@str $de:lifetime, $absent:expr) => {
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> { Ok($absent) }
    };
    (@numbers $de:lifetime, $absent:expr) => {
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> { Ok($absent) }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> { Ok($absent) }
        absent_on!(@float $de, $absent);
    };
    (@float $de:lifetime, $absent:expr) => {
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> { Ok($absent) }
    };
    (@bool $de:lifetime, $absent:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> { Ok($absent) }
    };
    (@null $de:lifetime, $absent:expr) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> { Ok($absent) }
    };
    (@map $de:lifetime, $absent:expr) => {
        fn visit_map<A: MapAccess<$de>>(self, map: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_map(map).map(|_| $absent)
        }
    };
    (@seq $de:lifetime, $absent:expr) => {
        fn visit_seq<A: SeqAccess<$de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_seq(seq).map(|_| $absent)
        }
    };
}

/// A string, or a number or boolean spelled as one; anything else is absent.
pub fn string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        absent_on!('de, None; null, map, seq);
    }
    de.deserialize_any(V)
}

/// An integer, or a string holding one (the 2017 api-version sends domains as strings).
pub fn int<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i32>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i32>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(i32::try_from(v).ok())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(i32::try_from(v).ok())
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        absent_on!('de, None; float, bool, null, map, seq);
    }
    de.deserialize_any(V)
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
    absent_on!('de, None; seq, str, numbers, bool, null);
}

/// An object; anything else is absent. `T`'s own fields must be lenient too, so that the only
/// error left inside is malformed JSON.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    de: D,
) -> Result<Option<T>, D::Error> {
    de.deserialize_any(ObjectVisitor(PhantomData))
}

pub fn object_or_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(object(de)?.unwrap_or_default())
}

/// One list element read through [`object`].
struct Element<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Element<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        object(de).map(Element)
    }
}

/// A list of objects; elements of another shape are dropped, and a non-list reads as empty.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Vec<T>, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(Element(item)) = seq.next_element::<Element<T>>()? {
                out.extend(item);
            }
            Ok(out)
        }
        absent_on!('de, Vec::new(); map, str, numbers, bool, null);
    }
    de.deserialize_any(V(PhantomData))
}

/// Visits a list page's `value` items one by one, handing each VM to a callback instead of
/// collecting them; every other key is skipped.
pub struct PageSeed<F>(pub F);

impl<'de, F: FnMut(super::ScaleSetVm<'de>)> serde::de::DeserializeSeed<'de> for PageSeed<F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, F: FnMut(super::ScaleSetVm<'de>)> Visitor<'de> for PageSeed<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list page")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut seen_value = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "value" {
                map.next_value_seed(ItemsSeed(&mut self.0))?;
                seen_value = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !seen_value {
            return Err(serde::de::Error::missing_field("value"));
        }
        Ok(())
    }
}

struct ItemsSeed<'f, F>(&'f mut F);

impl<'de, F: FnMut(super::ScaleSetVm<'de>)> serde::de::DeserializeSeed<'de> for ItemsSeed<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, F: FnMut(super::ScaleSetVm<'de>)> Visitor<'de> for ItemsSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of VMs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Item(vm)) = seq.next_element::<Item<super::ScaleSetVm<'de>>>()? {
            (self.0)(vm);
        }
        Ok(())
    }
}

/// One VM of a page's `value`: an object, or the page is broken.
struct Item<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a VM object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        de.deserialize_any(V(PhantomData)).map(Item)
    }
}

/// A page's `value`: a list of objects, strictly.
pub fn items<'de, D: Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Vec<T>, D::Error> {
    Ok(Vec::<Item<T>>::deserialize(de)?
        .into_iter()
        .map(|Item(t)| t)
        .collect())
}
