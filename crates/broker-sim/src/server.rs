//! Accepts connections, records each request, applies injected faults and answers.
//!
//! Each connection runs in its own task with a kill switch, so a fault can close the TCP (or
//! TLS) connection without an answer, as a crashed proxy or a lost response would.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::body::SimBody;
use crate::config::UnusedFields;
use crate::faults::{FaultAction, FaultQueue};
use crate::handlers::{self, HandlerContext, IncomingRequest, SimResponse};
use crate::recording::{Arrival, Recorder};
use crate::routes::{Route, classify};
use crate::state::SimState;

/// Larger request bodies are refused; no endpoint takes more than a few hundred bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the request handlers and the `BrokerSim` handle share.
pub(crate) struct Shared {
    pub state: Mutex<SimState>,
    pub faults: Mutex<FaultQueue>,
    pub recorder: Mutex<Recorder>,
    pub base_url: String,
    pub unused_fields: UnusedFields,
    /// Bumped by every server certificate rotation; open connections close when it changes.
    pub certificate_rotations: tokio::sync::watch::Sender<u64>,
    /// TLS handshakes that failed or timed out (a client refusing the certificate, say).
    pub failed_handshakes: AtomicUsize,
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
pub(crate) async fn run(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, tls.clone(), Arc::clone(&shared)));
                }
                Err(error) => {
                    tracing::warn!(%error, "broker simulator failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    match tls {
        None => serve_io(stream, shared).await,
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => serve_io(tls_stream, shared).await,
                Ok(Err(error)) => {
                    shared.failed_handshakes.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, "broker simulator TLS handshake failed");
                }
                Err(_elapsed) => {
                    shared.failed_handshakes.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("broker simulator TLS handshake timed out");
                }
            }
        }
    }
}

async fn serve_io<I>(io: I, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let service_kill = Arc::clone(&kill);
    let mut rotations = shared.certificate_rotations.subscribe();
    let service =
        service_fn(move |request| answer(Arc::clone(&shared), Arc::clone(&service_kill), request));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut watching_rotations = true;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "broker simulator connection ended with an error");
                }
                return;
            }
            () = kill.notified() => {
                tracing::debug!("broker simulator dropped a connection on purpose");
                return;
            }
            changed = rotations.changed(), if watching_rotations => {
                watching_rotations = false;
                if changed.is_ok() {
                    // As a restarted reverse proxy would: answer what is in flight, then close,
                    // so that the next request opens a connection with the new certificate.
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

fn drop_connection(kill: &Notify) -> ConnectionDroppedOnPurpose {
    kill.notify_one();
    ConnectionDroppedOnPurpose
}

/// How the body of an answer leaves the server.
enum Delivery {
    Whole,
    /// Half the body, then a broken connection.
    Cut,
    /// The body spread over this long.
    Slow(Duration),
}

async fn answer(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<SimBody>, ConnectionDroppedOnPurpose> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY_BYTES).collect().await else {
        return Ok(into_hyper(SimResponse::empty(413), &Delivery::Whole));
    };
    let body = body.to_bytes();
    let route = classify(&parts.method, parts.uri.path());
    let sequence = record(&shared, &parts, &route, &body);
    let fault = lock(&shared.faults).take(route.endpoint, route.directory_id.as_deref());
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
    if let FaultAction::ProcessLate(after) = action {
        let response = process_late(&shared, route, &parts, body.to_vec(), after).await;
        lock(&shared.recorder).finish(sequence, response.status);
        return Ok(into_hyper(response, &Delivery::Whole));
    }
    let incoming = IncomingRequest {
        headers: &parts.headers,
        query: parts.uri.query(),
        body: &body,
    };
    let (mut response, delivery) = act(&shared, &kill, &route, &incoming, action).await?;
    response.headers.extend(extra_headers);
    tracing::debug!(endpoint = ?route.endpoint, status = response.status, "broker simulator answered");
    lock(&shared.recorder).finish(sequence, response.status);
    Ok(into_hyper(response, &delivery))
}

fn record(shared: &Shared, parts: &Parts, route: &Route, body: &[u8]) -> u64 {
    lock(&shared.recorder).start(Arrival {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        endpoint: route.endpoint,
        directory_id: route.directory_id.clone(),
    })
}

/// Carries out a fault's action (or none): the answer to send and how, or a dropped connection.
async fn act(
    shared: &Shared,
    kill: &Notify,
    route: &Route,
    incoming: &IncomingRequest<'_>,
    action: FaultAction,
) -> Result<(SimResponse, Delivery), ConnectionDroppedOnPurpose> {
    let processed = || process(shared, route, incoming);
    let response = match action {
        // A late one is handled in `answer`, before the request's borrows end.
        FaultAction::Proceed | FaultAction::ProcessLate(_) => processed(),
        FaultAction::Respond { status, body } => handlers::fault_response(status, &body),
        FaultAction::DropConnection => return Err(drop_connection(kill)),
        FaultAction::ProcessThenDrop => {
            processed();
            return Err(drop_connection(kill));
        }
        FaultAction::ProcessThenHang(hang_for) => {
            processed();
            tokio::time::sleep(hang_for).await;
            return Err(drop_connection(kill));
        }
        FaultAction::MalformedSuccess => {
            processed();
            handlers::malformed_success(route.endpoint)
        }
        FaultAction::ProcessThenRespond { status, body } => {
            processed();
            handlers::fault_response(status, &body)
        }
        FaultAction::ResetMidBody => return Ok((processed(), Delivery::Cut)),
        FaultAction::SlowBody(over) => return Ok((processed(), Delivery::Slow(over))),
        FaultAction::OversizedBody(bytes) => handlers::oversized(processed(), bytes),
        FaultAction::ContentType(content_type) => SimResponse {
            content_type: Some(content_type),
            ..processed()
        },
        FaultAction::SetField { field, json } => {
            handlers::set_field(processed(), &field, json.as_deref())
        }
    };
    Ok((response, Delivery::Whole))
}

/// Handles the request `after` this long in a task of its own, so it lands even when the
/// client closed the connection meanwhile (dropping this future).
async fn process_late(
    shared: &Arc<Shared>,
    route: Route,
    parts: &Parts,
    body: Vec<u8>,
    after: Duration,
) -> SimResponse {
    let (shared, headers, query) = (
        Arc::clone(shared),
        parts.headers.clone(),
        parts.uri.query().map(str::to_owned),
    );
    let late = tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let incoming = IncomingRequest {
            headers: &headers,
            query: query.as_deref(),
            body: &body,
        };
        process(&shared, &route, &incoming)
    });
    late.await.unwrap_or_else(|_| SimResponse::empty(500))
}

/// Runs the real handler under the state lock, at the moment the request is processed.
fn process(shared: &Shared, route: &Route, request: &IncomingRequest<'_>) -> SimResponse {
    let context = HandlerContext {
        base_url: &shared.base_url,
        unused_fields: shared.unused_fields,
    };
    handlers::handle(
        &mut lock(&shared.state),
        &context,
        route,
        request,
        Instant::now(),
    )
}

fn into_hyper(response: SimResponse, delivery: &Delivery) -> Response<SimBody> {
    let length = response.body.len();
    let body = match delivery {
        Delivery::Whole => SimBody::whole(response.body),
        Delivery::Cut => SimBody::cut(response.body),
        Delivery::Slow(over) => SimBody::trickled(response.body, *over),
    };
    let mut hyper_response = Response::new(body);
    *hyper_response.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = hyper_response.headers_mut();
    if let Some(content_type) = response.content_type
        && let Ok(value) = HeaderValue::from_str(&content_type)
    {
        headers.insert(CONTENT_TYPE, value);
    }
    if !matches!(delivery, Delivery::Whole) {
        // A streamed body announces its full length, so a cut one is visibly incomplete.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
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
