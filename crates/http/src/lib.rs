//! HTTP support shared by the operator's API clients (the broker client and the Microsoft Graph
//! client): everything that does not depend on which protocol is spoken.
//!
//! - [`SecretString`]: a credential that never prints its value.
//! - [`TlsConfig`] and [`client_config`]: rustls with the `ring` provider, set explicitly; a CA
//!   bundle as the only trust anchor, the system trust store, or (labs only) no verification.
//! - [`HttpClient`]: a reqwest client that never follows redirects, bounds every request by a
//!   timeout and reads at most [`MAX_BODY_BYTES`] of an answer ([`Answer`]); failures arrive as
//!   [`RequestFailure`] with a short, single-line message.
//! - [`parse_json`], [`Malformed`], [`ReportedLifetime`], [`parse_retry_after`]: untrusted
//!   answers read without quoting them and numbers read without overflow.
//! - [`describe_error_body`], [`single_line`], [`scrub`]: untrusted error answers turned into
//!   short, single-line, secret-free text; HTML pages are reduced to their title.
//! - [`PATH_SEGMENT`], [`check_path_value`]: ids placed in URL paths.
//!
//! The crate knows no protocol: each client wraps these pieces with its own error type and its
//! own reading of error bodies.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod diagnostics;
mod json;
mod lifetime;
mod path;
#[cfg(test)]
mod proptests;
mod retry_after;
mod secret;
#[cfg(any(test, feature = "strategies"))]
pub mod strategies;
mod tls;
mod transport;

pub use diagnostics::{
    ErrorBody, MAX_DETAIL_CHARS, common_error_message, describe_error_body, describe_html, is_html,
    scrub, single_line,
};
pub use json::{Malformed, as_object, non_empty_string, parse_json};
pub use lifetime::ReportedLifetime;
pub use path::{MAX_PATH_VALUE_CHARS, PATH_SEGMENT, check_path_value, encode_path_segment};
pub use retry_after::{MAX_RETRY_AFTER, MIN_RETRY_AFTER, parse_retry_after};
pub use secret::SecretString;
pub use tls::{TlsConfig, client_config};
pub use transport::{Answer, HttpClient, MAX_BODY_BYTES, RequestFailure};
