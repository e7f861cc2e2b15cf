//! Every request the simulator received and what it answered, without any credential: whether
//! a token, secret or assertion was sent is kept, never its value.

use crate::routes::{Call, Route};

/// One request as received. Holds no secret value, so `Debug` is safe to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub call: Call,
    pub service_principal: Option<String>,
    pub job: Option<String>,
    /// The token request's `client_id`, or the app whose bearer token a Graph request carried.
    pub client_id: Option<String>,
    /// Which credentials the request carried (never their values).
    pub sent: SentCredentials,
    /// The keys a `PUT /secrets` or a `validateCredentials` carried, in order (never values).
    pub secret_keys: Vec<String>,
    /// The status answered; `None` while pending or when the connection was dropped unanswered.
    pub status: Option<u16>,
    /// The error the answer carried: `AADSTS…` for the token endpoint, Graph's `error.code`.
    pub error_code: Option<String>,
    /// Whether an injected fault applied to this request.
    pub faulted: bool,
    sequence: u64,
}

/// Which credentials a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentCredentials {
    /// `Authorization: Bearer …` (Graph calls).
    pub bearer_token: bool,
    /// The form field `client_secret` (token requests).
    pub client_secret: bool,
    /// The form field `client_assertion` (token requests).
    pub client_assertion: bool,
}

impl RecordedRequest {
    /// A request as it arrives: no answer yet.
    pub(crate) fn arrived(
        method: String,
        path: String,
        route: &Route,
        client_id: Option<String>,
        sent: SentCredentials,
        secret_keys: Vec<String>,
    ) -> Self {
        Self {
            method,
            path,
            call: route.call,
            service_principal: route.service_principal.clone(),
            job: route.job.clone(),
            client_id,
            sent,
            secret_keys,
            status: None,
            error_code: None,
            faulted: false,
            sequence: 0,
        }
    }
}

#[derive(Default)]
pub(crate) struct Recorder {
    requests: Vec<RecordedRequest>,
    next_sequence: u64,
}

impl Recorder {
    /// Records an arriving request; the returned number identifies it for [`Recorder::finish`].
    pub(crate) fn start(&mut self, mut request: RecordedRequest) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        request.sequence = sequence;
        self.requests.push(request);
        sequence
    }

    fn find(&mut self, sequence: u64) -> Option<&mut RecordedRequest> {
        // Cleared records are gone; a late answer to one is simply not recorded.
        self.requests
            .iter_mut()
            .rev()
            .find(|request| request.sequence == sequence)
    }

    pub(crate) fn mark_faulted(&mut self, sequence: u64) {
        if let Some(request) = self.find(sequence) {
            request.faulted = true;
        }
    }

    pub(crate) fn finish(&mut self, sequence: u64, status: u16, error_code: Option<String>) {
        if let Some(request) = self.find(sequence) {
            request.status = Some(status);
            request.error_code = error_code;
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.clone()
    }

    pub(crate) fn count(&self, call: Call) -> usize {
        self.requests
            .iter()
            .filter(|request| request.call == call)
            .count()
    }

    pub(crate) fn count_with_status(&self, call: Call, status: u16) -> usize {
        self.requests
            .iter()
            .filter(|request| request.call == call && request.status == Some(status))
            .count()
    }

    pub(crate) fn token_requests_by(&self, client_id: &str) -> usize {
        self.requests
            .iter()
            .filter(|request| {
                request.call == Call::Token && request.client_id.as_deref() == Some(client_id)
            })
            .count()
    }

    pub(crate) fn clear(&mut self) {
        self.requests.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(call: Call, client_id: &str) -> RecordedRequest {
        let route = Route {
            call,
            tenant: None,
            service_principal: None,
            job: None,
        };
        let sent = SentCredentials {
            client_secret: true,
            ..SentCredentials::default()
        };
        RecordedRequest::arrived(
            "POST".to_owned(),
            "/t/oauth2/v2.0/token".to_owned(),
            &route,
            Some(client_id.to_owned()),
            sent,
            Vec::new(),
        )
    }

    #[test]
    fn answers_are_attached_to_their_request_and_counted() {
        let mut recorder = Recorder::default();
        let first = recorder.start(arrival(Call::Token, "a"));
        let second = recorder.start(arrival(Call::Token, "b"));
        recorder.finish(second, 400, Some("AADSTS7000215".to_owned()));
        let requests = recorder.requests();
        assert_eq!(requests[0].status, None);
        assert_eq!(requests[1].error_code.as_deref(), Some("AADSTS7000215"));
        assert_eq!(recorder.count(Call::Token), 2);
        assert_eq!(recorder.count_with_status(Call::Token, 400), 1);
        assert_eq!(recorder.token_requests_by("a"), 1);
        recorder.clear();
        recorder.finish(first, 200, None);
        assert_eq!(recorder.count(Call::Token), 0);
    }
}
