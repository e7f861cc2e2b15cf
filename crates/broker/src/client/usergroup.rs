//! The usergroup API's calls: generate credentials and read a sync client, their URL, the
//! errors their statuses mean, and their answers' bodies.

use percent_encoding::utf8_percent_encode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use sync_client_http::{PATH_SEGMENT, SecretString, check_path_value, single_line};

use crate::error::{BrokerError, ErrorKind};
use crate::guard::RevokeGuard;
use crate::outcome::Endpoint;
use crate::transport::{Answer, malformed_answer, status_error};
use crate::wire::{
    GenerateBody, GenerateRequest, IssuedCredential, Malformed, SYNC_CLIENT_MEDIA_TYPE,
    SyncClientConfig, SyncClientMedia, parse_sync_client_media,
};

use super::{BrokerClient, Inner};

impl BrokerClient {
    /// Issues a new access token or client secret for the sync client of `directory_id`.
    ///
    /// The broker revokes the previous credential at once. When the error says
    /// [`outcome_unknown`](BrokerError::outcome_unknown), it may have done so without the new
    /// credential reaching us.
    ///
    /// `guard` is asked right before each generate request is sent (the first, and the retry
    /// after the broker refused the broker token); a refusal ends the call with
    /// [`ErrorKind::GuardRefused`] and nothing revoked. Its deadline bounds the whole chain
    /// (waiting for the shared login, the vCenter login, the broker token, the generate, a token
    /// refresh and the retry); every request's timeout is cut to what remains. A deadline that
    /// passes before the generate request is sent is a [`ErrorKind::Transient`] error with a
    /// known outcome; one that passes while it is in flight leaves the outcome unknown.
    pub async fn generate_credentials(
        &self,
        directory_id: &str,
        request: &GenerateRequest,
        guard: &RevokeGuard<'_>,
    ) -> Result<IssuedCredential, BrokerError> {
        let endpoint = Endpoint::GenerateCredentials;
        let url = format!(
            "{}?action=generate_credentials",
            self.inner.sync_client_url(endpoint, directory_id)?
        );
        let body = serde_json::to_vec(&GenerateBody::from(request)).map_err(|error| {
            BrokerError::call(
                ErrorKind::Spec,
                endpoint,
                &format!("invalid request body: {error}"),
            )
        })?;
        let kind = request.kind;
        self.inner
            .send_with_broker_token(
                endpoint,
                Some(guard),
                |token| {
                    self.inner
                        .transport
                        .http()
                        .post(&url)
                        .bearer_auth(token.expose())
                        .header(CONTENT_TYPE, SYNC_CLIENT_MEDIA_TYPE)
                        .header(ACCEPT, SYNC_CLIENT_MEDIA_TYPE)
                        .body(body.clone())
                },
                |answer, token| {
                    if !answer.is_success() {
                        return Err(self.inner.sync_client_error(
                            endpoint,
                            &answer,
                            directory_id,
                            token,
                        ));
                    }
                    // Every 200 rotates: an answer we cannot use leaves the new credential unknown.
                    parse_usable(&answer)
                        .and_then(|media| media.into_credential(kind))
                        .map_err(|malformed| {
                            malformed_answer(endpoint, &answer, &malformed.0)
                                .with_outcome_unknown(true)
                        })
                },
            )
            .await
    }

    /// Reads the sync-client configuration of `directory_id` (without secrets).
    pub async fn read_sync_client(
        &self,
        directory_id: &str,
    ) -> Result<SyncClientConfig, BrokerError> {
        let endpoint = Endpoint::ReadSyncClient;
        let url = self.inner.sync_client_url(endpoint, directory_id)?;
        self.inner
            .send_with_broker_token(
                endpoint,
                None,
                |token| {
                    self.inner
                        .transport
                        .http()
                        .get(&url)
                        .bearer_auth(token.expose())
                        .header(ACCEPT, SYNC_CLIENT_MEDIA_TYPE)
                },
                |answer, token| {
                    if !answer.is_success() {
                        return Err(self.inner.sync_client_error(
                            endpoint,
                            &answer,
                            directory_id,
                            token,
                        ));
                    }
                    parse_usable(&answer)
                        .map(SyncClientMedia::into_config)
                        .map_err(|malformed| malformed_answer(endpoint, &answer, &malformed.0))
                },
            )
            .await
    }
}

impl Inner {
    fn sync_client_url(
        &self,
        endpoint: Endpoint,
        directory_id: &str,
    ) -> Result<String, BrokerError> {
        check_path_value("directory id", directory_id)
            .map_err(|reason| BrokerError::call(ErrorKind::Spec, endpoint, &reason))?;
        Ok(self.url(&format!(
            "/usergroup/t/{}/broker/directories/{}/sync-client",
            self.tenant_segment,
            utf8_percent_encode(directory_id, PATH_SEGMENT)
        )))
    }

    fn sync_client_error(
        &self,
        endpoint: Endpoint,
        answer: &Answer,
        directory_id: &str,
        token: &SecretString,
    ) -> BrokerError {
        let directory = single_line(directory_id, 64);
        let hint = match answer.status.as_u16() {
            400 => Some(format!("invalid parameters for directory {directory}")),
            401 => Some("broker token rejected".to_owned()),
            403 => Some(format!(
                "forbidden to manage the sync client of directory {directory}"
            )),
            404 => Some(format!(
                "no sync-client configuration for directory {directory}"
            )),
            409 => Some(format!(
                "more than one sync-client configuration for directory {directory}"
            )),
            _ => None,
        };
        let mut secrets = self.config_secrets();
        secrets.push(token.expose());
        status_error(endpoint, answer, hint, &secrets)
    }
}

/// The body of a success answer, unless it was cut off for being too large.
fn parse_usable(answer: &Answer) -> Result<SyncClientMedia, Malformed> {
    if answer.truncated {
        return Err(Malformed::new("the answer is too large"));
    }
    parse_sync_client_media(&answer.body)
}
