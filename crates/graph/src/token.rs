//! The app-only access token: requested with the configured credential, cached per client, and
//! refreshed single-flight.
//!
//! One tokio mutex guards the cache. It is held across the token request on purpose: when many
//! callers need a token at once, the first fetches it and the others wait and reuse it.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::ACCEPT;
use sync_client_http::{Answer, SecretString};
use tokio::io::AsyncReadExt as _;

use crate::assertion::{CertificateSigner, JWT_BEARER};
use crate::client::{Inner, secret_forms};
use crate::error::{GraphError, GraphErrorKind};
use crate::outcome::GraphCall;
use crate::wire::{ErrorAnswer, TokenAnswer, parse_token_answer};

/// A token is cached for at most this long, whatever `expires_in` says (Microsoft's are 60 to
/// 90 minutes).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A federated token file larger than this is refused (ServiceAccount tokens are a few KiB).
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// The application's credential, ready for token requests.
#[derive(Debug)]
pub(crate) enum Credential {
    Secret(SecretString),
    Certificate(Box<CertificateSigner>),
    FederatedTokenFile(std::path::PathBuf),
}

/// The cached token.
pub(crate) struct CachedToken {
    token: SecretString,
    /// After this instant the token is replaced before use (`expires_in` minus the margin).
    refresh_at: Instant,
}

impl CachedToken {
    fn usable(&self, now: Instant) -> Option<SecretString> {
        (now < self.refresh_at).then(|| self.token.clone())
    }
}

impl Inner {
    /// An access token: the cached one while it is fresh, otherwise a new one.
    pub(crate) async fn token(&self) -> Result<SecretString, GraphError> {
        let mut cache = self.token_cache.lock().await;
        if let Some(token) = cache
            .as_ref()
            .and_then(|cached| cached.usable(Instant::now()))
        {
            return Ok(token);
        }
        self.renew_token(&mut cache).await
    }

    /// A token other than `rejected`, which Graph refused: another caller may have replaced it
    /// already, otherwise a new one is fetched.
    pub(crate) async fn replace_token(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString, GraphError> {
        let mut cache = self.token_cache.lock().await;
        let fresh = cache
            .as_ref()
            .and_then(|cached| cached.usable(Instant::now()));
        if let Some(token) = fresh.filter(|token| token != rejected) {
            return Ok(token);
        }
        *cache = None;
        self.renew_token(&mut cache).await
    }

    /// Fetches a token and caches it until `expires_in` minus the refresh margin (at most half
    /// the lifetime). A token without a usable `expires_in` serves this one call only.
    async fn renew_token(
        &self,
        cache: &mut Option<CachedToken>,
    ) -> Result<SecretString, GraphError> {
        let answer = self.request_token().await?;
        let received_at = Instant::now();
        let lifetime = answer.expires_in.clamped(MAX_TOKEN_LIFETIME);
        *cache = lifetime.and_then(|lifetime| {
            // The margin takes at most half the lifetime, so a short-lived token is still reused.
            let margin = self.token_refresh_margin.min(lifetime / 2);
            let refresh_after = lifetime.saturating_sub(margin);
            if refresh_after.is_zero() {
                return None;
            }
            Some(CachedToken {
                token: answer.access_token.clone(),
                refresh_at: received_at.checked_add(refresh_after)?,
            })
        });
        Ok(answer.access_token)
    }

    /// `POST {login}/{tenant}/oauth2/v2.0/token` with the client credentials grant.
    async fn request_token(&self) -> Result<TokenAnswer, GraphError> {
        let call = GraphCall::Token;
        let configuration =
            |message: String| GraphError::new(GraphErrorKind::Configuration, call, &message);
        let proof = match &self.credential {
            Credential::Secret(secret) => Proof::Secret(secret.clone()),
            Credential::Certificate(signer) => Proof::Assertion(
                signer
                    .assertion(&self.client_id, &self.token_url, SystemTime::now())
                    .map_err(configuration)?,
            ),
            Credential::FederatedTokenFile(path) => {
                Proof::Assertion(read_token_file(path).await.map_err(configuration)?)
            }
        };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("scope", self.scope.as_str()),
        ];
        match &proof {
            Proof::Secret(secret) => form.push(("client_secret", secret.expose())),
            Proof::Assertion(assertion) => {
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", assertion.expose()));
            }
        }
        let request = self
            .http
            .http()
            .post(&self.token_url)
            .header(ACCEPT, "application/json")
            .form(&form);
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        let proof_secret = match &proof {
            Proof::Secret(secret) | Proof::Assertion(secret) => secret,
        };
        self.send(call, request, |answer| {
            let mut secrets = self.config_secrets();
            secrets.extend(secret_forms(proof_secret.expose()));
            read_token(&answer, &secrets)
        })
        .await
    }
}

/// What a token request proves itself with.
enum Proof {
    Secret(SecretString),
    Assertion(SecretString),
}

/// The token of a federated token file, read anew for every request (the kubelet rotates it).
async fn read_token_file(path: &Path) -> Result<SecretString, String> {
    let describe = |error: std::io::Error| {
        format!(
            "cannot read the federated token file {}: {}",
            path.display(),
            error.kind()
        )
    };
    let file = tokio::fs::File::open(path).await.map_err(describe)?;
    let mut contents = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut contents)
        .await
        .map_err(describe)?;
    if contents.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "the federated token file {} is larger than {} KiB",
            path.display(),
            MAX_TOKEN_FILE_BYTES / 1024
        ));
    }
    let token = String::from_utf8(contents)
        .map_err(|_| format!("the federated token file {} is not text", path.display()))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(format!(
            "the federated token file {} is empty",
            path.display()
        ));
    }
    Ok(SecretString::from(token))
}

/// The token of a success answer, or the error an answer means.
fn read_token(answer: &Answer, secrets: &[String]) -> Result<TokenAnswer, GraphError> {
    let call = GraphCall::Token;
    if answer.is_success() {
        return parse_token_answer(&answer.body)
            .map_err(|malformed| crate::client::malformed_answer(call, answer, &malformed.0));
    }
    let read = ErrorAnswer::read(answer, secrets);
    let aadsts = read.extras.aadsts;
    let kind = token_error_kind(answer.status.as_u16(), read.body.code.as_deref(), aadsts);
    let hint = aadsts.and_then(aadsts_hint).map(str::to_owned);
    Err(read.into_error(kind, call, answer, hint))
}

/// AADSTS numbers that mean the application, its credential or its tenant is not what the
/// login knows: a configuration change is needed.
const CLIENT_AADSTS: [u32; 11] = [
    7_000_215, // invalid client secret
    7_000_222, // client secret expired
    700_016,   // application not found in the tenant
    90_002,    // tenant not found
    700_027,   // assertion signature invalid or certificate not registered
    700_024,   // assertion outside its validity period
    70_021,    // no matching federated identity record
    700_211,   // no federated identity record for the issuer
    700_212,   // no federated identity record for the audience
    700_213,   // no federated identity record for the subject
    7_000_112, // application disabled
];

/// The kind of an error answer of the login.
fn token_error_kind(status: u16, code: Option<&str>, aadsts: Option<u32>) -> GraphErrorKind {
    if aadsts.is_some_and(|aadsts| CLIENT_AADSTS.contains(&aadsts)) {
        return GraphErrorKind::InvalidClient;
    }
    match (status, code) {
        (429, _) => GraphErrorKind::Throttled,
        (400 | 401, Some("invalid_client" | "unauthorized_client")) => {
            GraphErrorKind::InvalidClient
        }
        (_, Some("temporarily_unavailable")) => GraphErrorKind::Transient,
        // A wrong login URL or tenant path: nothing to retry.
        (404, _) => GraphErrorKind::Configuration,
        (401, _) => GraphErrorKind::InvalidClient,
        (status, _) => GraphErrorKind::from_status(status),
    }
}

/// What an AADSTS number asks the administrator to do.
fn aadsts_hint(aadsts: u32) -> Option<&'static str> {
    Some(match aadsts {
        7_000_215 => "the client secret is wrong (give the secret's value, not its id)",
        7_000_222 => "the client secret has expired; create a new one",
        700_016 => "no application with this client id exists in the tenant",
        90_002 => "the tenant does not exist",
        700_027 => "the certificate is not registered on the application",
        700_024 => "the client assertion is outside its validity period; check the clock",
        70_021 | 700_211..=700_213 => {
            "no federated credential of the application matches the service account token"
        }
        7_000_112 => "the application is disabled",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_errors_map_to_kinds() {
        use GraphErrorKind::{Configuration, InvalidClient, Throttled, Transient};
        let cases = [
            (400, Some("invalid_client"), Some(7_000_215), InvalidClient),
            (400, Some("invalid_request"), Some(90_002), InvalidClient),
            (
                400,
                Some("unauthorized_client"),
                Some(700_016),
                InvalidClient,
            ),
            (401, Some("invalid_client"), None, InvalidClient),
            (400, Some("invalid_scope"), Some(70_011), Configuration),
            (400, None, None, Configuration),
            (404, None, None, Configuration),
            (400, Some("temporarily_unavailable"), None, Transient),
            (429, None, None, Throttled),
            (429, Some("temporarily_unavailable"), None, Throttled),
            (503, None, None, Transient),
        ];
        for (status, code, aadsts, kind) in cases {
            assert_eq!(
                token_error_kind(status, code, aadsts),
                kind,
                "{status} {code:?}"
            );
        }
    }

    #[test]
    fn every_client_aadsts_has_a_hint() {
        for aadsts in CLIENT_AADSTS {
            assert!(aadsts_hint(aadsts).is_some(), "{aadsts}");
        }
        assert_eq!(aadsts_hint(1), None);
    }

    #[tokio::test]
    async fn token_files_are_bounded_text() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("token");
        tokio::fs::write(&path, " header.claims.signature\n")
            .await
            .expect("write");
        assert_eq!(
            read_token_file(&path).await.expect("read").expose(),
            "header.claims.signature"
        );
        for (contents, reason) in [
            (b"  \n".to_vec(), "is empty"),
            (vec![0xff, 0xfe], "is not text"),
            (vec![b'a'; 64 * 1024 + 1], "is larger than 64 KiB"),
        ] {
            tokio::fs::write(&path, &contents).await.expect("write");
            let error = read_token_file(&path).await.expect_err("refused");
            assert!(error.ends_with(reason), "{error}");
        }
        let error = read_token_file(&directory.path().join("missing"))
            .await
            .expect_err("missing");
        assert!(
            error.starts_with("cannot read the federated token file"),
            "{error}"
        );
        tokio::fs::remove_dir_all(&directory)
            .await
            .expect("cleanup");
    }
}
