//! The built `kubectl-syncclient` binary against the Kubernetes API simulator, one module per
//! command; the tests play the operator by writing statuses through the simulator.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod errors;
mod harness;
mod history;
mod kubectl;
mod preflight;
mod rotate;
mod status;
