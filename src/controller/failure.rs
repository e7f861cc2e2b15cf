//! One failure vocabulary. Each [`FailureReason`] owns its name (the condition reason people see),
//! its retry category (whether it heals by itself or waits for a change) and a hint saying what
//! to fix. Broker, broker-resolution, spec and Kubernetes errors are mapped to it here and nowhere
//! else; status, events, metrics and both reconcilers read it.

use sync_client_broker::{BrokerError, ErrorKind};

use super::brokers::ResolveError;
use crate::api::SpecError;
use crate::planner::FailureCategory;

/// Why an attempt failed, as the condition reason of the Ready and Issuing conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    SpecInvalid,
    BrokerNotFound,
    BrokerNotAllowed,
    BrokerConfigInvalid,
    AuthenticationFailed,
    PermissionDenied,
    SyncClientNotFound,
    SyncClientConflict,
    BrokerUnavailable,
    RotationStateUnknown,
    SecretWriteFailed,
    SecretReadFailed,
    BrokerResponseInvalid,
    SecretWriteRejected,
    ReconcilePanicked,
    BrokerReadFailed,
    SecretDataMissing,
    SecretWritesBacklogged,
    // Deliveries (Entra ID provisioning).
    EntraConnectionNotFound,
    EntraConnectionNotAllowed,
    EntraConnectionInvalid,
    EntraAuthenticationFailed,
    EntraPermissionDenied,
    EntraJobNotFound,
    EntraJobAmbiguous,
    EntraUnavailable,
    EntraValidationFailed,
}

impl FailureReason {
    /// Every reason, for reading stored names back.
    pub const ALL: [Self; 27] = [
        Self::SpecInvalid,
        Self::BrokerNotFound,
        Self::BrokerNotAllowed,
        Self::BrokerConfigInvalid,
        Self::AuthenticationFailed,
        Self::PermissionDenied,
        Self::SyncClientNotFound,
        Self::SyncClientConflict,
        Self::BrokerUnavailable,
        Self::RotationStateUnknown,
        Self::SecretWriteFailed,
        Self::SecretReadFailed,
        Self::BrokerResponseInvalid,
        Self::SecretWriteRejected,
        Self::ReconcilePanicked,
        Self::BrokerReadFailed,
        Self::SecretDataMissing,
        Self::SecretWritesBacklogged,
        Self::EntraConnectionNotFound,
        Self::EntraConnectionNotAllowed,
        Self::EntraConnectionInvalid,
        Self::EntraAuthenticationFailed,
        Self::EntraPermissionDenied,
        Self::EntraJobNotFound,
        Self::EntraJobAmbiguous,
        Self::EntraUnavailable,
        Self::EntraValidationFailed,
    ];

    /// The condition reason, as written into status and shown by `kubectl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpecInvalid => "SpecInvalid",
            Self::BrokerNotFound => "BrokerNotFound",
            Self::BrokerNotAllowed => "BrokerNotAllowed",
            Self::BrokerConfigInvalid => "BrokerConfigInvalid",
            Self::AuthenticationFailed => "AuthenticationFailed",
            Self::PermissionDenied => "PermissionDenied",
            Self::SyncClientNotFound => "SyncClientNotFound",
            Self::SyncClientConflict => "SyncClientConflict",
            Self::BrokerUnavailable => "BrokerUnavailable",
            Self::RotationStateUnknown => "RotationStateUnknown",
            Self::SecretWriteFailed => "SecretWriteFailed",
            Self::SecretReadFailed => "SecretReadFailed",
            Self::BrokerResponseInvalid => "BrokerResponseInvalid",
            Self::SecretWriteRejected => "SecretWriteRejected",
            Self::ReconcilePanicked => "ReconcilePanicked",
            Self::BrokerReadFailed => "BrokerReadFailed",
            Self::SecretDataMissing => "SecretDataMissing",
            Self::SecretWritesBacklogged => "SecretWritesBacklogged",
            Self::EntraConnectionNotFound => "EntraConnectionNotFound",
            Self::EntraConnectionNotAllowed => "EntraConnectionNotAllowed",
            Self::EntraConnectionInvalid => "EntraConnectionInvalid",
            Self::EntraAuthenticationFailed => "EntraAuthenticationFailed",
            Self::EntraPermissionDenied => "EntraPermissionDenied",
            Self::EntraJobNotFound => "EntraJobNotFound",
            Self::EntraJobAmbiguous => "EntraJobAmbiguous",
            Self::EntraUnavailable => "EntraUnavailable",
            Self::EntraValidationFailed => "EntraValidationFailed",
        }
    }

    /// Reads a stored reason back; `None` for names this version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == name)
    }

    /// Permanent reasons wait for a change of the spec (or a new rotate request); the others
    /// are retried with backoff.
    pub fn category(self) -> FailureCategory {
        match self {
            Self::SpecInvalid
            | Self::PermissionDenied
            | Self::SyncClientNotFound
            | Self::SyncClientConflict
            | Self::EntraAuthenticationFailed
            | Self::EntraPermissionDenied
            | Self::EntraJobNotFound
            | Self::EntraJobAmbiguous => FailureCategory::Permanent,
            Self::BrokerNotFound
            | Self::BrokerNotAllowed
            | Self::BrokerConfigInvalid
            | Self::AuthenticationFailed
            | Self::BrokerUnavailable
            | Self::RotationStateUnknown
            | Self::SecretWriteFailed
            | Self::SecretReadFailed
            | Self::BrokerResponseInvalid
            | Self::SecretWriteRejected
            | Self::ReconcilePanicked
            | Self::BrokerReadFailed
            | Self::SecretDataMissing
            | Self::SecretWritesBacklogged
            | Self::EntraConnectionNotFound
            | Self::EntraConnectionNotAllowed
            | Self::EntraConnectionInvalid
            | Self::EntraUnavailable
            | Self::EntraValidationFailed => FailureCategory::Retryable,
        }
    }

    /// What a person can do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Self::SpecInvalid => "correct the spec",
            Self::BrokerNotFound => "create the broker resource or correct spec.brokerRef",
            Self::BrokerNotAllowed => {
                "use a broker that allows this namespace and directory, or change its restrictions"
            }
            Self::BrokerConfigInvalid => "correct the broker resource or the Secrets it names",
            Self::AuthenticationFailed => {
                "check the broker's login Secret and the vCenter account; it is retried"
            }
            Self::PermissionDenied => {
                "grant the vCenter account the privilege, then set the syncclient.io/rotate-request annotation"
            }
            Self::SyncClientNotFound => {
                "configure a sync client for this directory in the broker, or correct spec.directoryId"
            }
            Self::SyncClientConflict => {
                "the directory has several sync clients: remove the extra ones in the broker"
            }
            Self::BrokerUnavailable => {
                "the broker or vCenter is unreachable or failing; it is retried"
            }
            Self::RotationStateUnknown => {
                "the broker may have rotated without answering; a new credential is issued soon"
            }
            Self::SecretWriteFailed => "the Secret could not be written; it is retried",
            Self::SecretReadFailed => "the Secret could not be read; it is retried",
            Self::BrokerResponseInvalid => {
                "the broker answered with an unusable credential lifetime; it is retried with backoff"
            }
            Self::SecretWriteRejected => {
                "the API server refuses the Secret (policy, quota or validation); nothing is issued until that changes"
            }
            Self::ReconcilePanicked => "an internal error; it is retried with backoff",
            Self::BrokerReadFailed => {
                "the operator could not read the broker resource, its Secrets or the credential's namespace (the message names which and why); it is retried"
            }
            Self::SecretDataMissing => {
                "the Secret no longer holds the credential under the keys its record names (edited or deleted meanwhile); it is repaired"
            }
            Self::SecretWritesBacklogged => {
                "many generated credentials still wait for their Secret writes, so nothing new is generated until they are stored; it is retried"
            }
            Self::EntraConnectionNotFound => {
                "create the EntraConnection or correct the delivery's connectionRef"
            }
            Self::EntraConnectionNotAllowed => {
                "use a connection that allows this namespace, or change its namespaceSelector"
            }
            Self::EntraConnectionInvalid => {
                "correct the Entra ID connection or the Secrets it names"
            }
            Self::EntraAuthenticationFailed => {
                "Entra ID refused the app's sign-in: check the tenant and client ids and renew the client secret or certificate (or the federated credential)"
            }
            Self::EntraPermissionDenied => {
                "grant the app Synchronization.ReadWrite.All (or Application.ReadWrite.OwnedBy and make it an owner of the service principal), with admin consent"
            }
            Self::EntraJobNotFound => {
                "correct servicePrincipalId (the enterprise application's object id) or jobId, or set up provisioning for it"
            }
            Self::EntraJobAmbiguous => {
                "the service principal has several provisioning jobs: set the delivery's jobId"
            }
            Self::EntraUnavailable => {
                "Entra ID or Microsoft Graph is unreachable or throttling; it is retried"
            }
            Self::EntraValidationFailed => {
                "Entra ID could not reach the SCIM endpoint with the saved token: check the delivery's baseAddress and that Entra ID can reach vCenter; it is validated again"
            }
        }
    }

    /// The reason for a broker client error.
    pub fn of_broker_error(error: &BrokerError) -> Self {
        match error.kind() {
            ErrorKind::Spec => Self::SpecInvalid,
            ErrorKind::Permission => Self::PermissionDenied,
            ErrorKind::NotFound => Self::SyncClientNotFound,
            ErrorKind::Conflict => Self::SyncClientConflict,
            ErrorKind::Auth => Self::AuthenticationFailed,
            ErrorKind::Transient if error.outcome_unknown() => Self::RotationStateUnknown,
            ErrorKind::Transient | ErrorKind::GuardRefused => Self::BrokerUnavailable,
        }
    }

    /// The reason a broker resource could not be used.
    pub fn of_resolve_error(error: &ResolveError) -> Self {
        match error {
            ResolveError::NotFound { .. } => Self::BrokerNotFound,
            ResolveError::NotAllowed { .. } => Self::BrokerNotAllowed,
            ResolveError::ConfigInvalid { .. } => Self::BrokerConfigInvalid,
            ResolveError::Kube { .. } => Self::BrokerReadFailed,
        }
    }
}

impl FailureReason {
    /// Whether the reason is about a delivery target, not the broker.
    pub fn is_delivery(self) -> bool {
        matches!(
            self,
            Self::EntraConnectionNotFound
                | Self::EntraConnectionNotAllowed
                | Self::EntraConnectionInvalid
                | Self::EntraAuthenticationFailed
                | Self::EntraPermissionDenied
                | Self::EntraJobNotFound
                | Self::EntraJobAmbiguous
                | Self::EntraUnavailable
                | Self::EntraValidationFailed
        )
    }

    /// The reason for a Graph client error.
    pub fn of_graph_error(error: &sync_client_graph::GraphError) -> Self {
        use sync_client_graph::GraphErrorKind as Kind;
        match error.kind() {
            Kind::InvalidClient | Kind::Unauthorized => Self::EntraAuthenticationFailed,
            Kind::Forbidden => Self::EntraPermissionDenied,
            Kind::NotFound => Self::EntraJobNotFound,
            Kind::ValidationFailed => Self::EntraValidationFailed,
            Kind::Configuration => Self::EntraConnectionInvalid,
            Kind::Conflict | Kind::Throttled | Kind::Transient | Kind::InvalidResponse => {
                Self::EntraUnavailable
            }
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed attempt, described for people and classified for the planner. The message never
/// holds secret material: broker errors are redacted by the broker client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    pub message: String,
    /// The broker may have rotated although no answer arrived: the Secret may hold a dead token.
    pub outcome_unknown: bool,
    /// How long the broker asked to be left alone (`Retry-After`, bounded by the client).
    pub retry_after: Option<std::time::Duration>,
    /// The fence stopped the generate before it was sent (shutting down, or no longer surely
    /// the leader): nothing happened, so nothing is reported (no status, event or metric).
    pub fenced: bool,
}

impl Failure {
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            outcome_unknown: false,
            retry_after: None,
            fenced: false,
        }
    }

    pub fn category(&self) -> FailureCategory {
        self.reason.category()
    }

    pub fn from_broker(error: &BrokerError) -> Self {
        Self {
            reason: FailureReason::of_broker_error(error),
            message: error.to_string(),
            outcome_unknown: error.outcome_unknown(),
            retry_after: error.retry_after(),
            fenced: error.kind() == ErrorKind::GuardRefused,
        }
    }

    pub fn from_resolve(error: &ResolveError) -> Self {
        Self::new(FailureReason::of_resolve_error(error), error.to_string())
    }

    /// An Entra ID connection could not be used.
    pub fn from_entra_resolve(error: &super::entra::EntraResolveError) -> Self {
        use super::entra::EntraResolveError as E;
        let reason = match error {
            E::NotFound { .. } => FailureReason::EntraConnectionNotFound,
            E::NotAllowed { .. } => FailureReason::EntraConnectionNotAllowed,
            E::ConfigInvalid { .. } => FailureReason::EntraConnectionInvalid,
            E::Kube { .. } => FailureReason::EntraUnavailable,
        };
        Self::new(reason, error.to_string())
    }

    /// A Graph call failed (its message names the step and holds no secret).
    pub fn from_graph(error: &sync_client_graph::GraphError) -> Self {
        Self {
            retry_after: error.retry_after(),
            ..Self::new(FailureReason::of_graph_error(error), error.to_string())
        }
    }

    pub fn from_spec(error: &SpecError) -> Self {
        Self::new(FailureReason::SpecInvalid, error.to_string())
    }

    /// The API server refused the Secret the operator would write (found by a dry run, before
    /// any credential was generated).
    pub fn secret_rejected(message: impl Into<String>) -> Self {
        Self::new(FailureReason::SecretWriteRejected, message)
    }

    /// The new credential was generated but could not be stored: the Secret may hold a revoked
    /// token until the retry.
    pub fn secret_write(message: impl Into<String>) -> Self {
        Self {
            outcome_unknown: true,
            ..Self::new(FailureReason::SecretWriteFailed, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_name() {
        for reason in FailureReason::ALL {
            assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
            assert!(!reason.hint().is_empty());
        }
        assert_eq!(FailureReason::parse("SomethingNew"), None);
    }

    #[test]
    fn only_changes_of_the_spec_or_the_broker_side_heal_permanent_reasons() {
        let permanent: Vec<_> = FailureReason::ALL
            .into_iter()
            .filter(|r| r.category() == FailureCategory::Permanent)
            .collect();
        assert_eq!(
            permanent,
            [
                FailureReason::SpecInvalid,
                FailureReason::PermissionDenied,
                FailureReason::SyncClientNotFound,
                FailureReason::SyncClientConflict,
                FailureReason::EntraAuthenticationFailed,
                FailureReason::EntraPermissionDenied,
                FailureReason::EntraJobNotFound,
                FailureReason::EntraJobAmbiguous,
            ]
        );
    }
}
