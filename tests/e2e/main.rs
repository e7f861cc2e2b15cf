//! End to end: the real operator binary against the Kubernetes API simulator and the broker
//! simulator, over loopback HTTP(S), one module per theme. `harness` starts the world (and runs
//! the same suite on a real cluster, see there).

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

#[path = "../shared/debug_text.rs"]
mod debug_text;
mod harness;
mod kubectl;
mod logs;

mod broker_failures;
mod chaos;
mod chaos_kit;
mod cost;
mod delivery;
mod entrypoint;
mod faults;
mod fencing;
mod hostile;
mod image;
mod incluster;
mod leader;
mod lifecycle;
mod metrics;
mod never_hurt;
mod observability;
mod packaging;
mod podman;
mod rbac;
mod reliability;
mod schedule;
mod schema;
mod shutdown;
mod walkthrough;
mod watches;
mod words;
