//! Every request the simulator received, with what it answered.

use std::fmt;

use crate::routes::{Endpoint, query_param};

/// Headers whose values are credentials; `Debug` hides them.
const SENSITIVE_HEADERS: [&str; 4] = [
    "authorization",
    "vmware-api-session-id",
    "cookie",
    "proxy-authorization",
];

/// One request as received. `Debug` redacts credentials and prints only the body length.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub endpoint: Endpoint,
    pub directory_id: Option<String>,
    /// The status answered; `None` while pending or when the connection was dropped unanswered.
    pub status: Option<u16>,
    /// Whether an injected fault applied to this request.
    pub faulted: bool,
    sequence: u64,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref(), name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; `None` when empty or not JSON.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if SENSITIVE_HEADERS.contains(&name.as_str()) {
                    "<redacted>"
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .field("endpoint", &self.endpoint)
            .field("directory_id", &self.directory_id)
            .field("status", &self.status)
            .field("faulted", &self.faulted)
            .finish_non_exhaustive()
    }
}

/// What the server knows about a request when it arrives.
pub(crate) struct Arrival {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub endpoint: Endpoint,
    pub directory_id: Option<String>,
}

#[derive(Default)]
pub(crate) struct Recorder {
    requests: Vec<RecordedRequest>,
    next_sequence: u64,
}

impl Recorder {
    /// Records an arriving request; the returned number identifies it for [`Recorder::finish`].
    pub(crate) fn start(&mut self, arrival: Arrival) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.requests.push(RecordedRequest {
            method: arrival.method,
            path: arrival.path,
            query: arrival.query,
            headers: arrival.headers,
            body: arrival.body,
            endpoint: arrival.endpoint,
            directory_id: arrival.directory_id,
            status: None,
            faulted: false,
            sequence,
        });
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

    pub(crate) fn finish(&mut self, sequence: u64, status: u16) {
        if let Some(request) = self.find(sequence) {
            request.status = Some(status);
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.clone()
    }

    pub(crate) fn count(&self, endpoint: Endpoint) -> usize {
        self.requests
            .iter()
            .filter(|request| request.endpoint == endpoint)
            .count()
    }

    pub(crate) fn count_with_status(&self, endpoint: Endpoint, status: u16) -> usize {
        self.requests
            .iter()
            .filter(|request| request.endpoint == endpoint && request.status == Some(status))
            .count()
    }

    pub(crate) fn clear(&mut self) {
        self.requests.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival() -> Arrival {
        Arrival {
            method: "POST".to_owned(),
            path: "/api/session".to_owned(),
            query: None,
            headers: vec![
                ("authorization".to_owned(), "Basic c2VjcmV0".to_owned()),
                ("accept".to_owned(), "application/json".to_owned()),
            ],
            body: b"top-secret-body".to_vec(),
            endpoint: Endpoint::Login,
            directory_id: None,
        }
    }

    #[test]
    fn debug_output_hides_credentials_and_bodies() {
        let mut recorder = Recorder::default();
        recorder.start(arrival());
        let printed = format!("{:?}", recorder.requests()[0]);
        assert!(!printed.contains("c2VjcmV0"));
        assert!(!printed.contains("top-secret-body"));
        assert!(printed.contains("application/json"));
    }

    #[test]
    fn answers_are_attached_to_their_request_and_counted_per_endpoint() {
        let mut recorder = Recorder::default();
        let first = recorder.start(arrival());
        let second = recorder.start(arrival());
        recorder.finish(second, 201);
        let requests = recorder.requests();
        assert_eq!(requests[0].status, None);
        assert_eq!(requests[1].status, Some(201));
        assert_eq!(recorder.count(Endpoint::Login), 2);
        assert_eq!(recorder.count_with_status(Endpoint::Login, 201), 1);
        assert_eq!(recorder.count_with_status(Endpoint::Login, 401), 0);
        recorder.clear();
        recorder.finish(first, 201);
        assert_eq!(recorder.count(Endpoint::Login), 0);
        assert_eq!(requests[0].header("Authorization"), Some("Basic c2VjcmV0"));
    }
}
