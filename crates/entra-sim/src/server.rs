//! Accepts connections, records each request, applies injected faults and answers.
//!
//! Each connection runs in its own task with a kill switch, so a fault can close the TLS
//! connection without an answer, as a lost response would.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::{InnerErrorSpelling, SecretMasking};
use crate::faults::{FaultAction, FaultQueue, FaultTarget};
use crate::graph::{self, GraphRequest, Handled};
use crate::login::{self, TokenRequest};
use crate::recording::{RecordedRequest, Recorder, SentCredentials};
use crate::response::{SimResponse, fault_response};
use crate::routes::{Call, Route, classify};
use crate::scim::{ScimCall, ScimClient, ScimCredentials, ScimOutcome, ScimPurpose};
use crate::state::{SimState, TokenStatus};

/// Larger request bodies are refused; no call takes more than a few kilobytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the request handlers and the `EntraSim` handle share.
pub(crate) struct Shared {
    pub state: Mutex<SimState>,
    pub faults: Mutex<FaultQueue>,
    pub recorder: Mutex<Recorder>,
    pub scim_client: Mutex<ScimClient>,
    pub scim_calls: Mutex<Vec<ScimCall>>,
    pub base_url: String,
    pub masking: SecretMasking,
    pub spelling: InnerErrorSpelling,
}

/// Locks a mutex; a panic in another holder does not make the simulator unusable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct ConnectionDroppedOnPurpose;

impl fmt::Display for ConnectionDroppedOnPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for ConnectionDroppedOnPurpose {}

/// Accepts connections until the task is aborted; aborting drops every connection with it.
pub(crate) async fn run(listener: TcpListener, tls: TlsAcceptor, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, tls.clone(), Arc::clone(&shared)));
                }
                Err(error) => {
                    tracing::warn!(%error, "entra simulator failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, tls: TlsAcceptor, shared: Arc<Shared>) {
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, "entra simulator TLS handshake failed");
            return;
        }
        Err(_elapsed) => {
            tracing::debug!("entra simulator TLS handshake timed out");
            return;
        }
    };
    let kill = Arc::new(Notify::new());
    let service_kill = Arc::clone(&kill);
    let service =
        service_fn(move |request| answer(Arc::clone(&shared), Arc::clone(&service_kill), request));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "entra simulator connection ended with an error");
            }
        }
        () = kill.notified() => tracing::debug!("entra simulator dropped a connection on purpose"),
    }
}

fn drop_connection(kill: &Notify) -> ConnectionDroppedOnPurpose {
    kill.notify_one();
    ConnectionDroppedOnPurpose
}

/// The parts of a request every step reads.
struct IncomingRequest {
    route: Route,
    bearer: Option<String>,
    /// The token request's form fields (empty for other calls).
    form: Vec<(String, String)>,
    client_id: Option<String>,
    body: Bytes,
}

impl IncomingRequest {
    fn read(shared: &Shared, parts: &Parts, body: Bytes) -> Self {
        let route = classify(&parts.method, parts.uri.path());
        let bearer = parts
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .map(|(_, token)| token.trim().to_owned());
        let form: Vec<(String, String)> = if route.call == Call::Token {
            form_urlencoded::parse(&body).into_owned().collect()
        } else {
            Vec::new()
        };
        let client_id = if route.call == Call::Token {
            form.iter()
                .find(|(key, _)| key == "client_id")
                .map(|(_, value)| value.clone())
        } else {
            bearer.as_deref().and_then(|token| {
                match lock(&shared.state).token_status(token, Instant::now()) {
                    TokenStatus::Live { client_id } | TokenStatus::Expired { client_id } => {
                        Some(client_id)
                    }
                    TokenStatus::Unknown => None,
                }
            })
        };
        Self {
            route,
            bearer,
            form,
            client_id,
            body,
        }
    }

    fn has_field(&self, name: &str) -> bool {
        self.form
            .iter()
            .any(|(key, value)| key == name && !value.is_empty())
    }
}

async fn answer(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionDroppedOnPurpose> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY_BYTES).collect().await else {
        return Ok(into_hyper(SimResponse::empty(413)));
    };
    let incoming = IncomingRequest::read(&shared, &parts, body.to_bytes());
    let sequence = record(&shared, &parts, &incoming);
    let fault = lock(&shared.faults).take(&FaultTarget {
        call: incoming.route.call,
        service_principal: incoming.route.service_principal.as_deref(),
        client_id: incoming.client_id.as_deref(),
    });
    let (action, extra_headers) = match fault {
        None => (FaultAction::Proceed, Vec::new()),
        Some(fault) => {
            lock(&shared.recorder).mark_faulted(sequence);
            if !fault.delay.is_zero() {
                tokio::time::sleep(fault.delay).await;
            }
            (fault.action, fault.headers)
        }
    };
    let mut response = match action {
        FaultAction::Proceed => process(&shared, &incoming, None).await,
        FaultAction::ReadLag(lag) => process(&shared, &incoming, Some(lag)).await,
        FaultAction::Respond { status, body } => {
            fault_response(incoming.route.call, status, &body, shared.spelling)
        }
        FaultAction::DropConnection => return Err(drop_connection(&kill)),
        FaultAction::ProcessThenDrop => {
            process(&shared, &incoming, None).await;
            return Err(drop_connection(&kill));
        }
    };
    response.headers.extend(extra_headers);
    tracing::debug!(call = ?incoming.route.call, status = response.status, "entra simulator answered");
    lock(&shared.recorder).finish(sequence, response.status, response.error_code.clone());
    Ok(into_hyper(response))
}

fn record(shared: &Shared, parts: &Parts, incoming: &IncomingRequest) -> u64 {
    let sent = SentCredentials {
        bearer_token: incoming.bearer.is_some(),
        client_secret: incoming.has_field("client_secret"),
        client_assertion: incoming.has_field("client_assertion"),
    };
    lock(&shared.recorder).start(RecordedRequest::arrived(
        parts.method.to_string(),
        parts.uri.path().to_owned(),
        &incoming.route,
        incoming.client_id.clone(),
        sent,
        graph::keys_in_body(incoming.route.call, &incoming.body),
    ))
}

/// Runs the real handler: the token endpoint, or a Graph call (which may call SCIM first).
async fn process(
    shared: &Shared,
    incoming: &IncomingRequest,
    read_lag: Option<Duration>,
) -> SimResponse {
    let route = &incoming.route;
    match route.call {
        Call::Token => {
            let tenant = route.tenant.as_deref().unwrap_or_default();
            let request = TokenRequest {
                tenant,
                token_url: format!("{}/{tenant}/oauth2/v2.0/token", shared.base_url),
                base_url: &shared.base_url,
                form: &incoming.form,
            };
            login::token(&mut lock(&shared.state), &request, Instant::now())
        }
        Call::Unknown => graph::unknown_route().response(shared.spelling),
        _ => {
            let request = GraphRequest {
                route,
                bearer: incoming.bearer.as_deref(),
                body: &incoming.body,
                read_lag,
                masking: shared.masking,
            };
            let handled = graph::handle(&mut lock(&shared.state), &request, Instant::now());
            let answer = match handled {
                Handled::Answer(answer) => answer,
                Handled::Validate(credentials) => {
                    let service_principal = route.service_principal.as_deref().unwrap_or_default();
                    let job = route.job.as_deref().unwrap_or_default();
                    let outcome = call_scim(
                        shared,
                        ScimPurpose::ValidateCredentials,
                        service_principal,
                        job,
                        &credentials,
                    )
                    .await;
                    graph::validation_answer(&outcome, credentials.base_address.as_deref())
                }
            };
            answer.unwrap_or_else(|error| error.response(shared.spelling))
        }
    }
}

/// Calls the SCIM endpoint as Entra ID does and logs the call (without the token).
pub(crate) async fn call_scim(
    shared: &Shared,
    purpose: ScimPurpose,
    service_principal: &str,
    job: &str,
    credentials: &ScimCredentials,
) -> ScimOutcome {
    let client = lock(&shared.scim_client).clone();
    let user_name = sync_client_broker_sim::new_directory_id();
    let outcome = client.probe(credentials, &user_name).await;
    lock(&shared.scim_calls).push(ScimCall {
        purpose,
        service_principal: service_principal.to_owned(),
        job: job.to_owned(),
        base_address: credentials.base_address.clone(),
        // Only a request that left the simulator carried the filter.
        filtered_user_name: matches!(
            outcome,
            ScimOutcome::Accepted
                | ScimOutcome::Refused { .. }
                | ScimOutcome::NotAListResponse
                | ScimOutcome::Unreachable(_)
        )
        .then_some(user_name),
        outcome: outcome.clone(),
    });
    outcome
}

fn into_hyper(response: SimResponse) -> Response<Full<Bytes>> {
    let mut hyper_response = Response::new(Full::new(Bytes::from(response.body)));
    *hyper_response.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = hyper_response.headers_mut();
    if let Some(content_type) = response.content_type
        && let Ok(value) = HeaderValue::from_str(&content_type)
    {
        headers.insert(CONTENT_TYPE, value);
    }
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    hyper_response
}
