//! Client assertions: the JWT an application signs with its certificate's key (PS256), and the
//! random ids they carry.

use std::fmt;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use sync_client_http::SecretString;

/// How long an assertion is valid: Microsoft accepts 5 to 10 minutes ahead.
pub(crate) const ASSERTION_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The `client_assertion_type` of every assertion (certificate and federated).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signs client assertions with a certificate credential's RSA key.
pub(crate) struct CertificateSigner {
    /// base64url(SHA-256 of the certificate DER), the header's `x5t#S256`.
    thumbprint_s256: String,
    key_pair: RsaKeyPair,
    random: SystemRandom,
}

impl fmt::Debug for CertificateSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateSigner")
            .field("thumbprint_s256", &self.thumbprint_s256)
            .finish_non_exhaustive()
    }
}

impl CertificateSigner {
    /// Reads the certificate (the first in the PEM) and the RSA key, and checks that the key
    /// belongs to the certificate. Errors never quote the key.
    pub(crate) fn new(
        certificate_pem: &str,
        private_key_pem: &SecretString,
    ) -> Result<Self, String> {
        let certificate = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .next()
            .ok_or("the certificate PEM holds no certificate (BEGIN CERTIFICATE)")?
            .map_err(|_| "the certificate PEM is not valid PEM".to_owned())?;
        let key_pair = rsa_key_pair(private_key_pem)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref())
            .map_err(|error| format!("the certificate cannot be parsed: {error}"))?;
        let certified_key = &parsed.public_key().subject_public_key.data;
        if certified_key.as_ref() != key_pair.public().as_ref() {
            return Err("the private key does not belong to the certificate".to_owned());
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate.as_ref());
        Ok(Self {
            thumbprint_s256: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            key_pair,
            random: SystemRandom::new(),
        })
    }

    /// A signed assertion for `client_id` at `token_url`, valid from `now` for
    /// [`ASSERTION_LIFETIME`].
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: SystemTime,
    ) -> Result<SecretString, String> {
        let issued_at = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970".to_owned())?
            .as_secs();
        let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint_s256});
        let claims = json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": random_uuid(&self.random)?,
            "nbf": issued_at,
            "iat": issued_at,
            "exp": issued_at + ASSERTION_LIFETIME.as_secs(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(
                &RSA_PSS_SHA256,
                &self.random,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the client assertion failed".to_owned())?;
        Ok(SecretString::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// The RSA key of a PKCS#8 or PKCS#1 PEM.
fn rsa_key_pair(private_key_pem: &SecretString) -> Result<RsaKeyPair, String> {
    const WANTED: &str = "an unencrypted RSA key in PKCS#8 (BEGIN PRIVATE KEY) or PKCS#1 \
                          (BEGIN RSA PRIVATE KEY) PEM is needed";
    let key = PrivateKeyDer::from_pem_slice(private_key_pem.expose().as_bytes())
        .map_err(|_| format!("the private key PEM holds no usable key: {WANTED}"))?;
    let parsed = match &key {
        PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(_) => {
            return Err(format!(
                "the private key is an EC key; PS256 needs RSA: {WANTED}"
            ));
        }
        _ => return Err(format!("the private key has an unknown format: {WANTED}")),
    };
    // ring's reasons are fixed words ("InvalidEncoding", "WrongAlgorithm"): they quote nothing.
    parsed.map_err(|rejected| {
        format!("the private key is not a usable RSA key ({rejected}): {WANTED}")
    })
}

/// A random (version 4) UUID, as Microsoft's libraries use for `jti`.
pub(crate) fn random_uuid(random: &dyn SecureRandom) -> Result<String, String> {
    let mut bytes = [0_u8; 16];
    random
        .fill(&mut bytes)
        .map_err(|_| "the system random number generator failed".to_owned())?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = bytes
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        });
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_random_version_4() {
        let random = SystemRandom::new();
        let first = random_uuid(&random).expect("uuid");
        let second = random_uuid(&random).expect("uuid");
        assert_ne!(first, second);
        assert_eq!(first.len(), 36);
        assert_eq!(&first[14..15], "4");
        assert!(matches!(&first[19..20], "8" | "9" | "a" | "b"), "{first}");
    }

    #[test]
    fn keys_that_are_not_rsa_pem_are_refused_without_being_quoted() {
        for pem in [
            "",
            "hunter2",
            "-----BEGIN PRIVATE KEY-----\nhunter2\n-----END PRIVATE KEY-----\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\naHVudGVyMg==\n-----END ENCRYPTED PRIVATE KEY-----\n",
        ] {
            let error = rsa_key_pair(&SecretString::from(pem)).expect_err("refused");
            assert!(!error.contains("hunter2"), "{error}");
            assert!(error.contains("PKCS#8 (BEGIN PRIVATE KEY)"), "{error}");
        }
    }
}
