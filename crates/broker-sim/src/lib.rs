//! A stateful simulator of the VMware identity broker and the vCenter token API
//! (see `BROKER_API.md`), served over real HTTP or HTTPS on 127.0.0.1 for end-to-end tests and
//! demos. Test support only; never part of the operator image.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, Endpoint, Fault, SyncClients};
//! let sim = BrokerSim::start(BrokerSimConfig::default()).await?;
//! sim.add_directory("3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c", SyncClients::One { generate_token: true, token_ttl: 10 });
//! sim.inject(Fault::on(Endpoint::Generate).times(2).status(500));
//! sim.inject(Fault::on(Endpoint::Generate).reset_mid_body()); // rotates, then breaks the body
//! sim.inject(Fault::on(Endpoint::Generate).access_token_expire_in(&serde_json::json!(-5)));
//! // ... point the client at sim.url(), trusting sim.ca_pem() ...
//! let _admin_token = sim.generate_out_of_band("3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c");
//! let _new_ca_pem = sim.rotate_server_certificate()?;
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod body;
mod config;
mod faults;
mod handlers;
mod recording;
mod routes;
mod server;
mod state;
mod tls;
mod tokens;
mod vapi;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use config::{AcceptedBrokerTokens, BrokerSimConfig, ExpiresIn, UnusedFields};
pub use faults::{DEFAULT_OVERSIZED_BYTES, Fault, FaultAction, FaultBody};
pub use handlers::SYNC_CLIENT_MEDIA_TYPE;
pub use recording::RecordedRequest;
pub use routes::Endpoint;
pub use state::SyncClients;
pub use tokens::new_directory_id;

use faults::FaultQueue;
use recording::Recorder;
use server::{Shared, lock};
use state::SimState;

/// A credential the broker issued before (e.g. captured with a cluster's state), made live again
/// with [`BrokerSim::restore`].
#[derive(Clone)]
pub enum Restored {
    AccessToken {
        token: String,
        /// From now on.
        lifetime: std::time::Duration,
    },
    ClientSecret {
        client_id: String,
        client_secret: String,
    },
}

impl std::fmt::Debug for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AccessToken { .. } => "Restored::AccessToken(<redacted>)",
            Self::ClientSecret { .. } => "Restored::ClientSecret(<redacted>)",
        })
    }
}

/// A running simulator. The server task stops on [`BrokerSim::shutdown`] or when dropped.
pub struct BrokerSim {
    shared: Arc<Shared>,
    address: SocketAddr,
    url: String,
    tls: Option<tls::SimTls>,
    username: String,
    password: String,
    server: Option<JoinHandle<()>>,
}

impl BrokerSim {
    /// Binds 127.0.0.1 (on `config.port`, 0 for an ephemeral port), generates the CA when
    /// `config.tls` is set, and starts serving.
    pub async fn start(config: BrokerSimConfig) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
        let address = listener.local_addr()?;
        let tls = if config.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{address}");
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState::new(&config)),
            faults: Mutex::new(FaultQueue::default()),
            recorder: Mutex::new(Recorder::default()),
            base_url: url.clone(),
            unused_fields: config.unused_fields,
            certificate_rotations: tokio::sync::watch::Sender::new(0),
            failed_handshakes: AtomicUsize::new(0),
        });
        let acceptor = tls
            .as_ref()
            .map(|tls| TlsAcceptor::from(Arc::clone(&tls.server_config)));
        let server = tokio::spawn(server::run(listener, acceptor, Arc::clone(&shared)));
        tracing::info!(%url, "broker simulator listening");
        Ok(Self {
            shared,
            address,
            url,
            tls,
            username: config.username,
            password: config.password,
            server: Some(server),
        })
    }

    /// `https://127.0.0.1:PORT` or `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The PEM of the CA that signed the current server certificate (HTTPS only).
    pub fn ca_pem(&self) -> Option<String> {
        self.tls.as_ref().map(tls::SimTls::ca_pem)
    }

    /// A rustls client configuration (ring provider) trusting only this simulator's current CA
    /// (HTTPS only).
    pub fn client_tls_config(&self) -> Option<io::Result<rustls::ClientConfig>> {
        self.tls.as_ref().map(tls::SimTls::client_config)
    }

    /// Re-issues the server certificate from a *new* CA, as when vCenter's certificate is
    /// replaced: every TLS handshake from now on presents it, so a client that trusts only the
    /// old CA fails verification. Open connections finish the request in flight and close (as a
    /// restarted reverse proxy would), so the next request of any client makes a new handshake.
    /// Returns the new CA's PEM (also from [`BrokerSim::ca_pem`] from now on). Fails for a
    /// plain-HTTP simulator.
    pub fn rotate_server_certificate(&self) -> io::Result<String> {
        let tls = self.tls.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "the broker simulator serves plain HTTP: there is no certificate to rotate",
            )
        })?;
        let ca_pem = tls.rotate()?;
        self.shared
            .certificate_rotations
            .send_modify(|rotations| *rotations += 1);
        tracing::info!("broker simulator rotated its server certificate to a new CA");
        Ok(ca_pem)
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn tenant(&self) -> String {
        lock(&self.shared.state).tenant().to_owned()
    }

    /// TLS handshakes that failed since the start (a client refusing the server certificate
    /// after [`BrokerSim::rotate_server_certificate`], say). Such connections never reach the
    /// request log. The server counts a failure when it sees the client's alert, which may be
    /// just after the client reported its error: poll (bounded) rather than read once.
    pub fn failed_tls_handshakes(&self) -> usize {
        self.shared.failed_handshakes.load(Ordering::Relaxed)
    }

    // ---- directories and permissions ----

    /// Adds (or replaces) a directory; a new sync client holds no credentials until generated.
    pub fn add_directory(&self, id: &str, sync_clients: SyncClients) {
        lock(&self.shared.state).add_directory(id, sync_clients);
    }

    /// Adds a directory with one token-mode sync client using the configured default TTL.
    pub fn add_directory_with_defaults(&self, id: &str) {
        let mut state = lock(&self.shared.state);
        let token_ttl = state.default_token_ttl();
        state.add_directory(
            id,
            SyncClients::One {
                generate_token: true,
                token_ttl,
            },
        );
    }

    pub fn directories(&self) -> Vec<String> {
        lock(&self.shared.state).directory_ids()
    }

    /// Grants or revokes `VcIdentityProviders.Manage` (B answers 403 without it).
    pub fn set_privilege(&self, granted: bool) {
        lock(&self.shared.state).set_privilege(granted);
    }

    /// Makes a credential issued before (by another simulator run, captured with a cluster's
    /// state) the directory's live one, without counting a generate. `false` for a directory
    /// without exactly one sync client.
    pub fn restore(&self, directory_id: &str, credential: Restored) -> bool {
        lock(&self.shared.state).restore(directory_id, credential, Instant::now())
    }

    /// Lets generate and read answer 403 for every directory (`false`) or not (`true`).
    pub fn set_usergroup_access(&self, granted: bool) {
        lock(&self.shared.state).set_usergroup_access(granted);
    }

    /// Lets generate and read answer 403 for one directory. Returns false for an unknown id.
    pub fn set_directory_access(&self, directory_id: &str, granted: bool) -> bool {
        lock(&self.shared.state).set_directory_access(directory_id, granted)
    }

    /// Changes what later TokenInfo bodies report as `expires_in` (and the token lifetime).
    pub fn set_broker_token_expires_in(&self, expires_in: ExpiresIn) {
        lock(&self.shared.state).set_broker_token_expires_in(expires_in);
    }

    // ---- faults ----

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// How many faulty answers are still queued (each fault counts its remaining uses).
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.faults).pending()
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    // ---- recording ----

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.recorder).requests()
    }

    /// Recorded requests to `endpoint` since the last [`BrokerSim::clear_requests`], whatever
    /// their answer (`DELETE /api/session` is [`Endpoint::Logout`]; logins that vCenter refused
    /// count under [`Endpoint::Login`] too).
    pub fn count(&self, endpoint: Endpoint) -> usize {
        lock(&self.shared.recorder).count(endpoint)
    }

    /// Recorded requests to `endpoint` answered with `status` (e.g. `Login` refused with 401)
    /// since the last [`BrokerSim::clear_requests`].
    pub fn count_with_status(&self, endpoint: Endpoint, status: u16) -> usize {
        lock(&self.shared.recorder).count_with_status(endpoint, status)
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.recorder).clear();
    }

    // ---- credentials ----

    /// The directory's live sync-client token (issued, not revoked, not expired).
    pub fn current_token(&self, directory_id: &str) -> Option<String> {
        lock(&self.shared.state).current_token(directory_id, Instant::now())
    }

    /// `(client_id, client_secret)` of the directory's sync client in client-secret mode.
    pub fn current_client_secret(&self, directory_id: &str) -> Option<(String, String)> {
        lock(&self.shared.state).current_client_secret(directory_id)
    }

    /// Whether the SCIM probe would accept this sync-client token now.
    pub fn token_is_valid(&self, token: &str) -> bool {
        lock(&self.shared.state).token_is_valid(token, Instant::now())
    }

    /// Whether generate and read would accept this broker (vCenter-issued) token now.
    pub fn broker_token_is_valid(&self, token: &str) -> bool {
        lock(&self.shared.state).broker_token_is_valid(token, Instant::now())
    }

    /// Successful rotations of the directory's sync client (not reset by `clear_requests`).
    pub fn generate_count(&self, directory_id: &str) -> usize {
        lock(&self.shared.state).generate_count(directory_id)
    }

    /// Rotates the directory's sync client as if an administrator pressed Generate in the
    /// vSphere Client: the saved settings are kept, the previous token or secret is revoked at
    /// once, and the new access token (token mode) or client secret (secret mode) is returned.
    /// No request is recorded; [`BrokerSim::generate_count`] counts it. `None` when the
    /// directory does not have exactly one sync client.
    pub fn generate_out_of_band(&self, directory_id: &str) -> Option<String> {
        lock(&self.shared.state).generate_out_of_band(directory_id, Instant::now())
    }

    /// vCenter sessions open now: logged in, not logged out, not idle for too long, not
    /// ended by [`BrokerSim::expire_sessions`].
    pub fn open_sessions(&self) -> usize {
        lock(&self.shared.state).open_sessions(Instant::now())
    }

    /// Ends every vCenter session at once, as an idle timeout or a vCenter restart would.
    pub fn expire_sessions(&self) {
        lock(&self.shared.state).expire_sessions();
    }

    /// Invalidates every broker token at once.
    pub fn expire_broker_tokens(&self) {
        lock(&self.shared.state).expire_broker_tokens();
    }

    /// Stops the server and closes every open connection.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            // The task only ends by being aborted; its cancellation is the expected outcome.
            let _cancelled = server.await;
        }
    }
}

impl Drop for BrokerSim {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl std::fmt::Debug for BrokerSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSim")
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}
