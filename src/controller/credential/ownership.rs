//! One sync client, one owner. Two credentials that name the same broker endpoint, tenant and
//! directory (in any namespaces) would revoke each other's token on every rotation: the older one
//! keeps the sync client, the newer one issues nothing and says which credential owns it.

use kube::ResourceExt;

use crate::api::{BrokerKind, SyncClientCredential};
use crate::controller::caches::Caches;

/// What identifies a sync client at a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncClientKey {
    /// The broker is known: its endpoint, tenant and the directory.
    Endpoint {
        url: String,
        tenant: String,
        directory: String,
    },
    /// The broker is not in the cache: the reference itself and the directory.
    Reference {
        kind: BrokerKind,
        namespace: String,
        name: String,
        directory: String,
    },
}

/// The sync client `cr` rotates.
pub fn key_of(cr: &SyncClientCredential, caches: &Caches) -> SyncClientKey {
    let namespace = cr.namespace().unwrap_or_default();
    let directory = cr.spec.directory_id.to_ascii_lowercase();
    match caches.connection_of(&namespace, &cr.spec.broker_ref) {
        Some(connection) => SyncClientKey::Endpoint {
            url: normalize_url(&connection.url),
            tenant: connection.tenant,
            directory,
        },
        None => SyncClientKey::Reference {
            kind: cr.spec.broker_ref.kind,
            namespace: match cr.spec.broker_ref.kind {
                BrokerKind::IdentityBroker => namespace,
                BrokerKind::ClusterIdentityBroker => String::new(),
            },
            name: cr.spec.broker_ref.name.clone(),
            directory,
        },
    }
}

/// Scheme and host are case-insensitive; a trailing slash changes nothing.
fn normalize_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    match trimmed.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
            let mut out = format!(
                "{}://{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase()
            );
            if !path.is_empty() {
                out.push('/');
                out.push_str(path);
            }
            out
        }
        None => trimmed.to_owned(),
    }
}

/// The older credential that rotates the same sync client as `cr`, as `namespace/name`. Only
/// credentials of the same directory are looked at (an index, not a scan of every credential).
pub fn older_owner(cr: &SyncClientCredential, caches: &Caches) -> Option<String> {
    let candidates = caches.credentials_in_directory(&cr.spec.directory_id);
    let mut key = None;
    let mut owner: Option<&SyncClientCredential> = None;
    for guard in &candidates {
        let Ok(other) = &guard.0 else { continue };
        if other.uid() == cr.uid()
            || other.metadata.deletion_timestamp.is_some()
            || !is_older(other, cr)
        {
            continue;
        }
        let mine = key.get_or_insert_with(|| key_of(cr, caches));
        if key_of(other, caches) == *mine && owner.is_none_or(|current| is_older(other, current)) {
            owner = Some(other);
        }
    }
    owner.map(|other| {
        format!(
            "{}/{}",
            other.namespace().unwrap_or_default(),
            other.name_any()
        )
    })
}

/// Creation time, then namespace and name: a total order every replica agrees on.
fn is_older(a: &SyncClientCredential, b: &SyncClientCredential) -> bool {
    let rank = |cr: &SyncClientCredential| {
        (
            cr.metadata.creation_timestamp.clone(),
            cr.namespace().unwrap_or_default(),
            cr.name_any(),
        )
    };
    rank(a) < rank(b)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::core::DeserializeGuard;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::api::{BrokerRef, SyncClientCredentialSpec};
    use crate::controller::caches::DirectoryIndex;

    const DIRECTORY: &str = "6C3F8A52-1D2E-4B7A-9F10-2A4B6C8D0E1F";

    fn credential(
        namespace: &str,
        name: &str,
        created: i64,
        directory: &str,
    ) -> SyncClientCredential {
        let mut cr = SyncClientCredential::new(
            name,
            SyncClientCredentialSpec {
                broker_ref: BrokerRef {
                    kind: BrokerKind::ClusterIdentityBroker,
                    name: "shared".into(),
                },
                directory_id: directory.into(),
                credential_type: crate::api::CredentialType::AccessToken,
                token_ttl: None,
                renew_before: None,
                renew_before_percentage: None,
                rotation_interval: None,
                verify_interval: None,
                secret_name: None,
                secret_template: None,
                keys: None,
                rollout_restart_targets: vec![],
                suspend: false,
                deliveries: vec![],
            },
        );
        cr.metadata.namespace = Some(namespace.into());
        cr.metadata.uid = Some(format!("{namespace}-{name}"));
        cr.metadata.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
        ));
        cr
    }

    fn caches(all: &[SyncClientCredential]) -> Caches {
        let (credentials, mut writer) = reflector::store();
        let index = Arc::new(DirectoryIndex::default());
        for cr in all {
            let event = Event::Apply(DeserializeGuard(Ok(cr.clone())));
            writer.apply_watcher_event(&event);
            index.observe(&event);
        }
        Caches {
            credentials,
            directories: index,
            identity_brokers: reflector::store().0,
            cluster_brokers: None,
            secrets: reflector::store().0,
        }
    }

    #[test]
    fn the_older_credential_owns_a_sync_client_across_namespaces() {
        let older = credential("team-a", "first", 100, DIRECTORY);
        let newer = credential("team-b", "second", 200, &DIRECTORY.to_lowercase());
        let elsewhere = credential(
            "team-c",
            "other",
            50,
            "00000000-0000-4000-8000-000000000000",
        );
        let caches = caches(&[older.clone(), newer.clone(), elsewhere]);
        assert_eq!(
            older_owner(&newer, &caches).as_deref(),
            Some("team-a/first")
        );
        assert_eq!(older_owner(&older, &caches), None, "the older keeps it");
    }

    #[test]
    fn a_credential_being_deleted_owns_nothing() {
        let mut older = credential("team-a", "first", 100, DIRECTORY);
        older.metadata.deletion_timestamp = older.metadata.creation_timestamp.clone();
        let newer = credential("team-b", "second", 200, DIRECTORY);
        let caches = caches(&[older, newer.clone()]);
        assert_eq!(older_owner(&newer, &caches), None);
    }

    #[test]
    fn urls_compare_without_case_in_scheme_and_host_or_a_trailing_slash() {
        assert_eq!(
            normalize_url("HTTPS://VC.Example.com/"),
            normalize_url("https://vc.example.com")
        );
        assert_ne!(
            normalize_url("https://vc.example.com/A"),
            normalize_url("https://vc.example.com/a"),
            "paths are case-sensitive"
        );
    }
}
