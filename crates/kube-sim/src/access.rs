//! How clients reach the simulator: the admin and ServiceAccount tokens, the files a kubelet
//! mounts, the in-cluster environment, kubeconfigs, and token fingerprints.

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::{KubeSim, auth};

impl KubeSim {
    /// The token of the user `admin` (groups `system:masters`, `system:authenticated`),
    /// allowed everything.
    pub fn admin_token(&self) -> String {
        self.shared.tokens().admin().to_owned()
    }

    /// A new bearer token for the ServiceAccount `namespace/name` (user
    /// `system:serviceaccount:<namespace>:<name>`). It is accepted only while that
    /// ServiceAccount exists; if it exists now, only while it is the same object (same uid).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let uid = self
            .get("v1", "serviceaccounts", Some(namespace), name)
            .and_then(|sa| {
                sa.pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        self.shared.tokens().issue(namespace, name, uid)
    }

    /// Writes what a kubelet mounts at `/var/run/secrets/kubernetes.io/serviceaccount` for a
    /// pod of this ServiceAccount into `dir` (created if needed): `token` (a new
    /// [`KubeSim::service_account_token`]), `namespace` and, with TLS, `ca.crt`.
    pub fn service_account_files(
        &self,
        namespace: &str,
        name: &str,
        dir: &Path,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("token"),
            self.service_account_token(namespace, name),
        )?;
        std::fs::write(dir.join("namespace"), namespace)?;
        if let Some(ca) = &self.ca_pem {
            std::fs::write(dir.join("ca.crt"), ca)?;
        }
        Ok(())
    }

    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` as a pod would see them, for
    /// in-cluster clients (`kube::Config::incluster_env`).
    pub fn in_cluster_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KUBERNETES_SERVICE_HOST", self.address.ip().to_string()),
            ("KUBERNETES_SERVICE_PORT", self.address.port().to_string()),
        ]
    }

    /// A kubeconfig with cluster, user and context all named `sim`, default namespace
    /// `default`. The user's token is `sim-token` (any token is accepted) unless TLS or RBAC
    /// is on: then it is the [`KubeSim::admin_token`], and with TLS the cluster carries
    /// `certificate-authority-data`.
    pub fn kubeconfig_yaml(&self) -> String {
        let token = if self.ca_pem.is_some() || self.shared.rbac {
            self.admin_token()
        } else {
            "sim-token".to_owned()
        };
        self.kubeconfig_yaml_with_token(&token)
    }

    /// [`KubeSim::kubeconfig_yaml`] with the user's token replaced by `token`: one client's
    /// identity, e.g. one of two operator replicas. With RBAC off any token is accepted and
    /// still tells the client apart ([`Fault::for_token`](crate::Fault::for_token),
    /// [`KubeSim::counts_for_token`],
    /// [`RecordedRequest::client`](crate::RecordedRequest::client)); with RBAC on it must be a
    /// token the simulator issued.
    pub fn kubeconfig_yaml_with_token(&self, token: &str) -> String {
        let ca = self.ca_pem.as_ref().map_or_else(String::new, |pem| {
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        });
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\n{ca}users:\n- name: sim\n  user:\n    token: {token}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: sim\n    namespace: default\ncurrent-context: sim\npreferences: {{}}\n",
            self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Writes [`KubeSim::kubeconfig_yaml_with_token`].
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml_with_token(token))
    }

    /// The fingerprint [`RecordedRequest::client`](crate::RecordedRequest::client) records for
    /// requests with this bearer token: `sha256:` and the first 16 hex digits of the token's
    /// SHA-256.
    pub fn token_fingerprint(token: &str) -> String {
        auth::token_fingerprint(token)
    }
}
