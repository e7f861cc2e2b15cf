//! Which data key holds which value. The spec names the keys (`spec.keys`); the Secret records
//! the names it was written with (`syncclient.io/data-keys`), so a rename is applied by writing
//! the same credential under the new names, never by issuing a new one.

use super::{CredentialData, IssuedValues};
use crate::api::{CredentialType, SecretKeys};

/// The data keys in use for a spec (defaults overridden by `spec.keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNames {
    pub access_token: String,
    pub expires_at: String,
    pub scim_url: String,
    pub client_id: String,
    pub client_secret: String,
}

impl KeyNames {
    pub fn from_spec(keys: Option<&SecretKeys>) -> Self {
        let pick = |value: Option<&String>, default: &str| {
            value.cloned().unwrap_or_else(|| default.to_owned())
        };
        let keys = keys.cloned().unwrap_or_default();
        Self {
            access_token: pick(keys.access_token.as_ref(), "access_token"),
            expires_at: pick(keys.expires_at.as_ref(), "expires_at"),
            scim_url: pick(keys.scim_url.as_ref(), "scim_url"),
            client_id: pick(keys.client_id.as_ref(), "client_id"),
            client_secret: pick(keys.client_secret.as_ref(), "client_secret"),
        }
    }

    /// The roles a credential type writes, with their key names.
    fn roles(&self, credential_type: CredentialType) -> Vec<(&'static str, &str)> {
        match credential_type {
            CredentialType::AccessToken => vec![
                ("accessToken", &self.access_token),
                ("expiresAt", &self.expires_at),
                ("scimUrl", &self.scim_url),
            ],
            CredentialType::ClientSecret => vec![
                ("clientId", &self.client_id),
                ("clientSecret", &self.client_secret),
            ],
        }
    }

    /// The `syncclient.io/data-keys` annotation: `accessToken=token,expiresAt=expires_at,...`.
    pub fn layout_text(&self, credential_type: CredentialType) -> String {
        self.roles(credential_type)
            .iter()
            .map(|(role, key)| format!("{role}={key}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the annotation back; `None` when it is absent, malformed or lacks a role.
    pub fn parse_layout(text: &str, credential_type: CredentialType) -> Option<Self> {
        let mut names = Self::from_spec(None);
        let mut seen = 0;
        for pair in text.split(',') {
            let (role, key) = pair.split_once('=')?;
            if key.is_empty() {
                return None;
            }
            let slot = match role {
                "accessToken" => &mut names.access_token,
                "expiresAt" => &mut names.expires_at,
                "scimUrl" => &mut names.scim_url,
                "clientId" => &mut names.client_id,
                "clientSecret" => &mut names.client_secret,
                _ => return None,
            };
            key.clone_into(slot);
            seen += 1;
        }
        (seen == names.roles(credential_type).len()).then_some(names)
    }

    /// Whether both name the same keys for what a credential type writes.
    pub fn same_layout(&self, other: &Self, credential_type: CredentialType) -> bool {
        self.roles(credential_type) == other.roles(credential_type)
    }
}

/// The values of a credential held in a Secret, read under the keys it was written with.
#[derive(Clone, PartialEq, Eq)]
pub enum HeldValues {
    AccessToken {
        token: String,
        expires_at: Option<String>,
        scim_url: String,
    },
    ClientSecret {
        client_id: String,
        client_secret: String,
    },
}

impl std::fmt::Debug for HeldValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AccessToken { .. } => "HeldValues::AccessToken(<redacted>)",
            Self::ClientSecret { .. } => "HeldValues::ClientSecret(<redacted>)",
        })
    }
}

impl HeldValues {
    /// Reads the values from `data` under `layout`; `None` when one is missing.
    pub fn read(
        data: &CredentialData,
        layout: &KeyNames,
        credential_type: CredentialType,
    ) -> Option<Self> {
        let get = |key: &str| data.get(key).map(ToOwned::to_owned);
        Some(match credential_type {
            CredentialType::AccessToken => Self::AccessToken {
                token: get(&layout.access_token)?,
                expires_at: get(&layout.expires_at),
                scim_url: get(&layout.scim_url)?,
            },
            CredentialType::ClientSecret => Self::ClientSecret {
                client_id: get(&layout.client_id)?,
                client_secret: get(&layout.client_secret)?,
            },
        })
    }

    /// The data to write them under `keys`.
    pub fn data(&self, keys: &KeyNames) -> CredentialData {
        match self {
            Self::AccessToken {
                token,
                expires_at,
                scim_url,
            } => {
                let mut data = super::credential_data(
                    keys,
                    &IssuedValues::AccessToken {
                        token,
                        expires_at: None,
                        scim_url,
                    },
                );
                if let Some(at) = expires_at {
                    data.0.insert(keys.expires_at.clone(), at.clone());
                }
                data
            }
            Self::ClientSecret {
                client_id,
                client_secret,
            } => super::credential_data(
                keys,
                &IssuedValues::ClientSecret {
                    client_id,
                    client_secret,
                },
            ),
        }
    }

    /// The secret part (the access token or the client secret), e.g. to probe or fingerprint it.
    pub fn secret(&self) -> &str {
        match self {
            Self::AccessToken { token, .. } => token,
            Self::ClientSecret { client_secret, .. } => client_secret,
        }
    }
}
