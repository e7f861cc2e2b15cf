//! Reconcile scenarios, kube-rs `controller-rs` style: `credential::reconcile` runs against a
//! scripted Kubernetes API (`mock_api.rs`) that checks every request in order, and against the
//! real broker simulator over loopback HTTP. One module per theme.
//!
//! The request sequence follows the code: GET the Secret; plan; to issue, GET the
//! IdentityBroker and (twice: user name, then password) its vCenter credentials Secret, call the
//! broker, POST or PUT the Secret, publish the event; finally merge-patch the status, unless it
//! is unchanged.

// Scenario futures hold a whole world and run once per test: boxing them would add noise only.
#![allow(clippy::large_futures)]
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

#[path = "../shared/debug_text.rs"]
mod debug_text;
mod mock_api;
mod scenarios;
mod world;

mod broker_failures;
mod cached_view;
mod fencing;
mod issuing;
mod kube_writes;
mod never_lost;
mod refusing;
mod secrecy;
mod status_idempotency;
