//! A stateful simulator of Microsoft Entra ID for end-to-end tests and demos (see
//! `ENTRA_API.md`): the login host's token endpoint and the Microsoft Graph v1.0 calls on a
//! provisioning job's synchronization, served together over HTTPS on 127.0.0.1. Test support
//! only; never part of the operator image.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sync_client_entra_sim::{
//!     AppRegistration, Call, ClientSecret, EntraSim, EntraSimConfig, Fault, Permission,
//!     ServicePrincipal, test_app_key,
//! };
//! let sim = EntraSim::start(EntraSimConfig::default()).await?;
//! sim.register_app(
//!     AppRegistration::new("11111111-2222-3333-4444-555555555555")
//!         .with_secret(ClientSecret::new("app-secret"))
//!         .with_certificate_pem(test_app_key().certificate_pem)?,
//! );
//! sim.grant("11111111-2222-3333-4444-555555555555", Permission::SynchronizationReadWriteAll);
//! sim.add_service_principal(ServicePrincipal::new("sp-1").with_job("scim.job-1", "scim"));
//! sim.inject(Fault::on(Call::PutSecrets).too_many_requests(Some(1)));
//! // ... point the client's login host and Graph root at sim.url(), trusting sim.ca_pem() ...
//! let _delivered = sim.held_secret_token("sp-1");
//! # Ok(())
//! # }
//! ```
//!
//! Choices where the contract is silent:
//! - **`validateCredentials` failure**: `400` with `error.code`
//!   [`VALIDATION_FAILURE_CODE`] (`SystemForCrossDomainIdentityManagementCredentialValidationFailure`,
//!   what the portal shows) and a message naming what the SCIM endpoint did (`answered HTTP
//!   401`, `could not be reached: …`, `BaseAddress or SecretToken is not set`) and the
//!   BaseAddress, never the token. A wrongly cased key in `credentials` (`baseAddress`) gets
//!   `500 InternalError`, as observed; an unknown key `400`.
//! - The SCIM endpoint must be `https` on loopback (127.0.0.0/8, ::1, `localhost`) and trusted
//!   through [`EntraSimConfig::scim_trusted_ca_pems`] or [`EntraSim::trust_scim_ca`]; anything
//!   else fails the validation without a connection.
//! - `GET /secrets` masks every value by default ([`SecretMasking`]).
//! - Permissions are checked at request time, not frozen into the token: a grant made with
//!   [`EntraSim::grant_after`] answers `403` until it takes effect, then the same token works.
//! - `restart` without `criteria` is recorded with no scope and does not lift a quarantine;
//!   `QuarantineState` or `Full` lift it. `start` lifts it and sets the schedule `Active`.
//! - A provisioning cycle ([`EntraSim::run_provisioning_cycle`]) reads the secrets as readers see
//!   them (so a read lag applies) and runs only when the schedule is `Active` and the job not
//!   `Paused`.
//! - Token endpoint refusals: see the table in the `login` module's source; all are `400` as
//!   ENTRA_API.md §0 shows (the real service may answer `401` for `invalid_client`).

mod apps;
mod config;
mod control;
mod directory;
mod faults;
mod graph;
mod jobs;
mod jwt;
mod keys;
mod login;
mod provisioning;
mod recording;
mod response;
mod routes;
mod scim;
mod secrets;
mod server;
mod state;
mod tls;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use apps::{
    AppRegistration, ClientSecret, FederatedCredential, Permission, TOKEN_EXCHANGE_AUDIENCE,
};
pub use config::{DEFAULT_TENANT_ID, EntraSimConfig, InnerErrorSpelling, SecretMasking};
pub use faults::{Fault, FaultAction, FaultBody};
pub use graph::VALIDATION_FAILURE_CODE;
pub use jobs::{
    Execution, ExecutionError, ExecutionState, JobSnapshot, JobStatusCode, Quarantine,
    QuarantineReason, ResetFlag, ResetScope, RestartRecord, ScheduleState, StartRecord,
};
pub use jwt::{JwtAlgorithm, JwtSigningKey, VerificationKey};
pub use keys::{TestAppKey, Thumbprints, client_assertion_claims, test_app_key};
pub use provisioning::CycleOutcome;
pub use recording::{RecordedRequest, SentCredentials};
pub use routes::Call;
pub use scim::{ScimCall, ScimOutcome, ScimPurpose};
pub use state::ServicePrincipal;

use faults::FaultQueue;
use recording::Recorder;
use scim::ScimClient;
use server::{Shared, lock};
use state::SimState;

/// The scope a client asks for in the global cloud (`{url}/.default` works too).
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// A running simulator. The server task stops on [`EntraSim::shutdown`] or when dropped.
pub struct EntraSim {
    shared: Arc<Shared>,
    address: SocketAddr,
    url: String,
    ca_pem: String,
    server: Option<JoinHandle<()>>,
}

impl EntraSim {
    /// Binds 127.0.0.1 (on `config.port`, 0 for an ephemeral port), makes a CA and a server
    /// certificate, and starts serving.
    pub async fn start(config: EntraSimConfig) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
        let address = listener.local_addr()?;
        let (server_config, ca_pem) = tls::generate()?;
        let url = format!("https://{address}");
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState::new(&config)),
            faults: Mutex::new(FaultQueue::default()),
            recorder: Mutex::new(Recorder::default()),
            scim_client: Mutex::new(ScimClient::new(
                &config.scim_trusted_ca_pems,
                config.scim_timeout,
            )),
            scim_calls: Mutex::new(Vec::new()),
            base_url: url.clone(),
            masking: config.secret_masking,
            spelling: config.inner_error_spelling,
        });
        let server = tokio::spawn(server::run(
            listener,
            TlsAcceptor::from(server_config),
            Arc::clone(&shared),
        ));
        tracing::info!(%url, "entra simulator listening");
        Ok(Self {
            shared,
            address,
            url,
            ca_pem,
            server: Some(server),
        })
    }

    /// `https://127.0.0.1:PORT`, without a trailing slash: both the login host and the Graph
    /// root.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A rustls client configuration (ring provider) trusting only this simulator's CA.
    pub fn client_tls_config(&self) -> io::Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        tls::add_pem_roots(&mut roots, &self.ca_pem);
        tls::client_config(Arc::new(roots))
    }

    pub fn tenant_id(&self) -> String {
        lock(&self.shared.state).tenant_id.clone()
    }

    /// `{url}/{tenant}/oauth2/v2.0/token`: the token URL, and the `aud` of client assertions.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.url, self.tenant_id())
    }

    /// Also trusts the certificates of `pem` when calling SCIM endpoints; returns how many.
    pub fn trust_scim_ca(&self, pem: &str) -> usize {
        lock(&self.shared.scim_client).trust(pem)
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

impl Drop for EntraSim {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl std::fmt::Debug for EntraSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraSim")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}
