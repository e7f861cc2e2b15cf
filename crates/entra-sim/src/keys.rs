//! The committed test-only RSA key pair, certificate thumbprints, and client assertions made the
//! way a confidential client makes them.
//!
//! ring cannot generate RSA keys, and Entra ID only takes RSA certificates for apps, so a
//! 2048-bit pair made once with `openssl` lives in `tests/data/` under a name that says it is
//! no credential. Tests of any crate (the operator's e2e tests too) use it through
//! [`test_app_key`].

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use serde_json::json;

use crate::jwt::{JwtAlgorithm, JwtSigningKey};

/// PKCS#8 private key of the test app (TEST ONLY: published with the source).
const TEST_APP_PRIVATE_KEY_PEM: &str =
    include_str!("../tests/data/TEST-ONLY-NOT-A-SECRET-entra-app.key.pem");
/// Self-signed certificate of [`TEST_APP_PRIVATE_KEY_PEM`].
const TEST_APP_CERTIFICATE_PEM: &str =
    include_str!("../tests/data/TEST-ONLY-NOT-A-SECRET-entra-app.cert.pem");

/// The committed test-only RSA 2048 key pair and its self-signed certificate. `Debug` leaves the
/// private key out all the same, so that no log learns to print keys.
#[derive(Clone, Copy)]
pub struct TestAppKey {
    /// PKCS#8 `PRIVATE KEY` PEM. Public in the source tree: never a credential.
    pub private_key_pem: &'static str,
    pub certificate_pem: &'static str,
}

impl std::fmt::Debug for TestAppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAppKey")
            .field("private_key_pem", &"<redacted>")
            .field("certificate_pem", &self.certificate_pem)
            .finish()
    }
}

/// The test app's key pair, as files are read by `include_str!` (also in
/// `crates/entra-sim/tests/data/`).
pub fn test_app_key() -> TestAppKey {
    TestAppKey {
        private_key_pem: TEST_APP_PRIVATE_KEY_PEM,
        certificate_pem: TEST_APP_CERTIFICATE_PEM,
    }
}

impl TestAppKey {
    pub fn signing_key(&self) -> io::Result<JwtSigningKey> {
        JwtSigningKey::rsa_from_pkcs8_pem(self.private_key_pem)
    }

    pub fn thumbprints(&self) -> io::Result<Thumbprints> {
        Thumbprints::of_pem(self.certificate_pem)
    }

    /// A client assertion for `client_id` at `token_url`: header `x5t#S256`, claims `aud`,
    /// `iss` = `sub` = client id, a fresh `jti`, `nbf`/`iat` now and `exp` five minutes ahead.
    pub fn client_assertion(
        &self,
        client_id: &str,
        token_url: &str,
        algorithm: JwtAlgorithm,
    ) -> io::Result<String> {
        let header = json!({"x5t#S256": self.thumbprints()?.sha256});
        let claims = client_assertion_claims(client_id, token_url, Duration::from_secs(300));
        self.signing_key()?.sign(algorithm, &header, &claims)
    }
}

/// The claims of a client assertion valid from now for `lifetime`, with a fresh `jti`.
pub fn client_assertion_claims(
    client_id: &str,
    token_url: &str,
    lifetime: Duration,
) -> serde_json::Value {
    let now = unix_seconds(SystemTime::now());
    json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": sync_client_broker_sim::new_directory_id(),
        "nbf": now,
        "iat": now,
        "exp": now.saturating_add(lifetime.as_secs()),
    })
}

pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_secs())
}

/// A certificate's thumbprints as JWT headers carry them (base64url, no padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbprints {
    /// SHA-256 of the DER certificate: `x5t#S256`.
    pub sha256: String,
    /// SHA-1 of the DER certificate: `x5t`.
    pub sha1: String,
}

impl Thumbprints {
    pub fn of_der(der: &[u8]) -> Self {
        let hash = |algorithm| URL_SAFE_NO_PAD.encode(digest::digest(algorithm, der));
        Self {
            sha256: hash(&digest::SHA256),
            sha1: hash(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        }
    }

    /// Of the first `CERTIFICATE` block of a PEM.
    pub fn of_pem(pem: &str) -> io::Result<Self> {
        certificate_der(pem).map(|der| Self::of_der(&der))
    }
}

/// The DER of the first `CERTIFICATE` block of a PEM.
pub(crate) fn certificate_der(pem: &str) -> io::Result<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|block| block.label == "CERTIFICATE")
        .map(|block| block.contents)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no CERTIFICATE block in the PEM",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{VerificationKey, parse};

    #[test]
    fn the_test_pair_matches_and_signs_both_rsa_algorithms() {
        let pair = test_app_key();
        let key = VerificationKey::from_pem(pair.certificate_pem).expect("certificate key");
        for algorithm in [JwtAlgorithm::Rs256, JwtAlgorithm::Ps256] {
            let token = pair
                .client_assertion("app", "https://login/t/oauth2/v2.0/token", algorithm)
                .expect("signed");
            let parsed = parse(&token).expect("parses");
            assert!(parsed.verifies_with(&key, &[algorithm]), "{algorithm:?}");
            assert_eq!(
                parsed.header_str("x5t#S256"),
                Some(pair.thumbprints().expect("thumbprints").sha256.as_str())
            );
        }
    }

    #[test]
    fn debug_output_leaves_the_private_key_out() {
        let printed = format!("{:?}", test_app_key());
        assert!(!printed.contains("PRIVATE KEY"), "{printed}");
        assert!(printed.contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn thumbprints_are_base64url_digests_of_the_der() {
        let thumbprints = test_app_key().thumbprints().expect("thumbprints");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&thumbprints.sha256)
                .expect("b64")
                .len(),
            32
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&thumbprints.sha1)
                .expect("b64")
                .len(),
            20
        );
    }
}
