//! Reports whether each broker can authenticate, in its status. Runs when a broker is created or
//! its spec changes (and retries with backoff while it fails), and when a credential fails
//! through it for a reason that needs a change (its `Ready` follows what the credentials see).
//! While credentials fail through it, its login Secret is looked at again every minute, and a
//! change (a new client) retries them at once. A broker that is Ready at its current generation,
//! with no credential failing through it, is not contacted again: idle brokers cost nothing.

use std::sync::Arc;

use chrono::TimeDelta;
use futures::{StreamExt, future};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, ResourceExt};

use super::brokers::BrokerKey;
use super::credential::events::publish_on;
use super::failure::Failure;
use super::status::broker::{AuthResult, compute, is_ready_at};
use super::status::{self, Guard, HasStatus};
use super::triggers::TriggerStreams;
use super::{Context, Error, Options};
use crate::api::{
    BrokerConnection, BrokerKind, BrokerStatus, ClusterIdentityBroker, ConditionStatus,
    IdentityBroker,
};
use crate::planner::FailureCategory;

/// What both broker kinds offer to the status reconciler.
pub trait BrokerResource: HasStatus<Status = BrokerStatus, Scope: Send + Sync> {
    const KIND: BrokerKind;
    fn connection(&self) -> &BrokerConnection;
    fn secret_namespace(&self) -> String;
}

impl BrokerResource for IdentityBroker {
    const KIND: BrokerKind = BrokerKind::IdentityBroker;
    fn connection(&self) -> &BrokerConnection {
        &self.spec.connection
    }
    fn secret_namespace(&self) -> String {
        self.namespace().unwrap_or_default()
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
}

fn key_of<K: BrokerResource>(broker: &K) -> BrokerKey {
    BrokerKey {
        kind: K::KIND,
        namespace: broker.namespace().unwrap_or_default(),
        name: broker.name_any(),
    }
}

/// Logs in to the broker (session and broker token) with its current settings.
async fn authenticate<K: BrokerResource>(ctx: &Context, broker: &K) -> AuthResult {
    let resolved = ctx
        .brokers
        .client_for(
            &ctx.client,
            key_of(broker),
            broker.connection(),
            &broker.secret_namespace(),
        )
        .await;
    let client = match resolved {
        Ok(resolved) => resolved.client,
        Err(e) => return AuthResult::Failed(Failure::from_resolve(&e)),
    };
    match client.authenticate().await {
        Ok(auth) => AuthResult::Authenticated {
            broker_token_expires_in: auth
                .broker_token_expires_in
                .and_then(|d| TimeDelta::from_std(d).ok()),
        },
        Err(e) => AuthResult::Failed(Failure::from_broker(&e)),
    }
}

async fn reconcile<K: BrokerResource>(broker: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let generation = broker.meta().generation;
    let old = broker.current_status().cloned().unwrap_or_default();
    let key = key_of(broker.as_ref());
    let kind = format!("{:?}", K::KIND);
    let failing = ctx.brokers.credentials_failing(&key);
    if is_ready_at(&old, generation) && failing.is_none() {
        let ready = ConditionStatus::True;
        ctx.metrics
            .record_broker(&kind, &key.namespace, &key.name, ready);
        return Ok(Action::await_change());
    }
    let now = ctx.clock.now();
    let epoch = ctx.brokers.epoch(&key);
    let result = authenticate(&ctx, broker.as_ref()).await;
    if epoch != 0
        && ctx.brokers.epoch(&key) != epoch
        && let Some(caches) = ctx.caches()
    {
        // Its settings or login Secret changed: credentials waiting for a change try now.
        tracing::info!(broker = %key, "broker client changed; retrying its credentials");
        ctx.triggers.credentials_of(caches, &key);
    }
    let action = match &result {
        // Credentials still fail through it: look at its Secrets again in a while.
        AuthResult::Authenticated { .. } if failing.is_some() => {
            ctx.clear_errors(&format!("broker:{key}"));
            Action::requeue(super::brokers::SECRET_RELOAD_INTERVAL)
        }
        AuthResult::Authenticated { .. } => {
            ctx.clear_errors(&format!("broker:{key}"));
            Action::await_change()
        }
        AuthResult::Failed(failure) => {
            tracing::warn!(broker = %key, reason = %failure.reason, detail = %failure.message, "broker authentication failed");
            // A permanent failure (e.g. a missing privilege) waits for a change of the broker,
            // or, while credentials fail through it, for a change of its Secrets; anything else
            // is retried with backoff.
            match (failure.category(), failing) {
                (FailureCategory::Permanent, None) => Action::await_change(),
                (FailureCategory::Permanent, Some(_)) => {
                    Action::requeue(super::brokers::SECRET_RELOAD_INTERVAL)
                }
                (FailureCategory::Retryable, _) => Action::requeue(ctx.broker_backoff(&key)),
            }
        }
    };
    let status = compute(&old, generation, &result, now);
    let ready = match result {
        AuthResult::Authenticated { .. } => ConditionStatus::True,
        AuthResult::Failed(_) => ConditionStatus::False,
    };
    ctx.metrics
        .record_broker(&kind, &key.namespace, &key.name, ready);
    if let Err(error) = status::write(&ctx.client, broker.as_ref(), &status, Guard::Always).await {
        // The status cannot say so itself: the broker's events do.
        let note = format!("{error}; {}", error.hint());
        let regarding = broker.object_ref(&());
        publish_on(&ctx, &regarding, EventType::Warning, error.reason(), &note).await;
        return Err(error);
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
    triggers: impl futures::Stream<Item = ObjectRef<K>> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()>
where
    K::DynamicType: Unpin,
{
    let (reader, writer) = reflector::store();
    // Only a new generation (a created broker, a changed spec) starts a reconcile from the watch:
    // the reconcile's own status write must not log in again (a refused login would be asked
    // twice for every change). Credential failures and Secret reloads come as triggers.
    let changed = watcher(
        K::api(client, options.namespace.as_deref()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::generation, PredicateConfig::default());
    Controller::for_stream(changed, reader)
        .reconcile_on(triggers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|_| future::ready(()))
}

/// Runs the status reconcilers of both broker kinds (cluster brokers only in cluster scope).
pub async fn run(
    client: Client,
    options: &Options,
    ctx: Arc<Context>,
    triggers: TriggerStreams,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let namespaced = controller_loop::<IdentityBroker>(
        client.clone(),
        options,
        ctx.clone(),
        triggers.identity_brokers,
        shutdown.clone(),
    );
    if options.namespace.is_some() {
        namespaced.await;
    } else {
        let cluster = controller_loop::<ClusterIdentityBroker>(
            client,
            options,
            ctx,
            triggers.cluster_brokers,
            shutdown,
        );
        future::join(namespaced, cluster).await;
    }
}
