//! Errors that end a command, worded so the user knows what to do; API server messages are shown
//! as the server wrote them (they name the user, verb and resource of a refusal).

use std::fmt::Write as _;

/// Why a command could not do its work (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    Kubeconfig(String),
    #[error("cannot reach the Kubernetes API server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("{kind} \"{name}\" not found in namespace \"{namespace}\"")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error(
        "the server does not serve {plural}.{group}: the sync-client-operator CRDs are not installed in this cluster (install the operator, or apply its crds/ first)"
    )]
    CrdMissing { plural: &'static str, group: String },
    #[error("permission denied: {message}")]
    Forbidden { message: String },
    #[error("{action} failed: {message}")]
    Api { action: String, message: String },
    #[error(
        "not rotating {namespace}/{name}: rotation revokes the live token and needs confirmation, but standard input is not a terminal; pass --yes to confirm"
    )]
    ConfirmationNeeded { namespace: String, name: String },
    #[error("not rotating {namespace}/{name}: not confirmed")]
    Declined { namespace: String, name: String },
    #[error("{namespace}/{name} was deleted while waiting")]
    Deleted { namespace: String, name: String },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot render the output: {0}")]
    Output(String),
}

/// An error and its sources, `outer: inner: innermost`, for errors whose top line says too little
/// (connection failures).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_chain_lists_every_cause_once() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(chain(&error), "outer: connection refused");
    }

    #[test]
    fn messages_say_what_to_do() {
        let missing = PluginError::CrdMissing {
            plural: "syncclientcredentials",
            group: "syncclient.io".into(),
        };
        assert!(missing.to_string().contains("CRDs are not installed"));
        let refused = PluginError::ConfirmationNeeded {
            namespace: "team-a".into(),
            name: "okta".into(),
        };
        assert!(refused.to_string().contains("--yes"));
    }
}
