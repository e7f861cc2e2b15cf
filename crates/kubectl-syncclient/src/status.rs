//! `status [NAME]`: credentials at a glance, with the Ready state of the broker each one names;
//! for one credential, its deliveries in full.

use std::collections::HashMap;

use chrono::Utc;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Serialize;
use sync_client_operator::api::{
    BrokerKind, ClusterIdentityBroker, IdentityBroker, SyncClientCredential,
};

use crate::cli::{StatusArgs, StatusFormat};
use crate::cluster::{CREDENTIALS, Cluster, Request};
use crate::delivery;
use crate::error::{PluginError, chain};
use crate::output;
use crate::summary::{self, BrokerState, CredentialSummary};
use crate::table;

/// A list of summaries, shaped like a Kubernetes list.
#[derive(Serialize)]
struct Items<'a> {
    items: &'a [CredentialSummary],
}

pub async fn run(cluster: &Cluster, args: &StatusArgs) -> Result<(), PluginError> {
    let credentials = fetch(cluster, args).await?;
    let brokers = broker_states(&cluster.client, &credentials).await;
    let summaries: Vec<CredentialSummary> = credentials
        .iter()
        .map(|c| {
            let state = brokers
                .get(&broker_key(c))
                .cloned()
                .unwrap_or(BrokerState::Unknown);
            summary::summarize(c, state)
        })
        .collect();
    let document = match (args.output, &args.name, summaries.as_slice()) {
        (Some(StatusFormat::Json), Some(_), [one]) => Some(output::json(one)?),
        (Some(StatusFormat::Yaml), Some(_), [one]) => Some(output::yaml(one)?),
        (Some(StatusFormat::Json), _, items) => Some(output::json(&Items { items })?),
        (Some(StatusFormat::Yaml), _, items) => Some(output::yaml(&Items { items })?),
        (None | Some(StatusFormat::Wide), _, _) => None,
    };
    if let Some(document) = document {
        return output::print(&document);
    }
    if summaries.is_empty() {
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", cluster.namespace);
        }
        return Ok(());
    }
    let wide = args.output == Some(StatusFormat::Wide);
    let now = Utc::now();
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| summary::row(s, now, wide, args.all_namespaces))
        .collect();
    let mut text = table::render(&summary::headers(wide, args.all_namespaces), &rows);
    if let (Some(_), [one]) = (&args.name, summaries.as_slice())
        && !one.deliveries.is_empty()
    {
        // One credential: each delivery in full below it.
        text.push('\n');
        text.push_str(&table::render(
            &delivery::STATUS_HEADERS,
            &delivery::status_rows(&one.deliveries, one.revision, now),
        ));
    }
    output::print(&text)
}

/// The named credential, or every credential of the namespace (or all namespaces), sorted.
async fn fetch(
    cluster: &Cluster,
    args: &StatusArgs,
) -> Result<Vec<SyncClientCredential>, PluginError> {
    if let Some(name) = &args.name {
        return Ok(vec![cluster.credential(name).await?]);
    }
    let mut params = ListParams::default();
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    let api = if args.all_namespaces {
        Api::all(cluster.client.clone())
    } else {
        cluster.credentials()
    };
    let mut items = match api.list(&params).await {
        Ok(list) => list.items,
        Err(e) => {
            let request = Request {
                verb: "list",
                kind: "SyncClientCredential",
                plural: CREDENTIALS,
                namespace: if args.all_namespaces {
                    "(all)"
                } else {
                    &cluster.namespace
                },
                name: None,
            };
            return Err(cluster.api_error(e, request).await);
        }
    };
    items.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(items)
}

/// Kind, namespace (empty for cluster brokers) and name of the broker a credential names.
type BrokerKey = (BrokerKind, String, String);

fn broker_key(credential: &SyncClientCredential) -> BrokerKey {
    let reference = &credential.spec.broker_ref;
    let namespace = match reference.kind {
        BrokerKind::IdentityBroker => credential.metadata.namespace.clone().unwrap_or_default(),
        BrokerKind::ClusterIdentityBroker => String::new(),
    };
    (reference.kind, namespace, reference.name.clone())
}

/// Reads each broker named by the credentials once. A broker that cannot be read does not fail
/// the command: its state says why.
async fn broker_states(
    client: &Client,
    credentials: &[SyncClientCredential],
) -> HashMap<BrokerKey, BrokerState> {
    let mut states = HashMap::new();
    for credential in credentials {
        let key = broker_key(credential);
        if states.contains_key(&key) {
            continue;
        }
        let state = broker_state(client, &key).await;
        states.insert(key, state);
    }
    states
}

async fn broker_state(client: &Client, (kind, namespace, name): &BrokerKey) -> BrokerState {
    let read = match kind {
        BrokerKind::IdentityBroker => Api::<IdentityBroker>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
            .map(|b| b.map(|b| b.status)),
        BrokerKind::ClusterIdentityBroker => Api::<ClusterIdentityBroker>::all(client.clone())
            .get_opt(name)
            .await
            .map(|b| b.map(|b| b.status)),
    };
    match read {
        Ok(Some(status)) => BrokerState::from_status(status.as_ref()),
        Ok(None) => BrokerState::NotFound,
        Err(kube::Error::Api(status)) if !status.message.is_empty() => BrokerState::Unreadable {
            error: status.message.clone(),
        },
        Err(e) => BrokerState::Unreadable { error: chain(&e) },
    }
}
