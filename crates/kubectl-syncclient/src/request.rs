//! `rotate` and `preflight`: set the request annotation to a fresh value with a merge patch and,
//! with `--wait`, watch the credential until the operator has served it.

use std::io::IsTerminal;
use std::pin::pin;

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_credentials};
use serde_json::json;
use sync_client_operator::api::{
    PREFLIGHT_REQUEST_ANNOTATION, ROTATE_REQUEST_ANNOTATION, SyncClientCredential,
};
use sync_client_operator::duration::Display as GoDuration;

use crate::cli::{PreflightArgs, RotateArgs};
use crate::cluster::Cluster;
use crate::confirm;
use crate::error::{PluginError, chain};
use crate::outcome::{self, Baseline, PreflightOutcome, RotateOutcome};
use crate::output;

/// The field manager of the plugin's writes, as `kubectl` records its own.
const FIELD_MANAGER: &str = "kubectl-syncclient";

/// How a request command ended, besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Requested (or, with `--wait`, served successfully).
    Done,
    /// The operator reported a failure for the request.
    Failed,
    /// `--wait` ran out of time; the request stays set.
    TimedOut,
}

pub async fn rotate(cluster: &Cluster, args: &RotateArgs) -> Result<Finish, PluginError> {
    let credential = cluster.credential(&args.name).await?;
    eprintln!("{}", outcome::rotate_warning(&credential, Utc::now()));
    if !args.yes {
        confirm_on_terminal(cluster, &args.name)?;
    }
    let value = outcome::request_value(Utc::now());
    let patched = annotate(cluster, &args.name, ROTATE_REQUEST_ANNOTATION, &value).await?;
    output::print(&format!(
        "Rotation requested: {}/{} annotated {ROTATE_REQUEST_ANNOTATION}={value}\n",
        cluster.namespace, args.name
    ))?;
    if !args.wait {
        eprintln!(
            "The operator serves it shortly; see `kubectl syncclient history {}`.",
            args.name
        );
        return Ok(Finish::Done);
    }
    let baseline = Baseline::of(patched.status.as_ref());
    let waited = wait_for(cluster, &args.name, args.timeout, |c| {
        outcome::rotate_outcome(&baseline, &value, c.status.as_ref())
    })
    .await?;
    match waited {
        Waited::Met(result, credential) => {
            output::print(&format!(
                "{}\n",
                outcome::describe_rotation(&result, &credential, Utc::now())
            ))?;
            Ok(match result {
                RotateOutcome::Issued { .. } => Finish::Done,
                RotateOutcome::Failed { .. } => Finish::Failed,
            })
        }
        Waited::TimedOut { last_error } => {
            report_timeout(
                cluster,
                &args.name,
                args.timeout,
                ROTATE_REQUEST_ANNOTATION,
                &value,
                last_error,
            );
            Ok(Finish::TimedOut)
        }
    }
}

pub async fn preflight(cluster: &Cluster, args: &PreflightArgs) -> Result<Finish, PluginError> {
    let value = outcome::request_value(Utc::now());
    annotate(cluster, &args.name, PREFLIGHT_REQUEST_ANNOTATION, &value).await?;
    output::print(&format!(
        "Preflight requested: {}/{} annotated {PREFLIGHT_REQUEST_ANNOTATION}={value}\n",
        cluster.namespace, args.name
    ))?;
    if !args.wait {
        eprintln!(
            "The operator checks vCenter login, broker token and the sync client (nothing is minted); \
             see the result with `kubectl syncclient status {} -o wide`.",
            args.name
        );
        return Ok(Finish::Done);
    }
    let waited = wait_for(cluster, &args.name, args.timeout, |c| {
        outcome::preflight_outcome(&value, c.status.as_ref())
    })
    .await?;
    match waited {
        Waited::Met(result, credential) => {
            output::print(&format!(
                "{}\n",
                outcome::describe_preflight(&result, &credential, Utc::now())
            ))?;
            Ok(match result {
                PreflightOutcome::Passed(_) => Finish::Done,
                PreflightOutcome::Failed(_) => Finish::Failed,
            })
        }
        Waited::TimedOut { last_error } => {
            report_timeout(
                cluster,
                &args.name,
                args.timeout,
                PREFLIGHT_REQUEST_ANNOTATION,
                &value,
                last_error,
            );
            Ok(Finish::TimedOut)
        }
    }
}

/// Asks on the terminal; refuses without one.
fn confirm_on_terminal(cluster: &Cluster, name: &str) -> Result<(), PluginError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(PluginError::ConfirmationNeeded {
            namespace: cluster.namespace.clone(),
            name: name.to_owned(),
        });
    }
    let question = format!("Rotate {}/{name} now?", cluster.namespace);
    let confirmed =
        confirm::ask(&mut stdin.lock(), &mut std::io::stderr(), &question).map_err(|source| {
            PluginError::Io {
                what: "reading the confirmation",
                source,
            }
        })?;
    if confirmed {
        Ok(())
    } else {
        Err(PluginError::Declined {
            namespace: cluster.namespace.clone(),
            name: name.to_owned(),
        })
    }
}

/// Sets one annotation with a merge patch (other annotations stay as they are).
async fn annotate(
    cluster: &Cluster,
    name: &str,
    key: &str,
    value: &str,
) -> Result<SyncClientCredential, PluginError> {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    match cluster
        .credentials()
        .patch(name, &params, &Patch::Merge(&patch))
        .await
    {
        Ok(credential) => Ok(credential),
        Err(e) => Err(cluster
            .api_error(e, cluster.credential_request("patch", name))
            .await),
    }
}

/// What a wait ended with.
enum Waited<T> {
    /// `check` found this in this version of the credential.
    Met(T, Box<SyncClientCredential>),
    /// Time ran out; the last transient error, if the watch was failing.
    TimedOut { last_error: Option<String> },
}

/// Watches one credential (list, then watch, re-listing and backing off on errors as kube's
/// watcher does) until `check` finds something, at most `timeout`. Refusals and a missing API end
/// the wait at once; other errors are retried until the deadline.
async fn wait_for<T>(
    cluster: &Cluster,
    name: &str,
    timeout: TimeDelta,
    check: impl Fn(&SyncClientCredential) -> Option<T>,
) -> Result<Waited<T>, PluginError> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = pin!(watch_credentials(cluster.credentials(), config).default_backoff());
    let deadline = tokio::time::Instant::now() + timeout.to_std().unwrap_or_default();
    let mut last_error = None;
    loop {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.next()).await else {
            return Ok(Waited::TimedOut { last_error });
        };
        match event {
            Ok(Event::Apply(credential) | Event::InitApply(credential)) => {
                if let Some(found) = check(&credential) {
                    return Ok(Waited::Met(found, Box::new(credential)));
                }
            }
            Ok(Event::Delete(_)) => {
                return Err(PluginError::Deleted {
                    namespace: cluster.namespace.clone(),
                    name: name.to_owned(),
                });
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(error) => last_error = Some(transient(cluster, name, error).await?),
        }
    }
}

/// A watch error worth retrying, described; or, for a refusal or a missing API, the error that
/// ends the wait.
async fn transient(
    cluster: &Cluster,
    name: &str,
    error: watcher::Error,
) -> Result<String, PluginError> {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => {
            if matches!(&e, kube::Error::Api(status) if matches!(status.code, 403 | 404)) {
                return Err(cluster
                    .api_error(e, cluster.credential_request("watch", name))
                    .await);
            }
            Ok(chain(&e))
        }
        watcher::Error::WatchError(status) if status.code == 403 => Err(PluginError::Forbidden {
            message: status.message.clone(),
        }),
        other => Ok(chain(&other)),
    }
}

/// Says that the wait ran out and that the request is still pending.
fn report_timeout(
    cluster: &Cluster,
    name: &str,
    timeout: TimeDelta,
    annotation: &str,
    value: &str,
    last_error: Option<String>,
) {
    eprintln!(
        "Timed out after {}: the operator has not yet served {annotation}={value} on {}/{name}.\n\
         The request stays set and is served when the operator gets to it \
         (is the operator running? see `kubectl syncclient status {name}`).",
        GoDuration(timeout),
        cluster.namespace
    );
    if let Some(error) = last_error {
        eprintln!("Last error while watching: {error}");
    }
}
