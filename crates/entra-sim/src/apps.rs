//! App registrations: client id, client secrets, certificates, federated credentials; and the
//! application permissions an app may be granted.

use std::fmt;
use std::io;
use std::time::SystemTime;

use crate::jwt::VerificationKey;
use crate::keys::{Thumbprints, certificate_der};

/// The audience Entra ID expects in tokens exchanged through a federated credential.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The application permissions (app roles of Microsoft Graph) the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// `Synchronization.ReadWrite.All`: every service principal's synchronization.
    SynchronizationReadWriteAll,
    /// `Application.ReadWrite.OwnedBy`: only service principals the app owns.
    ApplicationReadWriteOwnedBy,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Self::SynchronizationReadWriteAll => "Synchronization.ReadWrite.All",
            Self::ApplicationReadWriteOwnedBy => "Application.ReadWrite.OwnedBy",
        }
    }
}

/// A client secret of an app. `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret {
    pub(crate) value: String,
    pub(crate) expires_at: Option<SystemTime>,
}

impl ClientSecret {
    /// A secret that never expires.
    pub fn new(value: &str) -> Self {
        Self {
            value: value.to_owned(),
            expires_at: None,
        }
    }

    /// The secret stops working at `time` (`AADSTS7000222` from then on).
    #[must_use]
    pub fn expiring_at(mut self, time: SystemTime) -> Self {
        self.expires_at = Some(time);
        self
    }

    pub(crate) fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A certificate registered for an app: what a client assertion's `x5t#S256`/`x5t` names and
/// the key its signature must verify under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegisteredCertificate {
    pub thumbprints: Thumbprints,
    pub key: VerificationKey,
}

/// Trust in tokens of another issuer (a cluster's ServiceAccount tokens): accepted when `iss`
/// and `sub` equal these and `aud` holds one of `audiences`, signed by `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    /// Real Entra ID fetches the issuer's JWKS; the simulator holds the key itself.
    pub key: VerificationKey,
}

impl FederatedCredential {
    /// With the audience `api://AzureADTokenExchange`.
    pub fn new(issuer: &str, subject: &str, key: VerificationKey) -> Self {
        Self {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()],
            key,
        }
    }
}

/// An app registration (what a client id names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRegistration {
    pub(crate) client_id: String,
    pub(crate) secrets: Vec<ClientSecret>,
    pub(crate) certificates: Vec<RegisteredCertificate>,
    pub(crate) federated_credentials: Vec<FederatedCredential>,
}

impl AppRegistration {
    /// An app with no credentials yet.
    pub fn new(client_id: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            federated_credentials: Vec::new(),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    #[must_use]
    pub fn with_secret(mut self, secret: ClientSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Registers the first certificate of a `CERTIFICATE` PEM (its public key only).
    pub fn with_certificate_pem(mut self, pem: &str) -> io::Result<Self> {
        let der = certificate_der(pem)?;
        self.certificates.push(RegisteredCertificate {
            thumbprints: Thumbprints::of_der(&der),
            key: VerificationKey::from_certificate_der(&der)?,
        });
        Ok(self)
    }

    #[must_use]
    pub fn with_federated_credential(mut self, credential: FederatedCredential) -> Self {
        self.federated_credentials.push(credential);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_client_secrets() {
        let app = AppRegistration::new("app").with_secret(ClientSecret::new("s3cr3t-value"));
        let printed = format!("{app:?}");
        assert!(!printed.contains("s3cr3t-value"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }
}
