//! JSON Web Tokens as the token endpoint sees them: parsed without trust, then verified against
//! a registered public key (RS256, PS256, ES256 through ring). Signing is here too, for tests
//! that make client assertions and cluster-issued tokens themselves.

use std::fmt;
use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Map, Value};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The JWS algorithms the simulator verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA P-256 with SHA-256 (cluster-issued tokens only; Entra ID wants RSA for app
    /// certificates).
    Es256,
}

impl JwtAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Rs256, Self::Ps256, Self::Es256]
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
    }
}

fn invalid(what: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
}

/// A public key that verifies JWT signatures: RSA (any size ring accepts, 2048 bits and up) or
/// EC P-256.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationKey {
    kind: KeyKind,
    /// The RSAPublicKey DER (RSA) or the uncompressed point (EC), as ring reads them.
    public_key: Vec<u8>,
}

impl VerificationKey {
    /// From a `PUBLIC KEY` (SubjectPublicKeyInfo) or a `CERTIFICATE` PEM block; the first such
    /// block counts.
    pub fn from_pem(pem: &str) -> io::Result<Self> {
        for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
            let block = block.map_err(|error| invalid(format!("PEM: {error}")))?;
            match block.label.as_str() {
                "PUBLIC KEY" => return Self::from_spki_der(&block.contents),
                "CERTIFICATE" => return Self::from_certificate_der(&block.contents),
                _ => {}
            }
        }
        Err(invalid("no PUBLIC KEY or CERTIFICATE block in the PEM"))
    }

    pub fn from_certificate_der(der: &[u8]) -> io::Result<Self> {
        let (_, certificate) = X509Certificate::from_der(der)
            .map_err(|error| invalid(format!("certificate: {error}")))?;
        Self::from_spki(certificate.public_key())
    }

    pub fn from_spki_der(der: &[u8]) -> io::Result<Self> {
        let (_, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|error| invalid(format!("public key: {error}")))?;
        Self::from_spki(&spki)
    }

    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> io::Result<Self> {
        let algorithm = &spki.algorithm.algorithm;
        let kind = if *algorithm == OID_PKCS1_RSAENCRYPTION {
            KeyKind::Rsa
        } else if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
            && spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|parameters| parameters.as_oid().ok())
                .is_some_and(|curve| curve == OID_EC_P256)
        {
            KeyKind::EcP256
        } else {
            return Err(invalid("only RSA and EC P-256 public keys are supported"));
        };
        Ok(Self {
            kind,
            public_key: spki.subject_public_key.data.to_vec(),
        })
    }

    /// Whether `signature` over `message` verifies with `algorithm` under this key.
    pub(crate) fn verifies(
        &self,
        algorithm: JwtAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let verification: &dyn signature::VerificationAlgorithm = match (self.kind, algorithm) {
            (KeyKind::Rsa, JwtAlgorithm::Rs256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa, JwtAlgorithm::Ps256) => &signature::RSA_PSS_2048_8192_SHA256,
            (KeyKind::EcP256, JwtAlgorithm::Es256) => &signature::ECDSA_P256_SHA256_FIXED,
            _ => return false,
        };
        UnparsedPublicKey::new(verification, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kind", &self.kind)
            .field("bytes", &self.public_key.len())
            .finish()
    }
}

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A private key that signs JWTs (for tests: client assertions and cluster-issued tokens).
/// `Debug` shows only the key type.
pub struct JwtSigningKey {
    signer: Signer,
    public_key_pem: String,
}

impl JwtSigningKey {
    /// An RSA key from a PKCS#8 `PRIVATE KEY` PEM (signs RS256 and PS256).
    pub fn rsa_from_pkcs8_pem(pem: &str) -> io::Result<Self> {
        let key =
            rcgen::KeyPair::from_pem(pem).map_err(|error| invalid(format!("key: {error}")))?;
        let signer = RsaKeyPair::from_pkcs8(&key.serialize_der())
            .map_err(|error| invalid(format!("RSA key: {error}")))?;
        Ok(Self {
            signer: Signer::Rsa(signer),
            public_key_pem: key.public_key_pem(),
        })
    }

    /// A fresh EC P-256 key (signs ES256), as a cluster's ServiceAccount issuer may hold.
    pub fn generate_es256() -> io::Result<Self> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|error| invalid(format!("EC key: {error}")))?;
        let signer = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &SystemRandom::new(),
        )
        .map_err(|error| invalid(format!("EC key: {error}")))?;
        Ok(Self {
            signer: Signer::Ecdsa(signer),
            public_key_pem: key.public_key_pem(),
        })
    }

    /// The public half as a `PUBLIC KEY` PEM, to register with a federated credential.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    pub fn verification_key(&self) -> io::Result<VerificationKey> {
        VerificationKey::from_pem(&self.public_key_pem)
    }

    /// `header.claims.signature`, base64url. `alg` (and `typ: JWT` unless given) are set in
    /// the header; `header` and `claims` must be JSON objects.
    pub fn sign(
        &self,
        algorithm: JwtAlgorithm,
        header: &Value,
        claims: &Value,
    ) -> io::Result<String> {
        let mut header = header
            .as_object()
            .cloned()
            .ok_or_else(|| invalid("the JWT header must be a JSON object"))?;
        header.insert("alg".to_owned(), Value::from(algorithm.name()));
        header.entry("typ").or_insert_with(|| Value::from("JWT"));
        if !claims.is_object() {
            return Err(invalid("the JWT claims must be a JSON object"));
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.signature(algorithm, signing_input.as_bytes())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    fn signature(&self, algorithm: JwtAlgorithm, message: &[u8]) -> io::Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match (&self.signer, algorithm) {
            (Signer::Rsa(key), JwtAlgorithm::Rs256 | JwtAlgorithm::Ps256) => {
                let padding: &dyn signature::RsaEncoding = if algorithm == JwtAlgorithm::Rs256 {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(padding, &rng, message, &mut signature)
                    .map_err(|_| invalid("RSA signing failed"))?;
                Ok(signature)
            }
            (Signer::Ecdsa(key), JwtAlgorithm::Es256) => key
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| invalid("ECDSA signing failed")),
            _ => Err(invalid(format!(
                "this key cannot sign {}",
                algorithm.name()
            ))),
        }
    }
}

impl fmt::Debug for JwtSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.signer {
            Signer::Rsa(_) => "RSA",
            Signer::Ecdsa(_) => "EC P-256",
        };
        f.debug_struct("JwtSigningKey")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

/// A JWT split into its parts, not yet trusted.
pub(crate) struct ParsedJwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS; `None` when it is not one.
pub(crate) fn parse(token: &str) -> Option<ParsedJwt> {
    let mut parts = token.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let object = |part: &str| match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    };
    Some(ParsedJwt {
        header: object(header)?,
        claims: object(claims)?,
        signing_input: format!("{header}.{claims}"),
        signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
    })
}

impl ParsedJwt {
    pub(crate) fn algorithm(&self) -> Option<JwtAlgorithm> {
        self.header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(JwtAlgorithm::from_name)
    }

    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim, seconds since the epoch (fractions dropped).
    pub(crate) fn claim_seconds(&self, name: &str) -> Option<i64> {
        let value = self.claims.get(name)?;
        #[allow(clippy::cast_possible_truncation)] // a date, in whole seconds
        value
            .as_i64()
            .or_else(|| value.as_f64().map(|seconds| seconds as i64))
    }

    /// `aud` as a list (a string or an array of strings).
    pub(crate) fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(audience)) => vec![audience.as_str()],
            Some(Value::Array(audiences)) => audiences.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the signature verifies under `key` with the header's algorithm, if it is one of
    /// `allowed`.
    pub(crate) fn verifies_with(&self, key: &VerificationKey, allowed: &[JwtAlgorithm]) -> bool {
        self.algorithm()
            .filter(|algorithm| allowed.contains(algorithm))
            .is_some_and(|algorithm| {
                key.verifies(algorithm, self.signing_input.as_bytes(), &self.signature)
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn es256_tokens_verify_only_with_their_key_and_untouched() {
        let key = JwtSigningKey::generate_es256().expect("key");
        let other = JwtSigningKey::generate_es256().expect("key");
        let token = key
            .sign(
                JwtAlgorithm::Es256,
                &json!({"kid": "k"}),
                &json!({"sub": "x"}),
            )
            .expect("signed");
        let parsed = parse(&token).expect("parses");
        assert_eq!(parsed.header_str("typ"), Some("JWT"));
        assert_eq!(parsed.algorithm(), Some(JwtAlgorithm::Es256));
        let mine = key.verification_key().expect("public key");
        assert!(parsed.verifies_with(&mine, &[JwtAlgorithm::Es256]));
        assert!(!parsed.verifies_with(&mine, &[JwtAlgorithm::Rs256]));
        assert!(!parsed.verifies_with(
            &other.verification_key().expect("key"),
            &[JwtAlgorithm::Es256]
        ));
        let (signing_input, _) = token.rsplit_once('.').expect("three parts");
        let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode([0_u8; 64]));
        assert!(
            !parse(&forged)
                .expect("parses")
                .verifies_with(&mine, &[JwtAlgorithm::Es256])
        );
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        for token in [
            "",
            "a.b",
            "a.b.c.d",
            "e30.e30.!!",
            "W10.e30.",
            "e30.bm90IGpzb24.",
            "e30.e30",
        ] {
            assert!(parse(token).is_none(), "{token}");
        }
        assert!(parse("e30.e30.").is_some(), "empty signature still parses");
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let key = JwtSigningKey::generate_es256().expect("key");
        assert_eq!(
            format!("{key:?}"),
            "JwtSigningKey { kind: \"EC P-256\", .. }"
        );
    }
}
