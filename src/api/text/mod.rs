//! Status strings the operator holds once per credential, kept small: names from a small set are
//! shared ([`Name`]); texts for people ([`Text`]) and the history of attempts ([`History`]) can be
//! held as a digest instead ([`Text::elide`], [`History::elide`]). The operator's watch cache does
//! that, since no decision reads them; the status writer never sends a digest and reads the
//! parts it needs from the API server instead.
//!
//! A digest serializes as `{"$elided": <digest>}` ([`ELIDED`]), so that a status holding one can
//! be compared and hashed, and the writer can tell that a patch would carry one.
//!
//! This module owns [`Text`] and the digests; [`name`] owns [`Name`], [`history`] owns
//! [`History`].

/// The schema of a type that is serialized as `$as` (inlined, as the type it stands for).
macro_rules! schema_as {
    ($type:ty, $as:ty) => {
        impl schemars::JsonSchema for $type {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                <$as as schemars::JsonSchema>::schema_name()
            }
            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                <$as as schemars::JsonSchema>::json_schema(generator)
            }
        }
    };
}
use schema_as;

mod history;
mod name;

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use history::History;
pub use name::Name;

/// The key of the JSON object a digest serializes as.
pub const ELIDED: &str = "$elided";

/// Texts of at most this many bytes are kept: a digest would save no more than the allocator's
/// smallest block, and short texts (`Valid`, `Revoked`) are what decisions compare with.
pub const SHORT_TEXT: usize = 24;

/// The digest of a JSON value, as held for an elided part (the text of a JSON string is its
/// quoted form, so a [`Text`] and the JSON string it serializes as have the same digest).
pub fn digest_of(value: &serde_json::Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

fn digest_of_str(text: &str) -> u64 {
    digest_of(&serde_json::Value::String(text.to_owned()))
}

/// The marker an elided part serializes as: its digest, or `null` when its content is unknown.
fn serialize_marker<S: Serializer>(digest: Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(ELIDED, &digest)?;
    map.end()
}

/// A text for people: a condition message, a failure message, a check's result.
///
/// The operator's watch cache holds a long one only as a digest ([`Text::elide`]). Equality
/// compares content: a text equals the digest of the same text. An elided text reads as empty
/// through `Deref` and `Display`; code that may see the cache's view of a status uses
/// [`Text::as_full`] (and [`Text::map`] to build a text from one).
#[derive(Clone, Default)]
pub struct Text(TextRepr);

#[derive(Clone)]
enum TextRepr {
    Full(String),
    /// Elided: the digest of the text.
    Digest(u64),
    /// Built from an elided text: unknown until computed again from the full one.
    Unknown,
}

impl Default for TextRepr {
    fn default() -> Self {
        Self::Full(String::new())
    }
}

impl Text {
    /// The text, unless it is elided.
    pub fn as_full(&self) -> Option<&str> {
        match &self.0 {
            TextRepr::Full(text) => Some(text),
            TextRepr::Digest(_) | TextRepr::Unknown => None,
        }
    }

    /// Whether the text is held only as a digest (or is unknown).
    pub fn is_elided(&self) -> bool {
        self.as_full().is_none()
    }

    /// Holds a long text as its digest.
    pub fn elide(&mut self) {
        if let TextRepr::Full(text) = &self.0
            && text.len() > SHORT_TEXT
        {
            self.0 = TextRepr::Digest(digest_of_str(text));
        }
    }

    /// A text built from this one; unknown when this one is elided.
    #[must_use]
    pub fn map(&self, build: impl FnOnce(&str) -> String) -> Self {
        match &self.0 {
            TextRepr::Full(text) => Self(TextRepr::Full(build(text))),
            TextRepr::Digest(_) | TextRepr::Unknown => Self(TextRepr::Unknown),
        }
    }

    /// The digest of the content, `None` when unknown.
    fn digest(&self) -> Option<u64> {
        match &self.0 {
            TextRepr::Full(text) => Some(digest_of_str(text)),
            TextRepr::Digest(digest) => Some(*digest),
            TextRepr::Unknown => None,
        }
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_full().unwrap_or_default()
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(TextRepr::Full(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self(TextRepr::Full(text.to_owned()))
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (TextRepr::Full(a), TextRepr::Full(b)) => a == b,
            (TextRepr::Unknown, TextRepr::Unknown) => true,
            _ => self.digest().is_some_and(|a| other.digest() == Some(a)),
        }
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        match &self.0 {
            TextRepr::Full(text) => text == other,
            TextRepr::Digest(digest) => *digest == digest_of_str(other),
            TextRepr::Unknown => false,
        }
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            TextRepr::Full(text) => fmt::Debug::fmt(text, f),
            TextRepr::Digest(digest) => write!(f, "<elided {digest:016x}>"),
            TextRepr::Unknown => f.write_str("<unknown>"),
        }
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            TextRepr::Full(text) => serializer.serialize_str(text),
            TextRepr::Digest(digest) => serialize_marker(Some(*digest), serializer),
            TextRepr::Unknown => serialize_marker(None, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

schema_as!(Text, String);
