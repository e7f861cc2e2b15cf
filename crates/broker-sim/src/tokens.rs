//! Random identifiers and JWT-looking tokens.
//!
//! The tokens only need to look like what the vendor returns (three base64url parts) and be
//! unique; nobody verifies their signature, so the "signature" is random bytes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom as _, SystemRandom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Random bytes from the system generator. Should it ever fail, the bytes come from a SHA-256
/// of a process-wide counter and the clock instead: simulator values need to be unique, not
/// secret, and a test double must not panic.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0_u8; N];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since_epoch| since_epoch.as_nanos());
        for (block, chunk) in bytes.chunks_mut(32).enumerate() {
            let mut context = digest::Context::new(&digest::SHA256);
            context.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
            context.update(&nanos.to_le_bytes());
            context.update(&block.to_le_bytes());
            let hash = context.finish();
            chunk.copy_from_slice(&hash.as_ref()[..chunk.len()]);
        }
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// A vCenter-style session id (32 hex digits).
pub(crate) fn session_id() -> String {
    hex(&random_bytes::<16>())
}

/// A client secret: 32 random bytes, base64url.
pub(crate) fn client_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A random version-4 UUID, the shape of a broker directory id.
pub fn new_directory_id() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let digits = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &digits[0..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..32]
    )
}

/// A unique JWT-looking bearer token whose payload names its subject and lifetime.
pub(crate) fn jwt(subject: &str, lifetime_seconds: Option<u64>) -> String {
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_secs());
    let mut claims = serde_json::json!({
        "iss": "sync-client-broker-sim",
        "sub": subject,
        "iat": issued_at,
        "jti": hex(&random_bytes::<16>()),
    });
    if let Some(lifetime) = lifetime_seconds {
        claims["exp"] = serde_json::json!(issued_at.saturating_add(lifetime));
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(random_bytes::<64>());
    format!("{header}.{payload}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_three_base64url_parts_and_never_repeat() {
        let first = jwt("sync-client", Some(60));
        let second = jwt("sync-client", Some(60));
        assert_ne!(first, second);
        let parts: Vec<&str> = first.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url payload");
        let claims: serde_json::Value = serde_json::from_slice(&payload).expect("json payload");
        assert_eq!(claims["sub"], "sync-client");
        assert!(claims["exp"].is_u64());
    }

    #[test]
    fn directory_ids_are_version_4_uuids() {
        let id = new_directory_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, new_directory_id());
    }
}
