//! JSON for floats that may be NaN or infinite.
//!
//! serde_json writes every non-finite f64 as `null` and refuses to read `null` back into an `f64`, so a report
//! whose power-law fit failed (alpha_weighted = NaN) would be written but could never be read again. The model's
//! float fields use these helpers: finite numbers stay plain JSON numbers (what pandas, jq and WeightWatcher users
//! expect), NaN stays `null`, and infinities become the strings `"inf"` / `"-inf"` so their sign survives.

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

fn write<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(v)
    } else if v.is_nan() {
        s.serialize_none()
    } else if v > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

struct FloatVisitor;

impl<'de> Visitor<'de> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, null (NaN), or \"inf\"/\"-inf\"/\"nan\"")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(FloatVisitor)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v.to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" => Ok(f64::INFINITY),
            "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
            "nan" => Ok(f64::NAN),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

/// `#[serde(with = "crate::floats::f64_json")]` for `f64` fields.
pub mod f64_json {
    use super::*;

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        write(*v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(FloatVisitor)
    }
}

/// `#[serde(default, with = "crate::floats::opt_f64_json")]` for `Option<f64>` fields: `None` is `null`,
/// `Some(NaN)` is the string `"nan"` so that it does not collapse into `None`.
pub mod opt_f64_json {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(x) if x.is_nan() => s.serialize_str("nan"),
            Some(x) => write(*x, s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        struct OptVisitor;
        impl<'de> Visitor<'de> for OptVisitor {
            type Value = Option<f64>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("null or a float")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Option<f64>, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Option<f64>, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<f64>, D::Error> {
                d.deserialize_any(FloatVisitor).map(Some)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<f64>, E> {
                Ok(Some(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<f64>, E> {
                Ok(Some(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<f64>, E> {
                Ok(Some(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<f64>, E> {
                FloatVisitor.visit_str(v).map(Some)
            }
        }
        d.deserialize_option(OptVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug)]
    struct T {
        #[serde(with = "super::f64_json")]
        a: f64,
        #[serde(default, with = "super::opt_f64_json")]
        b: Option<f64>,
    }

    fn round(a: f64, b: Option<f64>) -> T {
        let s = serde_json::to_string(&T { a, b }).unwrap();
        serde_json::from_str(&s).unwrap()
    }

    #[test]
    fn non_finite_values_survive_json() {
        assert!(round(f64::NAN, None).a.is_nan());
        assert_eq!(round(f64::INFINITY, None).a, f64::INFINITY);
        assert_eq!(round(f64::NEG_INFINITY, None).a, f64::NEG_INFINITY);
        assert_eq!(round(1.25, Some(2.5)).b, Some(2.5));
        assert_eq!(round(1.0, None).b, None);
        assert!(round(1.0, Some(f64::NAN)).b.unwrap().is_nan());
        assert_eq!(
            round(1.0, Some(f64::NEG_INFINITY)).b,
            Some(f64::NEG_INFINITY)
        );
        let t: T = serde_json::from_str(r#"{"a": 3}"#).unwrap();
        assert_eq!((t.a, t.b), (3.0, None));
        assert_eq!(
            serde_json::to_string(&T { a: 0.5, b: None }).unwrap(),
            r#"{"a":0.5,"b":null}"#
        );
    }
}
