//! sync-client-operator: keeps VMware identity broker SCIM sync-client credentials fresh in
//! Kubernetes Secrets.
//!
//! Layout: [`api`] holds the resources; [`planner`] decides, purely; [`secret`] renders and reads
//! the Secret record; [`controller`] observes and acts; [`metrics`] and [`http`] serve operators
//! of the operator. The broker client is its own crate, `sync_client_broker`, with no Kubernetes
//! dependency.

pub mod api;
pub mod clock;
pub mod controller;
pub mod duration;
pub mod http;
pub mod metrics;
pub mod planner;
pub mod secret;
