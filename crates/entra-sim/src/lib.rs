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
mod faults;
mod graph;
mod jobs;
mod jwt;
mod keys;
mod login;
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
use std::time::{Duration, Instant, SystemTime};

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
pub use recording::{RecordedRequest, SentCredentials};
pub use routes::Call;
pub use scim::{ScimCall, ScimOutcome, ScimPurpose};
pub use state::ServicePrincipal;

use faults::FaultQueue;
use recording::Recorder;
use scim::{ScimClient, ScimCredentials};
use secrets::{BASE_ADDRESS, SECRET_TOKEN};
use server::{Shared, lock};
use state::SimState;

/// The scope a client asks for in the global cloud (`{url}/.default` works too).
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// What came of [`EntraSim::run_provisioning_cycle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleOutcome {
    /// The SCIM endpoint accepted the saved token: `lastSuccessfulExecution` recorded, any
    /// quarantine lifted.
    Succeeded,
    /// It did not: the job is quarantined (`EncounteredQuarantineException`).
    Quarantined(ScimOutcome),
    /// The schedule is not `Active` or the job is `Paused`: nothing ran.
    NotScheduled,
    UnknownJob,
}

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

    // ---- apps and permissions ----

    /// Adds an app registration, or replaces the one with the same client id.
    pub fn register_app(&self, app: AppRegistration) {
        lock(&self.shared.state).register_app(app);
    }

    /// Adds a client secret to an app (as a rotation of the app's secret would); false for an
    /// unknown app.
    pub fn add_client_secret(&self, client_id: &str, secret: ClientSecret) -> bool {
        lock(&self.shared.state)
            .app_mut(client_id)
            .map(|app| app.secrets.push(secret))
            .is_some()
    }

    /// Grants an application permission, in effect at once.
    pub fn grant(&self, client_id: &str, permission: Permission) {
        self.grant_after(client_id, permission, Duration::ZERO);
    }

    /// Grants a permission that takes effect only after `delay`, as consent does: Graph answers
    /// `403` meanwhile.
    pub fn grant_after(&self, client_id: &str, permission: Permission, delay: Duration) {
        lock(&self.shared.state).grant(client_id, permission, Instant::now() + delay);
    }

    pub fn revoke(&self, client_id: &str, permission: Permission) {
        lock(&self.shared.state).revoke(client_id, permission);
    }

    /// Ends the life of every access token issued so far (Graph answers `401` to them).
    /// The access tokens issued and not yet forgotten (tests scan output for them).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        lock(&self.shared.state).access_tokens()
    }

    pub fn expire_access_tokens(&self) {
        lock(&self.shared.state).expire_tokens(Instant::now());
    }

    // ---- service principals ----

    /// Adds a service principal, or replaces the one with the same id.
    pub fn add_service_principal(&self, service_principal: ServicePrincipal) {
        lock(&self.shared.state).add_principal(service_principal);
    }

    /// Makes an app an owner of a service principal (`true`) or no longer one (`false`).
    /// Returns false for an unknown service principal.
    pub fn set_owner(&self, service_principal: &str, client_id: &str, owner: bool) -> bool {
        let mut state = lock(&self.shared.state);
        let Some(principal) = state.principals.get_mut(service_principal) else {
            return false;
        };
        if owner {
            principal.owners.insert(client_id.to_owned());
        } else {
            principal.owners.remove(client_id);
        }
        true
    }

    /// Stores secrets as an administrator pasting them in the portal would (no request
    /// recorded, no lag). Returns false for an unknown service principal.
    pub fn store_secrets(&self, service_principal: &str, pairs: &[(&str, &str)]) -> bool {
        let mut state = lock(&self.shared.state);
        let Some(principal) = state.principals.get_mut(service_principal) else {
            return false;
        };
        let pairs = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        principal.secrets.upsert(pairs, Instant::now(), None);
        true
    }

    /// The `SecretToken` Entra ID holds for the service principal (the latest write, whatever
    /// a read lag shows readers).
    pub fn held_secret_token(&self, service_principal: &str) -> Option<String> {
        self.held(service_principal, SECRET_TOKEN)
    }

    /// The `BaseAddress` Entra ID holds for the service principal.
    pub fn held_base_address(&self, service_principal: &str) -> Option<String> {
        self.held(service_principal, BASE_ADDRESS)
    }

    /// The keys held for the service principal, sorted.
    pub fn held_secret_keys(&self, service_principal: &str) -> Vec<String> {
        lock(&self.shared.state)
            .principals
            .get(service_principal)
            .map(|principal| principal.secrets.held().keys().cloned().collect())
            .unwrap_or_default()
    }

    fn held(&self, service_principal: &str, key: &str) -> Option<String> {
        lock(&self.shared.state)
            .principals
            .get(service_principal)
            .and_then(|principal| principal.secrets.held().get(key).cloned())
    }

    // ---- jobs ----

    pub fn job(&self, service_principal: &str, job_id: &str) -> Option<JobSnapshot> {
        lock(&self.shared.state)
            .principals
            .get(service_principal)
            .and_then(|principal| principal.jobs.iter().find(|job| job.id == job_id).cloned())
    }

    /// Sets a job's `status.code` and `schedule.state` by hand (`Quarantine` gets a quarantine
    /// `QuarantinedOnDemand` unless it has one). Returns false for an unknown job.
    pub fn set_job_state(
        &self,
        service_principal: &str,
        job_id: &str,
        code: JobStatusCode,
        schedule: ScheduleState,
    ) -> bool {
        let mut state = lock(&self.shared.state);
        let Some(job) = state
            .principals
            .get_mut(service_principal)
            .and_then(|principal| principal.job_mut(job_id))
        else {
            return false;
        };
        job.set_state(code, schedule, SystemTime::now());
        true
    }

    /// Runs one provisioning cycle now: calls the SCIM endpoint with the saved `BaseAddress`
    /// and `SecretToken`, as Entra ID does every 40 minutes. A refusal quarantines the job;
    /// success records `lastSuccessfulExecution` and lifts any quarantine.
    pub async fn run_provisioning_cycle(
        &self,
        service_principal: &str,
        job_id: &str,
    ) -> CycleOutcome {
        let began = SystemTime::now();
        let credentials = {
            let state = lock(&self.shared.state);
            let Some(principal) = state.principals.get(service_principal) else {
                return CycleOutcome::UnknownJob;
            };
            match principal.jobs.iter().find(|job| job.id == job_id) {
                None => return CycleOutcome::UnknownJob,
                Some(job) if !job.runs_cycles() => return CycleOutcome::NotScheduled,
                Some(_) => {}
            }
            let saved = principal.secrets.visible(Instant::now());
            ScimCredentials {
                base_address: saved.get(BASE_ADDRESS).cloned(),
                token: saved.get(SECRET_TOKEN).cloned(),
            }
        };
        let outcome = server::call_scim(
            &self.shared,
            ScimPurpose::ProvisioningCycle,
            service_principal,
            job_id,
            &credentials,
        )
        .await;
        let mut state = lock(&self.shared.state);
        let Some(job) = state
            .principals
            .get_mut(service_principal)
            .and_then(|principal| principal.job_mut(job_id))
        else {
            return CycleOutcome::UnknownJob;
        };
        if outcome.is_accepted() {
            job.record_success(began, SystemTime::now());
            CycleOutcome::Succeeded
        } else {
            job.record_failure(
                began,
                SystemTime::now(),
                ExecutionError {
                    code: VALIDATION_FAILURE_CODE.to_owned(),
                    message: format!("Provisioning could not reach the application: {outcome}."),
                    tenant_actionable: true,
                },
            );
            CycleOutcome::Quarantined(outcome)
        }
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

    /// Requests to `call` since the last [`EntraSim::clear_requests`], whatever their answer.
    pub fn count(&self, call: Call) -> usize {
        lock(&self.shared.recorder).count(call)
    }

    pub fn count_with_status(&self, call: Call, status: u16) -> usize {
        lock(&self.shared.recorder).count_with_status(call, status)
    }

    /// Token requests naming this `client_id` since the last [`EntraSim::clear_requests`].
    pub fn token_requests_by(&self, client_id: &str) -> usize {
        lock(&self.shared.recorder).token_requests_by(client_id)
    }

    /// Forgets the request log and the SCIM call log.
    pub fn clear_requests(&self) {
        lock(&self.shared.recorder).clear();
        lock(&self.shared.scim_calls).clear();
    }

    /// Every SCIM call the simulator made (validations and cycles), oldest first.
    pub fn scim_calls(&self) -> Vec<ScimCall> {
        lock(&self.shared.scim_calls).clone()
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
