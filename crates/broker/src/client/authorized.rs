//! Sending a request with the broker token: one new token and one retry after a refusal, and
//! the revoke guard asked right before each request is sent.

use reqwest::RequestBuilder;
use sync_client_http::SecretString;

use crate::auth::VCenterLogin;
use crate::config::BrokerAuth;
use crate::error::{BrokerError, ErrorKind};
use crate::guard::{Deadline, RevokeGuard};
use crate::outcome::Endpoint;
use crate::transport::Answer;

use super::Inner;

impl Inner {
    /// Sends a request authorized by a broker token. With vCenter login, a 401 makes it fetch a
    /// new token once and retry once; a static bearer token is used as is. With a `guard`, its
    /// deadline bounds the whole chain and its check runs right before each request is sent.
    pub(super) async fn send_with_broker_token<T>(
        &self,
        endpoint: Endpoint,
        guard: Option<&RevokeGuard<'_>>,
        request: impl Fn(&SecretString) -> RequestBuilder,
        read: impl Fn(Answer, &SecretString) -> Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        let send = |token| self.send_guarded(endpoint, guard, token, &request, &read);
        let login = match &self.auth {
            BrokerAuth::BearerToken(token) => return send(token).await,
            BrokerAuth::VCenter {
                username,
                password,
                token_client,
            } => VCenterLogin {
                username,
                password,
                token_client: *token_client,
            },
        };
        let deadline = Deadline::of(guard);
        let first = self.broker_token(login, deadline).await?;
        match send(&first.token).await {
            Err(error) if error.kind() == ErrorKind::Auth => {
                tracing::debug!(
                    endpoint = endpoint.as_str(),
                    "broker token rejected; fetching a new one"
                );
                let second = self
                    .replace_broker_token(login, &first.token, deadline)
                    .await?;
                send(&second.token).await
            }
            other => other,
        }
    }

    /// Sends one request with `token`, if the guard (when there is one) allows it now.
    async fn send_guarded<T>(
        &self,
        endpoint: Endpoint,
        guard: Option<&RevokeGuard<'_>>,
        token: &SecretString,
        request: impl Fn(&SecretString) -> RequestBuilder,
        read: impl Fn(Answer, &SecretString) -> Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        if let Some(guard) = guard {
            guard.allow(endpoint)?;
            tracing::debug!(
                endpoint = endpoint.as_str(),
                "the guard allows the request; sending it"
            );
        }
        self.transport
            .call(endpoint, request(token), Deadline::of(guard), |answer| {
                read(answer, token)
            })
            .await
    }
}
