//! Field readers that turn a value of an unexpected type into "absent".
//!
//! A value of the wrong shape is passed over in place (and still checked to be JSON), so
//! tolerance costs nothing on the well-formed responses that are nearly all of them.

use crate::arm::json::{Kind, Reader};
use std::borrow::Cow;

pub use crate::arm::json::Result;

/// A model type read key by key.
pub trait Fields<'a>: Default {
    /// Reads the value of `key` into its field, or skips it when no field has that name.
    fn field(&mut self, key: &[u8], r: &mut Reader<'a>) -> Result<()>;
}

/// Reads an object known to be next. A key given twice keeps its last value.
pub fn read_object<'a, T: Fields<'a>>(r: &mut Reader<'a>) -> Result<T> {
    let mut t = T::default();
    r.object(|r, key| t.field(key, r))?;
    Ok(t)
}

/// A string, or a number or boolean as written; anything else is absent.
pub fn string<'a>(r: &mut Reader<'a>) -> Result<Option<Cow<'a, str>>> {
    Ok(match r.peek()? {
        Kind::String => Some(r.string()?),
        Kind::Number => Some(Cow::Borrowed(r.number()?)),
        Kind::Bool => Some(Cow::Borrowed(if r.bool()? { "true" } else { "false" })),
        Kind::Null | Kind::Object | Kind::Array => {
            r.skip()?;
            None
        }
    })
}

/// An integer, or a string holding one (the 2017 api-version sends domains as strings).
/// Fractions and values beyond `i32` are absent.
pub fn int(r: &mut Reader<'_>) -> Result<Option<i32>> {
    Ok(match r.peek()? {
        Kind::Number => r.number()?.parse().ok(),
        Kind::String => r.string()?.trim().parse().ok(),
        Kind::Bool | Kind::Null | Kind::Object | Kind::Array => {
            r.skip()?;
            None
        }
    })
}

/// An object; anything else is absent.
pub fn object<'a, T: Fields<'a>>(r: &mut Reader<'a>) -> Result<Option<T>> {
    if r.peek()? == Kind::Object {
        read_object(r).map(Some)
    } else {
        r.skip().map(|()| None)
    }
}

/// An object, or the default when there is none.
pub fn object_or_default<'a, T: Fields<'a>>(r: &mut Reader<'a>) -> Result<T> {
    Ok(object(r)?.unwrap_or_default())
}

/// A list of objects; elements of another shape are dropped, and a non-list reads as empty.
pub fn list<'a, T: Fields<'a>>(r: &mut Reader<'a>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    if r.peek()? != Kind::Array {
        r.skip()?;
        return Ok(out);
    }
    r.array(|r| {
        if r.peek()? == Kind::Object {
            out.push(read_object(r)?);
            Ok(())
        } else {
            r.skip()
        }
    })?;
    Ok(out)
}
