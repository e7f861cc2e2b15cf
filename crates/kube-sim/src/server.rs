//! The listener: accepts connections (plain or TLS), serves each with hyper (HTTP/1.1 and
//! HTTP/2), and can stop accepting and drop every connection on command.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connections get to finish after shutdown before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the test-facing handle asks of the accept loop.
pub(crate) enum Command {
    /// Close the listening socket (new connections are refused) and drop every connection.
    Offline(oneshot::Sender<()>),
    /// Listen again on the same address.
    Online(oneshot::Sender<io::Result<()>>),
}

/// Everything a connection needs.
#[derive(Clone)]
struct Connections {
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
}

/// Accepts until `shutdown` turns true, then gives open connections a bounded grace period.
pub(crate) async fn run(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let address = listener.local_addr().ok();
    let mut listener = Some(listener);
    let context = Connections {
        router,
        tls,
        shutdown: shutdown.clone(),
    };
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = accept(listener.as_ref()) => match accepted {
                Ok(stream) => {
                    connections.spawn(serve_connection(stream, context.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "kube simulator failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(command) = commands.recv() => {
                handle_command(command, &mut listener, address, &mut connections).await;
            }
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

/// Resolves once the shutdown flag is set (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopped| *stopped).await;
}

async fn handle_command(
    command: Command,
    listener: &mut Option<TcpListener>,
    address: Option<SocketAddr>,
    connections: &mut JoinSet<()>,
) {
    match command {
        Command::Offline(done) => {
            *listener = None;
            connections.abort_all();
            while connections.join_next().await.is_some() {}
            let _ = done.send(());
        }
        Command::Online(done) => {
            let result = match (listener.as_ref(), address) {
                (Some(_), _) => Ok(()),
                (None, Some(address)) => TcpListener::bind(address).await.map(|l| {
                    *listener = Some(l);
                }),
                (None, None) => Err(io::Error::other("the listener address is unknown")),
            };
            let _ = done.send(result);
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn serve_connection(stream: TcpStream, context: Connections) {
    let _ = stream.set_nodelay(true);
    match context.tls.clone() {
        None => serve_io(stream, context).await,
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => serve_io(tls_stream, context).await,
                Ok(Err(error)) => tracing::debug!(%error, "kube simulator TLS handshake failed"),
                Err(_elapsed) => tracing::debug!("kube simulator TLS handshake timed out"),
            }
        }
    }
}

async fn serve_io<I>(io: I, context: Connections)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Connections {
        router,
        mut shutdown,
        ..
    } = context;
    let service = TowerToHyperService::new(router);
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "kube simulator connection ended with an error");
            }
        }
        () = stopped(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Binds the listener for an address.
pub(crate) async fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// A TLS acceptor for a server configuration.
pub(crate) fn acceptor(config: &Arc<rustls::ServerConfig>) -> TlsAcceptor {
    TlsAcceptor::from(Arc::clone(config))
}
