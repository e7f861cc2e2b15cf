//! Status strings the operator holds once per credential, kept small: names from a small set are
//! shared ([`Name`]); texts for people ([`Text`]) and the history of attempts ([`History`]) can be
//! held as a digest instead ([`Text::elide`], [`History::elide`]). The operator's watch cache does
//! that, since no decision reads them; the status writer never sends a digest and reads the
//! parts it needs from the API server instead.
//!
//! A digest serializes as `{"$elided": <digest>}` ([`ELIDED`]), so that a status holding one can
//! be compared and hashed, and the writer can tell that a patch would carry one.

use std::collections::HashSet;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RotationRecord;

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

/// A condition type or reason, a failure category, a history trigger or outcome: one of a small
/// set, so every credential holding it shares one copy (names read from the API server are
/// interned; constants are not copied at all).
#[derive(Clone)]
pub struct Name(NameRepr);

#[derive(Clone)]
enum NameRepr {
    Static(&'static str),
    Shared(Arc<str>),
}

/// Names interned at most: beyond, a name read from the API server gets its own copy (a bound
/// against a cluster that writes ever new reasons).
const MAX_INTERNED: usize = 1024;
/// Longer strings are not names, and are not interned.
const MAX_NAME_LEN: usize = 128;

static INTERNED: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Mutex::default);

impl Name {
    /// A name known at compile time.
    pub const fn new(name: &'static str) -> Self {
        Self(NameRepr::Static(name))
    }

    /// A name read at run time, shared with every other holder of the same name.
    pub fn intern(name: &str) -> Self {
        if name.len() > MAX_NAME_LEN {
            return Self(NameRepr::Shared(Arc::from(name)));
        }
        let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = interned.get(name) {
            return Self(NameRepr::Shared(shared.clone()));
        }
        let shared: Arc<str> = Arc::from(name);
        if interned.len() < MAX_INTERNED {
            interned.insert(shared.clone());
        }
        Self(NameRepr::Shared(shared))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            NameRepr::Static(name) => name,
            NameRepr::Shared(name) => name,
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for Name {
    fn from(name: &'static str) -> Self {
        Self::new(name)
    }
}

impl From<String> for Name {
    fn from(name: String) -> Self {
        Self::intern(&name)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Name, E> {
                Ok(Name::intern(name))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for Name {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
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

impl JsonSchema for Text {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// The last issue attempts, newest first.
///
/// The operator's watch cache holds only the attempts its decisions read and a digest of the
/// whole ([`History::elide`]); `Deref` then yields the attempts kept. Equality compares content.
#[derive(Clone, Default)]
pub struct History(HistoryRepr);

#[derive(Clone)]
enum HistoryRepr {
    Full(Vec<RotationRecord>),
    Elided {
        /// The digest of the whole history; `None` once an attempt was recorded on the elided
        /// history (the whole is then unknown until computed again from the full one).
        digest: Option<u64>,
        kept: Vec<RotationRecord>,
    },
}

impl Default for HistoryRepr {
    fn default() -> Self {
        Self::Full(Vec::new())
    }
}

impl History {
    /// Adds an attempt, newest first, keeping at most `max`.
    pub fn record(&mut self, attempt: RotationRecord, max: usize) {
        match &mut self.0 {
            HistoryRepr::Full(entries) => {
                entries.insert(0, attempt);
                entries.truncate(max);
            }
            HistoryRepr::Elided { digest, kept } => {
                *digest = None;
                kept.insert(0, attempt);
                kept.truncate(max);
            }
        }
    }

    /// Holds the history as its digest and the attempts `keep` selects.
    pub fn elide(&mut self, keep: impl Fn(&RotationRecord) -> bool) {
        if let HistoryRepr::Full(entries) = &mut self.0 {
            let digest = serde_json::to_value(&*entries).ok().map(|v| digest_of(&v));
            let kept: Vec<RotationRecord> = entries.drain(..).filter(|a| keep(a)).collect();
            self.0 = HistoryRepr::Elided { digest, kept };
        }
    }

    pub fn is_elided(&self) -> bool {
        matches!(self.0, HistoryRepr::Elided { .. })
    }

    fn digest(&self) -> Option<u64> {
        match &self.0 {
            HistoryRepr::Full(entries) => serde_json::to_value(entries).ok().map(|v| digest_of(&v)),
            HistoryRepr::Elided { digest, .. } => *digest,
        }
    }
}

impl Deref for History {
    type Target = [RotationRecord];
    fn deref(&self) -> &[RotationRecord] {
        match &self.0 {
            HistoryRepr::Full(entries) | HistoryRepr::Elided { kept: entries, .. } => entries,
        }
    }
}

impl From<Vec<RotationRecord>> for History {
    fn from(entries: Vec<RotationRecord>) -> Self {
        Self(HistoryRepr::Full(entries))
    }
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (HistoryRepr::Full(a), HistoryRepr::Full(b)) => a == b,
            _ => self.digest().is_some_and(|a| other.digest() == Some(a)),
        }
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            HistoryRepr::Full(entries) => fmt::Debug::fmt(entries, f),
            HistoryRepr::Elided { digest, kept } => f
                .debug_struct("Elided")
                .field("digest", digest)
                .field("kept", kept)
                .finish(),
        }
    }
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            HistoryRepr::Full(entries) => entries.serialize(serializer),
            HistoryRepr::Elided { digest, .. } => serialize_marker(*digest, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<RotationRecord>::deserialize(deserializer).map(Self::from)
    }
}

impl JsonSchema for History {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        Vec::<RotationRecord>::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Vec::<RotationRecord>::json_schema(generator)
    }
}
