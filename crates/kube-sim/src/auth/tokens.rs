//! Authentication: the bearer tokens the simulator issues (admin and ServiceAccounts), their
//! fingerprints, and who a request's token is.

use std::collections::HashMap;

use base64::Engine as _;
use ring::hmac;
use ring::rand::SystemRandom;
use serde_json::Value;

use crate::store::{ObjectKey, Store};

use super::User;

/// A token issued for a ServiceAccount: valid while that ServiceAccount exists (and, when it
/// existed at issue time, while it is the same object, as a bound token is).
#[derive(Debug, Clone)]
struct ServiceAccountToken {
    namespace: String,
    name: String,
    uid: Option<String>,
}

/// The bearer tokens the simulator accepts: random (an HMAC of a counter under a key from the
/// system RNG), never logged.
pub(crate) struct Tokens {
    key: hmac::Key,
    issued: u64,
    admin: String,
    service_accounts: HashMap<String, ServiceAccountToken>,
}

impl Tokens {
    pub fn new() -> std::io::Result<Self> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| std::io::Error::other("the system random generator failed"))?;
        let mut tokens = Self {
            key,
            issued: 0,
            admin: String::new(),
            service_accounts: HashMap::new(),
        };
        tokens.admin = tokens.next_token();
        Ok(tokens)
    }

    fn next_token(&mut self) -> String {
        self.issued += 1;
        let tag = hmac::sign(&self.key, &self.issued.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// A new token for the ServiceAccount `namespace/name`, bound to `uid` when given.
    pub fn issue(&mut self, namespace: &str, name: &str, uid: Option<String>) -> String {
        let token = self.next_token();
        self.service_accounts.insert(
            token.clone(),
            ServiceAccountToken {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                uid,
            },
        );
        token
    }
}

/// The bearer token of an `Authorization` header.
pub(crate) fn bearer_token(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What identifies a client by its bearer token without showing it: `sha256:` and the first
/// 16 hex digits of the token's SHA-256.
pub(crate) fn token_fingerprint(token: &str) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .fold("sha256:".to_owned(), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// The user behind an `Authorization` header, if its bearer token is one the simulator
/// issued (and, for a ServiceAccount token, the ServiceAccount still exists).
pub(crate) fn authenticate(tokens: &Tokens, store: &Store, header: Option<&str>) -> Option<User> {
    let token = bearer_token(header)?;
    if token == tokens.admin {
        return Some(User::admin());
    }
    let issued = tokens.service_accounts.get(token)?;
    let account = store.lookup(&ObjectKey {
        group: String::new(),
        plural: "serviceaccounts".to_owned(),
        namespace: issued.namespace.clone(),
        name: issued.name.clone(),
    })?;
    let uid = account.pointer("/metadata/uid").and_then(Value::as_str);
    if issued
        .uid
        .as_deref()
        .is_some_and(|bound| Some(bound) != uid)
    {
        return None;
    }
    Some(User::service_account(&issued.namespace, &issued.name))
}
