//! Names: condition types and reasons, failure categories, history triggers and outcomes. Each
//! is one of a small set, so holders share one copy (interned, up to a bound).

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

super::schema_as!(Name, String);
