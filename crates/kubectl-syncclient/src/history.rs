//! `history NAME`: the last issue attempts the operator recorded, newest first, and where each
//! delivery stands: the revision it holds, when it was saved, its last attempt.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sync_client_operator::api::{DeliveryStatus, RotationRecord};

use crate::cli::{DataFormat, HistoryArgs};
use crate::cluster::Cluster;
use crate::delivery::{self, DeliverySummary};
use crate::error::PluginError;
use crate::humanize::{ago, timestamp};
use crate::{output, table};

pub const HEADERS: [&str; 6] = [
    "TIME",
    "AGO",
    "REVISION",
    "TRIGGER",
    "OUTCOME",
    "FINGERPRINT",
];

/// `-o json|yaml`: the credential, its history and its deliveries as the status holds them.
#[derive(Serialize)]
struct History<'a> {
    namespace: &'a str,
    name: &'a str,
    history: &'a [RotationRecord],
    deliveries: &'a [DeliveryStatus],
}

pub async fn run(cluster: &Cluster, args: &HistoryArgs) -> Result<(), PluginError> {
    let credential = cluster.credential(&args.name).await?;
    let deliveries = delivery::summarize(&credential);
    let status = credential.status.unwrap_or_default();
    let document = History {
        namespace: &cluster.namespace,
        name: &args.name,
        history: &status.history,
        deliveries: &status.deliveries,
    };
    match args.output {
        Some(DataFormat::Json) => output::print(&output::json(&document)?),
        Some(DataFormat::Yaml) => output::print(&output::yaml(&document)?),
        None => {
            if status.history.is_empty() {
                eprintln!(
                    "No issue attempts recorded for {}/{} yet.",
                    cluster.namespace, args.name
                );
            }
            output::print(&text(&status.history, &deliveries, Utc::now()))
        }
    }
}

/// The issue attempts (when there are any), then the deliveries (when the spec has any), one
/// blank line apart.
pub fn text(
    history: &[RotationRecord],
    deliveries: &[DeliverySummary],
    now: DateTime<Utc>,
) -> String {
    let mut tables = Vec::new();
    if !history.is_empty() {
        tables.push(table::render(&HEADERS, &rows(history, now)));
    }
    if !deliveries.is_empty() {
        tables.push(table::render(
            &delivery::HISTORY_HEADERS,
            &delivery::history_rows(deliveries, now),
        ));
    }
    tables.join("\n")
}

/// One row per record, in the order given (the operator keeps them newest first).
pub fn rows(history: &[RotationRecord], now: DateTime<Utc>) -> Vec<Vec<String>> {
    history
        .iter()
        .map(|r| {
            vec![
                timestamp(r.time),
                ago(now, r.time),
                r.revision.to_string(),
                r.trigger.to_string(),
                r.outcome.to_string(),
                r.fingerprint.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn history_rows_show_time_age_and_what_happened() {
        let history: Vec<RotationRecord> = serde_json::from_value(json!([
            {"time": "2026-03-10T11:58:00Z", "revision": 4, "trigger": "RotateRequested",
             "outcome": "Issued", "fingerprint": "sha256:0123456789ab"},
            {"time": "2026-03-10T11:00:00Z", "revision": 4, "trigger": "RenewalDue",
             "outcome": "BrokerUnavailable"},
        ]))
        .unwrap();
        let now = DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            table::render(&HEADERS, &rows(&history, now)),
            "TIME                   AGO      REVISION   TRIGGER           OUTCOME             FINGERPRINT\n\
             2026-03-10T11:58:00Z   2m ago   4          RotateRequested   Issued              sha256:0123456789ab\n\
             2026-03-10T11:00:00Z   1h ago   4          RenewalDue        BrokerUnavailable   -\n"
        );
    }
}
