//! The connection to the cluster, found as kubectl finds it, and API errors turned into
//! [`PluginError`]s that say what is wrong.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use sync_client_operator::api::{GROUP, SyncClientCredential};

use crate::error::{PluginError, chain};

/// API version of every resource of the operator.
pub const API_VERSION: &str = "syncclient.io/v1alpha1";
/// The plural of `SyncClientCredential`, as discovery lists it.
pub const CREDENTIALS: &str = "syncclientcredentials";

/// Where to connect, as the kubectl flags of the same names say.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// A client and the namespace commands work in.
pub struct Cluster {
    pub client: Client,
    /// The API server's URL, for messages.
    pub server: String,
    /// `--namespace`, else the context's namespace, else `default`.
    pub namespace: String,
}

/// Connects like kubectl: `--kubeconfig`, else `$KUBECONFIG` (a list of files, merged), else
/// `~/.kube/config`, else (without `--context`) the in-cluster service account.
pub async fn connect(target: &Target) -> Result<Cluster, PluginError> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let kubeconfig = match &target.kubeconfig {
        Some(path) => Some(Kubeconfig::read_from(path).map_err(|e| {
            PluginError::Kubeconfig(format!("cannot read {}: {}", path.display(), chain(&e)))
        })?),
        None => match Kubeconfig::read() {
            Ok(kubeconfig) => Some(kubeconfig),
            Err(e) if target.context.is_some() => {
                return Err(PluginError::Kubeconfig(format!(
                    "cannot read a kubeconfig for --context: {}",
                    chain(&e)
                )));
            }
            Err(_) => None,
        },
    };
    let config = match kubeconfig {
        Some(kubeconfig) => Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| PluginError::Kubeconfig(format!("kubeconfig: {}", chain(&e))))?,
        None => Config::incluster().map_err(|e| {
            PluginError::Kubeconfig(format!(
                "no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running in a cluster: {}",
                chain(&e)
            ))
        })?,
    };
    let server = config.cluster_url.to_string();
    let namespace = target
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| {
        PluginError::Kubeconfig(format!(
            "cannot make a client for {server} from the kubeconfig: {}",
            chain(&e)
        ))
    })?;
    Ok(Cluster {
        client,
        server,
        namespace,
    })
}

/// What a failed request was about, for its error message.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `get`, `list`, `patch`, `watch`.
    pub verb: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespace: &'a str,
    pub name: Option<&'a str>,
}

impl Cluster {
    /// Turns a failed request into an error that says what is wrong. A 404 is told apart by
    /// discovery: when the group does not serve the resource, the CRDs are missing; otherwise the
    /// object does not exist.
    pub async fn api_error(&self, error: kube::Error, request: Request<'_>) -> PluginError {
        let kube::Error::Api(status) = error else {
            return PluginError::Unreachable {
                server: self.server.clone(),
                reason: chain(&error),
            };
        };
        if status.code == 403 {
            let message = if status.message.is_empty() {
                format!(
                    "{} {} refused ({})",
                    request.verb, request.plural, status.reason
                )
            } else {
                status.message.clone()
            };
            return PluginError::Forbidden { message };
        }
        if status.code == 404 {
            if !self.serves(request.plural).await {
                return PluginError::CrdMissing {
                    plural: request.plural,
                    group: GROUP.to_owned(),
                };
            }
            if let Some(name) = request.name {
                return PluginError::NotFound {
                    kind: request.kind,
                    namespace: request.namespace.to_owned(),
                    name: name.to_owned(),
                };
            }
        }
        let object = request.name.map_or_else(
            || format!("{} in namespace {}", request.plural, request.namespace),
            |name| format!("{} {}/{name}", request.kind, request.namespace),
        );
        PluginError::Api {
            action: format!("{} {object}", request.verb),
            message: format!("{} ({} {})", status.message, status.code, status.reason),
        }
    }

    /// Whether discovery lists `plural` in the operator's API version. Errors other than a 404
    /// of the group count as served: the original error then speaks for itself.
    async fn serves(&self, plural: &str) -> bool {
        match self.client.list_api_group_resources(API_VERSION).await {
            Ok(list) => list.resources.iter().any(|r| r.name == plural),
            Err(kube::Error::Api(status)) => status.code != 404,
            Err(_) => true,
        }
    }
}

impl Cluster {
    /// SyncClientCredentials of the namespace commands work in.
    pub fn credentials(&self) -> Api<SyncClientCredential> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Describes a request about one credential of the namespace, for [`Cluster::api_error`].
    pub fn credential_request<'a>(&'a self, verb: &'static str, name: &'a str) -> Request<'a> {
        Request {
            verb,
            kind: "SyncClientCredential",
            plural: CREDENTIALS,
            namespace: &self.namespace,
            name: Some(name),
        }
    }

    /// Reads one credential of the namespace.
    pub async fn credential(&self, name: &str) -> Result<SyncClientCredential, PluginError> {
        match self.credentials().get(name).await {
            Ok(credential) => Ok(credential),
            Err(e) => Err(self
                .api_error(e, self.credential_request("get", name))
                .await),
        }
    }
}
