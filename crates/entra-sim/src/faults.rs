//! Fault injection: a queue of misbehaviours, each applied to the next N matching requests.
//!
//! ```
//! # use sync_client_entra_sim::{Call, Fault};
//! # use std::time::Duration;
//! let throttled = Fault::on(Call::PutSecrets).times(2).too_many_requests(Some(1));
//! let refused = Fault::on(Call::Token).invalid_client_secret();
//! let one_principal = Fault::on(Call::GetJob).for_service_principal("sp-1").status(503);
//! let lagging = Fault::on(Call::PutSecrets).read_lag(Duration::from_secs(2));
//! let slow = Fault::on(Call::ValidateCredentials).delay(Duration::from_millis(500));
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use crate::routes::Call;

/// The body of an injected answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultBody {
    /// The call's own error shape for the status: a Graph error with the usual code for Graph
    /// calls, an OAuth error for the token endpoint.
    Standard,
    Empty,
    /// `{"error":{"code":…,"message":…,"innerError":{…}}}`.
    Graph {
        code: String,
        message: String,
    },
    /// `{"error":…,"error_description":"AADSTS{code}: …","error_codes":[code],…}`.
    Aadsts {
        error: String,
        code: u32,
        description: String,
    },
    /// Any body with any content type (a proxy's HTML page, say).
    Raw {
        content_type: String,
        body: String,
    },
}

/// What happens to a request a fault matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Only the fault's delay applies; then the request is handled normally.
    Proceed,
    /// Answer with this status and body without handling the request.
    Respond { status: u16, body: FaultBody },
    /// Close the connection without answering and without handling the request.
    DropConnection,
    /// Handle the request (a PUT is stored), then close the connection without answering.
    ProcessThenDrop,
    /// For [`Call::PutSecrets`]: store the values, answer as usual, but let `GET /secrets`,
    /// `validateCredentials` with saved credentials and provisioning cycles see the previous
    /// values for this long.
    ReadLag(Duration),
}

/// One injected misbehaviour, built with [`Fault::on`] and the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    call: Call,
    service_principal: Option<String>,
    client_id: Option<String>,
    times: usize,
    delay: Duration,
    action: FaultAction,
    headers: Vec<(String, String)>,
}

impl Fault {
    /// A fault for the next request to `call`; it changes nothing until an action or a delay is
    /// set.
    pub fn on(call: Call) -> Self {
        Self {
            call,
            service_principal: None,
            client_id: None,
            times: 1,
            delay: Duration::ZERO,
            action: FaultAction::Proceed,
            headers: Vec::new(),
        }
    }

    /// Match only Graph requests for this service principal.
    #[must_use]
    pub fn for_service_principal(mut self, id: &str) -> Self {
        self.service_principal = Some(id.to_owned());
        self
    }

    /// Match only requests of this client: the token request's `client_id`, or the app whose
    /// bearer token a Graph request carries.
    #[must_use]
    pub fn for_client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// Apply to the next `times` matching requests (default 1).
    #[must_use]
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// Wait this long before acting (alone: a slow answer, then normal handling).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    #[must_use]
    pub fn action(mut self, action: FaultAction) -> Self {
        self.action = action;
        self
    }

    /// Answer `status` with the call's usual error body for it (Graph: `401`
    /// `InvalidAuthenticationToken`, `403` `Authorization_RequestDenied`, `404`
    /// `Request_ResourceNotFound`, `409` `Conflict`, `429` `TooManyRequests`, `500`
    /// `InternalServerError`, `503` `ServiceUnavailable`, `504` `GatewayTimeout`…).
    #[must_use]
    pub fn status(self, status: u16) -> Self {
        self.action(FaultAction::Respond {
            status,
            body: FaultBody::Standard,
        })
    }

    /// Answer `status` with a Graph error of this code and message.
    #[must_use]
    pub fn graph_error(self, status: u16, code: &str, message: &str) -> Self {
        self.action(FaultAction::Respond {
            status,
            body: FaultBody::Graph {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        })
    }

    /// `401 InvalidAuthenticationToken` (an access token Graph no longer accepts).
    #[must_use]
    pub fn unauthorized(self) -> Self {
        self.status(401)
    }

    /// `403 Authorization_RequestDenied` (a missing permission or ownership).
    #[must_use]
    pub fn forbidden(self) -> Self {
        self.status(403)
    }

    /// `404 Request_ResourceNotFound`.
    #[must_use]
    pub fn not_found(self) -> Self {
        self.status(404)
    }

    /// `409 Conflict` (transient).
    #[must_use]
    pub fn conflict(self) -> Self {
        self.status(409)
    }

    /// `429 TooManyRequests`, with `Retry-After: seconds` when given.
    #[must_use]
    pub fn too_many_requests(self, retry_after_seconds: Option<u64>) -> Self {
        let fault = self.status(429);
        match retry_after_seconds {
            Some(seconds) => fault.retry_after(seconds),
            None => fault,
        }
    }

    /// For [`Call::Token`]: `400 invalid_client` `AADSTS7000215` (wrong client secret).
    #[must_use]
    pub fn invalid_client_secret(self) -> Self {
        self.aadsts(
            400,
            "invalid_client",
            7_000_215,
            crate::login::INVALID_SECRET,
        )
    }

    /// For [`Call::Token`]: `400 invalid_client` `AADSTS7000222` (expired client secret).
    #[must_use]
    pub fn expired_client_secret(self) -> Self {
        self.aadsts(
            400,
            "invalid_client",
            7_000_222,
            crate::login::EXPIRED_SECRET,
        )
    }

    /// Answer `status` with an OAuth error `error` carrying `AADSTS{code}: {description}`.
    #[must_use]
    pub fn aadsts(self, status: u16, error: &str, code: u32, description: &str) -> Self {
        self.action(FaultAction::Respond {
            status,
            body: FaultBody::Aadsts {
                error: error.to_owned(),
                code,
                description: description.to_owned(),
            },
        })
    }

    /// Answer `status` with any content type and body.
    #[must_use]
    pub fn raw(self, status: u16, content_type: &str, body: &str) -> Self {
        self.action(FaultAction::Respond {
            status,
            body: FaultBody::Raw {
                content_type: content_type.to_owned(),
                body: body.to_owned(),
            },
        })
    }

    #[must_use]
    pub fn drop_connection(self) -> Self {
        self.action(FaultAction::DropConnection)
    }

    #[must_use]
    pub fn process_then_drop(self) -> Self {
        self.action(FaultAction::ProcessThenDrop)
    }

    /// See [`FaultAction::ReadLag`].
    #[must_use]
    pub fn read_lag(self, lag: Duration) -> Self {
        self.action(FaultAction::ReadLag(lag))
    }

    /// Adds `Retry-After: seconds` to the answer (with [`Fault::status`], e.g. 503).
    #[must_use]
    pub fn retry_after(self, seconds: u64) -> Self {
        self.header("retry-after", &seconds.to_string())
    }

    /// Adds a header to every answer this fault produces.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    fn matches(&self, request: &FaultTarget<'_>) -> bool {
        let wanted = |want: Option<&String>, got: Option<&str>| {
            want.is_none_or(|want| Some(want.as_str()) == got)
        };
        self.times > 0
            && self.call == request.call
            && wanted(self.service_principal.as_ref(), request.service_principal)
            && wanted(self.client_id.as_ref(), request.client_id)
    }
}

/// What a fault is matched against.
pub(crate) struct FaultTarget<'a> {
    pub call: Call,
    pub service_principal: Option<&'a str>,
    pub client_id: Option<&'a str>,
}

/// A fault as it applies to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppliedFault {
    pub delay: Duration,
    pub action: FaultAction,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    faults: VecDeque<Fault>,
}

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.faults.push_back(fault);
        }
    }

    /// Consumes one use of the oldest fault matching the request.
    pub(crate) fn take(&mut self, target: &FaultTarget<'_>) -> Option<AppliedFault> {
        let position = self.faults.iter().position(|fault| fault.matches(target))?;
        let fault = &mut self.faults[position];
        fault.times -= 1;
        let applied = AppliedFault {
            delay: fault.delay,
            action: fault.action.clone(),
            headers: fault.headers.clone(),
        };
        if fault.times == 0 {
            self.faults.remove(position);
        }
        Some(applied)
    }

    pub(crate) fn pending(&self) -> usize {
        self.faults.iter().map(|fault| fault.times).sum()
    }

    pub(crate) fn clear(&mut self) {
        self.faults.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(
        call: Call,
        service_principal: Option<&'a str>,
        client_id: Option<&'a str>,
    ) -> FaultTarget<'a> {
        FaultTarget {
            call,
            service_principal,
            client_id,
        }
    }

    #[test]
    fn a_fault_applies_to_the_next_n_matching_requests_then_disappears() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::on(Call::PutSecrets).times(2).status(500));
        assert!(queue.take(&target(Call::GetJob, Some("a"), None)).is_none());
        assert!(
            queue
                .take(&target(Call::PutSecrets, Some("a"), None))
                .is_some()
        );
        assert!(
            queue
                .take(&target(Call::PutSecrets, Some("b"), None))
                .is_some()
        );
        assert!(
            queue
                .take(&target(Call::PutSecrets, Some("a"), None))
                .is_none()
        );
        assert_eq!(queue.pending(), 0);
    }

    #[test]
    fn principal_and_client_filters_skip_other_requests() {
        let mut queue = FaultQueue::default();
        queue.push(
            Fault::on(Call::GetJob)
                .for_service_principal("a")
                .not_found(),
        );
        queue.push(
            Fault::on(Call::Token)
                .for_client("app-2")
                .invalid_client_secret(),
        );
        assert!(queue.take(&target(Call::GetJob, Some("b"), None)).is_none());
        assert!(
            queue
                .take(&target(Call::Token, None, Some("app-1")))
                .is_none()
        );
        let applied = queue
            .take(&target(Call::Token, None, Some("app-2")))
            .expect("client fault");
        assert!(matches!(
            applied.action,
            FaultAction::Respond {
                status: 400,
                body: FaultBody::Aadsts {
                    code: 7_000_215,
                    ..
                }
            }
        ));
        assert!(queue.take(&target(Call::GetJob, Some("a"), None)).is_some());
    }

    #[test]
    fn throttling_with_and_without_retry_after() {
        let with = Fault::on(Call::GetJob).too_many_requests(Some(3));
        assert_eq!(
            with.headers,
            vec![("retry-after".to_owned(), "3".to_owned())]
        );
        assert!(
            Fault::on(Call::GetJob)
                .too_many_requests(None)
                .headers
                .is_empty()
        );
    }
}
