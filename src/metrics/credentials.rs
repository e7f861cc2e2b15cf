//! Per-credential series, computed at scrape time from the credential cache (the statuses this
//! operator wrote): nothing is kept per credential between scrapes, and a deleted credential's
//! series are gone with it.

use std::sync::{Arc, OnceLock};

use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::api::{ConditionStatus, SyncClientCredential, reasons};

type CredentialStore = Store<DeserializeGuard<SyncClientCredential>>;

/// Encodes the expiry, renewal and readiness of every cached credential.
#[derive(Debug, Clone, Default)]
pub struct CredentialCollector {
    pub store: Arc<OnceLock<CredentialStore>>,
}

impl Collector for CredentialCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.store.get() else {
            return Ok(());
        };
        let state = store.state();
        let credentials: Vec<_> = state
            .iter()
            .filter_map(|guard| guard.0.as_ref().ok())
            .map(|cr| {
                (
                    cr.namespace().unwrap_or_default(),
                    cr.name_any(),
                    cr.status.as_ref(),
                )
            })
            .collect();
        let mut timestamp = |name: &str,
                             help: &str,
                             pick: &dyn Fn(
            &crate::api::SyncClientCredentialStatus,
        ) -> Option<chrono::DateTime<chrono::Utc>>|
         -> Result<(), std::fmt::Error> {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (namespace, name, status) in &credentials {
                if let Some(at) = status.and_then(pick) {
                    let labels = [("namespace", namespace.as_str()), ("name", name.as_str())];
                    ConstGauge::new(at.timestamp()).encode(metric.encode_family(&labels)?)?;
                }
            }
            Ok(())
        };
        timestamp(
            "credential_expiration_timestamp_seconds",
            "When the credential in the Secret expires (Unix seconds)",
            &|s| s.expires_at,
        )?;
        timestamp(
            "credential_renewal_timestamp_seconds",
            "When the operator next tries to rotate: the planned rotation, or the next retry of a failing one (Unix seconds)",
            &|s| s.renewal_time,
        )?;
        timestamp(
            "credential_renewal_due_timestamp_seconds",
            "Since when the credential has been due for renewal without being renewed; absent while nothing is due (Unix seconds)",
            &|s| s.renewal_due_time,
        )?;
        quarantined(&mut encoder, &credentials)?;
        ready_status(&mut encoder, &credentials)?;
        Ok(())
    }
}

/// A credential as the scrape sees it: namespace, name and status.
type Seen<'a> = (
    String,
    String,
    Option<&'a crate::api::SyncClientCredentialStatus>,
);

/// `credential_delivery_job_quarantined`: per delivery whose job state is known.
fn quarantined(
    encoder: &mut DescriptorEncoder,
    credentials: &[Seen<'_>],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(
        "credential_delivery_job_quarantined",
        "1 while the provisioning job a delivery targets was quarantined when last read (0 otherwise)",
        None,
        MetricType::Gauge,
    )?;
    for (namespace, name, status) in credentials {
        for delivery in status.iter().flat_map(|s| &s.deliveries) {
            let Some(state) = delivery.job_state.as_deref() else {
                continue;
            };
            let labels = [
                ("namespace", namespace.as_str()),
                ("name", name.as_str()),
                ("delivery", delivery.name.as_str()),
            ];
            ConstGauge::new(i64::from(state == "Quarantine"))
                .encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// `credential_ready_status`: the Ready condition, False once the stored credential expired.
fn ready_status(
    encoder: &mut DescriptorEncoder,
    credentials: &[Seen<'_>],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(
        "credential_ready_status",
        "Ready condition of each credential (1 for the current condition value)",
        None,
        MetricType::Gauge,
    )?;
    let now = chrono::Utc::now();
    for (namespace, name, status) in credentials {
        // A stored credential past its expiry is not ready, whatever the condition says
        // (it is rewritten at the expiry; the scrape does not wait for that).
        let expired = status
            .and_then(|s| s.expires_at)
            .is_some_and(|at| at <= now);
        let current = status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == reasons::READY))
            .map_or(ConditionStatus::Unknown, |c| c.status);
        let current = if expired {
            ConditionStatus::False
        } else {
            current
        };
        for (value, label) in [
            (ConditionStatus::True, "True"),
            (ConditionStatus::False, "False"),
            (ConditionStatus::Unknown, "Unknown"),
        ] {
            let labels = [
                ("namespace", namespace.as_str()),
                ("name", name.as_str()),
                ("condition", label),
            ];
            ConstGauge::new(i64::from(value == current)).encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}
