//! Accessors over serde_json for the output of `read_with_tensorboard.py`, which writes the non-finite floats
//! JSON cannot hold as the strings "NaN", "Infinity" and "-Infinity". Every accessor panics with the value it
//! did not expect, so a test failure shows what TensorBoard returned.

#![allow(dead_code)]

use serde_json::Value;

pub type Json = Value;

/// Parses the script's output.
pub fn parse(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Typed reads of a value, panicking on anything else.
pub trait Read {
    fn key(&self, key: &str) -> &Json;
    fn f64(&self) -> f64;
    fn i64(&self) -> i64;
    fn str(&self) -> &str;
    fn arr(&self) -> &[Json];
    fn f64s(&self) -> Vec<f64> {
        self.arr().iter().map(Read::f64).collect()
    }
    fn strs(&self) -> Vec<String> {
        self.arr().iter().map(|v| v.str().to_string()).collect()
    }
}

impl Read for Value {
    fn key(&self, key: &str) -> &Json {
        self.as_object()
            .unwrap_or_else(|| panic!("not an object: {self}"))
            .get(key)
            .unwrap_or_else(|| panic!("no key {key:?} in {self}"))
    }

    fn f64(&self) -> f64 {
        match self {
            Value::Number(n) => n.as_f64().unwrap_or_else(|| panic!("{n}")),
            Value::String(s) if s == "NaN" => f64::NAN,
            Value::String(s) if s == "Infinity" => f64::INFINITY,
            Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
            _ => panic!("not a number: {self}"),
        }
    }

    fn i64(&self) -> i64 {
        self.as_i64()
            .unwrap_or_else(|| panic!("not an integer: {self}"))
    }

    fn str(&self) -> &str {
        self.as_str()
            .unwrap_or_else(|| panic!("not a string: {self}"))
    }

    fn arr(&self) -> &[Json] {
        self.as_array()
            .unwrap_or_else(|| panic!("not an array: {self}"))
    }
}
