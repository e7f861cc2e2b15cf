//! The synchronization secrets of one service principal: per-key upsert, an optional read lag
//! after a write, and masking on read.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::config::SecretMasking;

pub(crate) const BASE_ADDRESS: &str = "BaseAddress";
pub(crate) const SECRET_TOKEN: &str = "SecretToken";

/// The members of Graph's `synchronizationSecret` enum: the only keys `PUT` accepts, spelled
/// exactly so.
const KNOWN_KEYS: [&str; 45] = [
    "None",
    "UserName",
    "Password",
    "SecretToken",
    "AppKey",
    "BaseAddress",
    "ClientIdentifier",
    "ClientSecret",
    "SingleSignOnType",
    "Sandbox",
    "Url",
    "Domain",
    "ConsumerKey",
    "ConsumerSecret",
    "TokenKey",
    "TokenExpiration",
    "Oauth2AccessToken",
    "Oauth2AccessTokenCreationTime",
    "Oauth2RefreshToken",
    "SyncAll",
    "InstanceName",
    "Oauth2ClientId",
    "Oauth2ClientSecret",
    "CompanyId",
    "UpdateKeyOnSoftDelete",
    "SynchronizationSchedule",
    "SystemOfRecord",
    "SandboxName",
    "EnforceDomain",
    "SyncNotificationSettings",
    "SkipOutOfScopeDeletions",
    "Oauth2AuthorizationCode",
    "Oauth2RedirectUri",
    "ApplicationTemplateIdentifier",
    "Oauth2TokenExchangeUri",
    "Oauth2AuthorizationUri",
    "AuthenticationType",
    "Server",
    "PerformInboundEntitlementGrants",
    "HardDeletesEnabled",
    "SyncAgentCompatibilityKey",
    "SyncAgentADContainer",
    "ValidateDomain",
    "TestReferences",
    "ConnectionString",
];

/// Keys whose values are credentials (masked even under [`SecretMasking::CredentialsOnly`]).
const CREDENTIAL_KEYS: [&str; 11] = [
    "Password",
    "SecretToken",
    "AppKey",
    "ClientSecret",
    "ConsumerSecret",
    "TokenKey",
    "Oauth2AccessToken",
    "Oauth2RefreshToken",
    "Oauth2ClientSecret",
    "Oauth2AuthorizationCode",
    "ConnectionString",
];

/// How a key compares with the documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyCheck {
    Known,
    /// A known key in another case (`baseAddress`).
    WrongCase,
    Unknown,
}

pub(crate) fn check_key(key: &str) -> KeyCheck {
    if KNOWN_KEYS.contains(&key) {
        KeyCheck::Known
    } else if KNOWN_KEYS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(key))
    {
        KeyCheck::WrongCase
    } else {
        KeyCheck::Unknown
    }
}

pub(crate) type SecretValues = BTreeMap<String, String>;

/// What readers saw before a write, until `until`.
#[derive(Clone)]
struct Lag {
    until: Instant,
    previous: SecretValues,
}

/// The values Entra ID holds for one service principal. No `Debug`: values are credentials.
#[derive(Clone, Default)]
pub(crate) struct SecretStore {
    current: SecretValues,
    lag: Option<Lag>,
}

impl SecretStore {
    /// The values as written, whatever readers see.
    pub(crate) fn held(&self) -> &SecretValues {
        &self.current
    }

    /// The values `GET /secrets`, `validateCredentials` and cycles see now.
    pub(crate) fn visible(&self, now: Instant) -> &SecretValues {
        match &self.lag {
            Some(lag) if now < lag.until => &lag.previous,
            _ => &self.current,
        }
    }

    /// Upserts each pair. With `lag_until`, readers keep seeing what they saw before this write
    /// until then; a write without it ends any lag.
    pub(crate) fn upsert(
        &mut self,
        pairs: Vec<(String, String)>,
        now: Instant,
        lag_until: Option<Instant>,
    ) {
        let seen_before = self.visible(now).clone();
        self.current.extend(pairs);
        self.lag = lag_until.map(|until| Lag {
            until,
            previous: seen_before,
        });
    }

    /// Key and value pairs as `GET /secrets` shows them.
    pub(crate) fn masked(&self, now: Instant, masking: SecretMasking) -> Vec<(String, String)> {
        self.visible(now)
            .iter()
            .map(|(key, value)| {
                let hidden =
                    masking == SecretMasking::All || CREDENTIAL_KEYS.contains(&key.as_str());
                (
                    key.clone(),
                    if hidden {
                        "*".to_owned()
                    } else {
                        value.clone()
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn keys_are_case_sensitive() {
        assert_eq!(check_key("BaseAddress"), KeyCheck::Known);
        assert_eq!(check_key("baseAddress"), KeyCheck::WrongCase);
        assert_eq!(check_key("Token"), KeyCheck::Unknown);
    }

    #[test]
    fn writes_upsert_per_key_and_a_lag_shows_the_previous_values_until_it_ends() {
        let now = Instant::now();
        let mut store = SecretStore::default();
        store.upsert(
            pairs(&[(BASE_ADDRESS, "https://a"), (SECRET_TOKEN, "one")]),
            now,
            None,
        );
        store.upsert(
            pairs(&[(SECRET_TOKEN, "two")]),
            now,
            Some(now + Duration::from_secs(5)),
        );
        assert_eq!(store.held()[BASE_ADDRESS], "https://a");
        assert_eq!(store.held()[SECRET_TOKEN], "two");
        assert_eq!(store.visible(now)[SECRET_TOKEN], "one");
        assert_eq!(
            store.visible(now + Duration::from_secs(5))[SECRET_TOKEN],
            "two"
        );
        store.upsert(pairs(&[(SECRET_TOKEN, "three")]), now, None);
        assert_eq!(store.visible(now)[SECRET_TOKEN], "three");
    }

    #[test]
    fn masking_hides_every_value_or_only_credentials() {
        let now = Instant::now();
        let mut store = SecretStore::default();
        store.upsert(
            pairs(&[(BASE_ADDRESS, "https://a"), (SECRET_TOKEN, "t")]),
            now,
            None,
        );
        assert_eq!(
            store.masked(now, SecretMasking::All),
            pairs(&[(BASE_ADDRESS, "*"), (SECRET_TOKEN, "*")])
        );
        assert_eq!(
            store.masked(now, SecretMasking::CredentialsOnly),
            pairs(&[(BASE_ADDRESS, "https://a"), (SECRET_TOKEN, "*")])
        );
    }
}
