//! Reports whether each broker can authenticate, in its status. Runs when a broker is created or
//! its spec changes (and retries with backoff while it fails); a broker that is Ready at its
//! current generation is not contacted again, so idle brokers cost nothing.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use futures::{StreamExt, future};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::brokers::{BrokerKey, ResolveError};
use super::{Context, Error, Options};
use crate::api::{
    BrokerConnection, BrokerKind, BrokerStatus, ClusterIdentityBroker, Condition, ConditionStatus,
    IdentityBroker, reasons, set_condition,
};
use crate::planner::FailureCategory;

/// What both broker kinds offer to the status reconciler.
pub trait BrokerResource:
    Resource<DynamicType = (), Scope: Send + Sync>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    const KIND: BrokerKind;
    fn connection(&self) -> &BrokerConnection;
    fn secret_namespace(&self) -> String;
    fn broker_status(&self) -> Option<&BrokerStatus>;
    fn api(client: Client, namespace: Option<&str>) -> Api<Self>;
}

impl BrokerResource for IdentityBroker {
    const KIND: BrokerKind = BrokerKind::IdentityBroker;
    fn connection(&self) -> &BrokerConnection {
        &self.spec.connection
    }
    fn secret_namespace(&self) -> String {
        self.namespace().unwrap_or_default()
    }
    fn broker_status(&self) -> Option<&BrokerStatus> {
        self.status.as_ref()
    }
    fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
        match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }
}

impl BrokerResource for ClusterIdentityBroker {
    const KIND: BrokerKind = BrokerKind::ClusterIdentityBroker;
    fn connection(&self) -> &BrokerConnection {
        &self.spec.connection
    }
    fn secret_namespace(&self) -> String {
        self.spec.secret_namespace.clone()
    }
    fn broker_status(&self) -> Option<&BrokerStatus> {
        self.status.as_ref()
    }
    fn api(client: Client, _namespace: Option<&str>) -> Api<Self> {
        Api::all(client)
    }
}

fn key_of<K: BrokerResource>(broker: &K) -> BrokerKey {
    BrokerKey {
        kind: K::KIND,
        namespace: broker.namespace().unwrap_or_default(),
        name: broker.name_any(),
    }
}

async fn reconcile<K: BrokerResource>(broker: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let generation = broker.meta().generation;
    let old = broker.broker_status().cloned().unwrap_or_default();
    let ready_now = old.observed_generation == generation
        && old
            .conditions
            .iter()
            .any(|c| c.type_ == reasons::READY && c.status == ConditionStatus::True);
    let key = key_of(broker.as_ref());
    if ready_now {
        ctx.metrics.record_broker(
            &format!("{:?}", K::KIND),
            &key.namespace,
            &key.name,
            ConditionStatus::True,
        );
        return Ok(Action::await_change());
    }
    let result = match ctx
        .brokers
        .client_for(
            &ctx.client,
            key.clone(),
            broker.connection(),
            &broker.secret_namespace(),
        )
        .await
    {
        Ok(resolved) => resolved.client.authenticate().await.map_err(|e| {
            let failure = super::credential::broker_failure(&e);
            (failure.reason, failure.message)
        }),
        Err(e) => Err((
            match e {
                ResolveError::ConfigInvalid { .. } => reasons::BROKER_CONFIG_INVALID,
                _ => reasons::BROKER_UNAVAILABLE,
            },
            e.to_string(),
        )),
    };
    let now = Utc::now();
    let mut status = old.clone();
    status.observed_generation = generation;
    let (condition_status, reason, message, action) = match result {
        Ok(auth) => {
            status.last_authentication_time = Some(now);
            status.broker_token_expires_at = auth
                .broker_token_expires_in
                .and_then(|d| TimeDelta::from_std(d).ok())
                .map(|d| now + d);
            (
                ConditionStatus::True,
                reasons::AUTHENTICATED,
                "authenticated to the broker".to_owned(),
                Action::await_change(),
            )
        }
        Err((reason, message)) => {
            tracing::warn!(broker = %key, reason, %message, "broker authentication failed");
            // A permanent failure (e.g. a missing privilege) waits for a change of the broker;
            // anything else is retried with backoff.
            let action = match super::status::category_of_reason(reason) {
                FailureCategory::Permanent => Action::await_change(),
                FailureCategory::Retryable => Action::requeue(ctx.broker_backoff(&key)),
            };
            (
                ConditionStatus::False,
                reason,
                super::status::bounded(&message),
                action,
            )
        }
    };
    if condition_status == ConditionStatus::True {
        ctx.clear_errors(&format!("broker:{key}"));
    }
    ctx.metrics.record_broker(
        &format!("{:?}", K::KIND),
        &key.namespace,
        &key.name,
        condition_status,
    );
    set_condition(
        &mut status.conditions,
        Condition {
            type_: reasons::READY.into(),
            status: condition_status,
            reason: reason.into(),
            message,
            last_transition_time: now,
            observed_generation: generation,
        },
    );
    if status != old || broker.broker_status().is_none() {
        let api = K::api(ctx.client.clone(), broker.namespace().as_deref());
        let patch = serde_json::json!({ "status": status });
        api.patch_status(
            &broker.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| Error::WriteStatus {
            namespace: broker.namespace().unwrap_or_default(),
            name: broker.name_any(),
            source,
        })?;
    }
    Ok(action)
}

#[allow(clippy::needless_pass_by_value)] // kube's Controller::run passes these by value
fn error_policy<K: BrokerResource>(broker: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key_of(broker.as_ref());
    tracing::warn!(broker = %key, %error, "broker reconcile failed");
    Action::requeue(ctx.broker_backoff(&key))
}

fn controller_loop<K: BrokerResource>(
    client: Client,
    options: &Options,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()>
where
    K::DynamicType: Unpin,
{
    Controller::new(
        K::api(client, options.namespace.as_deref()),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(shutdown)
    .run(reconcile::<K>, error_policy::<K>, ctx)
    .for_each(|_| future::ready(()))
}

/// Runs the status reconcilers of both broker kinds (cluster brokers only in cluster scope).
pub async fn run(
    client: Client,
    options: &Options,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let namespaced =
        controller_loop::<IdentityBroker>(client.clone(), options, ctx.clone(), shutdown.clone());
    if options.namespace.is_some() {
        namespaced.await;
    } else {
        let cluster = controller_loop::<ClusterIdentityBroker>(client, options, ctx, shutdown);
        future::join(namespaced, cluster).await;
    }
}
