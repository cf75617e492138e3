//! Integer fields of JSON bodies, as JSON Schema reads them: `3.0` is the integer 3
//! (schema-driven clients and fuzzers send it), and a value outside `int64` is refused
//! with the field's own error instead of being taken or wrapped.
//!
//! Use with `#[serde(deserialize_with = "crate::whole::u64")]` (or `opt_u64`, `u32`,
//! `opt_u32`, adding `default` for the optional ones).

use serde::de::{Deserializer, Error};
use serde::Deserialize;

/// Largest value accepted: `int64`'s maximum, the OpenAPI format of these fields.
const MAX: u64 = i64::MAX as u64;

fn whole<E: Error>(n: &serde_json::Number) -> Result<u64, E> {
    if let Some(u) = n.as_u64() {
        if u <= MAX {
            return Ok(u);
        }
    } else if let Some(f) = n.as_f64() {
        // Exact integers only: below 2^53 every f64 with no fraction is one.
        if f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&f) {
            return Ok(f as u64);
        }
    }
    Err(E::custom(format!(
        "invalid value: {n}, expected an integer between 0 and {MAX}"
    )))
}

/// A non-negative integer up to `i64::MAX`.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    whole(&serde_json::Number::deserialize(d)?)
}

/// An optional [`u64`] (`null` or absent is `None`).
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?
        .map(|n| whole(&n))
        .transpose()
}

/// A non-negative integer up to `i32::MAX` (`int32`, the OpenAPI format of `u32`
/// fields).
pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    let v = whole::<D::Error>(&n)?;
    match ::core::primitive::u32::try_from(v) {
        Ok(v) if v <= i32::MAX as ::core::primitive::u32 => Ok(v),
        _ => Err(D::Error::custom(format!(
            "invalid value: {n}, expected an integer between 0 and {}",
            i32::MAX
        ))),
    }
}

/// An optional [`u32`].
pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "u32")] ::core::primitive::u32);
    Ok(Option::<W>::deserialize(d)?.map(|W(v)| v))
}

/// An optional signed integer within `i32` (`int32`).
pub fn opt_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let v = if let Some(i) = n.as_i64() {
        Some(i)
    } else {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0)
            .map(|f| f as i64)
    };
    match v.and_then(|v| i32::try_from(v).ok()) {
        Some(v) => Ok(Some(v)),
        None => Err(D::Error::custom(format!(
            "invalid value: {n}, expected an integer between {} and {}",
            i32::MIN,
            i32::MAX
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::u64")]
        a: u64,
        #[serde(default, deserialize_with = "super::opt_u32")]
        b: Option<u32>,
    }

    fn parse(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integers_in_any_json_spelling_within_range() {
        let t = parse(r#"{"a": 39.0, "b": 7}"#).expect("whole floats are integers");
        assert_eq!((t.a, t.b), (39, Some(7)));
        let t = parse(r#"{"a": 9223372036854775807, "b": null}"#).expect("int64 max");
        assert_eq!((t.a, t.b), (i64::MAX as u64, None));
        assert_eq!(parse(r#"{"a": 1}"#).expect("b absent").b, None);
        for bad in [
            r#"{"a": 9223372036854775808}"#,
            r#"{"a": 1.5}"#,
            r#"{"a": -1}"#,
            r#"{"a": "1"}"#,
            r#"{"a": 1, "b": 4294967296}"#,
            r#"{"a": 1, "b": 2147483648}"#,
            r#"{"a": 1e300}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} must be refused");
        }
    }
}
