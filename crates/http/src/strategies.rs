//! proptest strategies for untrusted answers, shared by the property tests of every client
//! (feature `strategies`): arbitrary JSON favouring the keys a parser reads, answer bodies
//! (raw bytes, JSON, JSON cut short, JSON with a BOM), and `Content-Type` values. Generated
//! strings sometimes hold [`PLANTED_SECRET`], which no error text may ever repeat.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Planted in generated strings (also inside an HTML title); no error message may repeat it.
pub const PLANTED_SECRET: &str = "PLANTED-SECRET";

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |number| number.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        Just(Value::String(PLANTED_SECRET.to_owned())),
        Just(Value::String(format!(
            "<html><title>{PLANTED_SECRET}</title>"
        ))),
    ]
}

fn key(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(keys).prop_map(str::to_owned),
        1 => ".{0,10}",
    ]
}

/// Any JSON value, nested a few levels, with objects favouring `keys` (the keys the parser
/// under test reads, so that generated objects hit the interesting paths).
pub fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(keys), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Answer bodies: raw bytes, JSON text (sometimes cut short), or JSON with a BOM or padding.
pub fn body(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value(keys).prop_map(|value| value.to_string().into_bytes()),
        (json_value(keys), any::<prop::sample::Index>()).prop_map(|(value, index)| {
            let text = value.to_string().into_bytes();
            let cut = index.index(text.len() + 1);
            text[..cut].to_vec()
        }),
        json_value(keys).prop_map(|value| format!("\u{feff} {value}\n").into_bytes()),
    ]
}

/// Fails the case when `reason` (an error a parser gave) quotes [`PLANTED_SECRET`].
pub fn assert_not_quoted(reason: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !reason.contains(PLANTED_SECRET),
        "quoted the body: {reason}"
    );
    Ok(())
}

/// `Content-Type` headers: JSON, HTML in two spellings, plain text, anything, or none.
pub fn content_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("text/html; charset=utf-8".to_owned()),
        Just("TEXT/HTML".to_owned()),
        Just("text/plain".to_owned()),
        ".{0,30}",
    ])
}
