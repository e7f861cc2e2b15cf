//! Rendering: the Secret to write for a credential (data, record annotations, template metadata,
//! owner reference), and the template metadata an owned Secret is missing.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::{
    CREDENTIAL_LABEL, CredentialData, DATA_KEYS_ANNOTATION, EXPIRES_AT_ANNOTATION,
    FINGERPRINT_ANNOTATION, FingerprintKeys, ISSUE_ID_ANNOTATION, ISSUED_AT_ANNOTATION,
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, REVISION_ANNOTATION, RecordMeta,
    SERVED_ROTATE_REQUEST_ANNOTATION, SPEC_HASH_ANNOTATION,
};
use crate::api::SyncClientCredential;

/// The Secret to write for a credential: data, record annotations, template metadata and the
/// controller owner reference, all in one object.
pub fn render(
    owner: &SyncClientCredential,
    secret_name: &str,
    data: &CredentialData,
    record: &RecordMeta,
    keys: &FingerprintKeys,
) -> Secret {
    let uid = owner.uid().unwrap_or_default();
    let (labels, mut annotations) = template_metadata(owner);
    let text = record.text();
    annotations.insert(FINGERPRINT_ANNOTATION.into(), keys.sign(&uid, data, &text));
    annotations.insert(ISSUED_AT_ANNOTATION.into(), text.issued_at);
    annotations.insert(EXPIRES_AT_ANNOTATION.into(), text.expires_at);
    annotations.insert(REVISION_ANNOTATION.into(), text.revision);
    annotations.insert(SPEC_HASH_ANNOTATION.into(), text.spec_hash);
    annotations.insert(DATA_KEYS_ANNOTATION.into(), text.data_keys);
    annotations.insert(ISSUE_ID_ANNOTATION.into(), text.issue_id);
    if !text.rotate_request.is_empty() {
        annotations.insert(SERVED_ROTATE_REQUEST_ANNOTATION.into(), text.rotate_request);
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_owned()),
            namespace: owner.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: owner.controller_owner_ref(&()).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        type_: Some(
            owner
                .spec
                .secret_template
                .as_ref()
                .and_then(|t| t.type_.clone())
                .unwrap_or_else(|| "Opaque".to_owned()),
        ),
        data: Some(
            data.0
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Labels and annotations the template asks for, plus the operator's own labels (which a
/// template cannot override: the owned-Secret watch depends on them).
pub fn template_metadata(
    owner: &SyncClientCredential,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let template = owner.spec.secret_template.clone().unwrap_or_default();
    let mut labels = template.labels;
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
    labels.insert(CREDENTIAL_LABEL.into(), owner.name_any());
    // The record annotations are the operator's: a template never writes them (the spec check
    // refuses such a template; this keeps a metadata patch from touching the record anyway).
    let mut annotations = template.annotations;
    annotations.retain(|key, _| !key.starts_with(crate::api::shape::RESERVED_ANNOTATION_PREFIX));
    (labels, annotations)
}

/// Template labels or annotations missing from (or different in) an owned Secret: a metadata
/// patch brings them in without a new credential. Returns `None` when nothing is missing.
pub fn metadata_drift(owner: &SyncClientCredential, secret: &Secret) -> Option<serde_json::Value> {
    let (labels, annotations) = template_metadata(owner);
    let missing = |want: &BTreeMap<String, String>, have: Option<&BTreeMap<String, String>>| {
        want.iter()
            .filter(|(k, v)| have.and_then(|h| h.get(*k)) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let labels = missing(&labels, secret.metadata.labels.as_ref());
    let annotations = missing(&annotations, secret.metadata.annotations.as_ref());
    if labels.is_empty() && annotations.is_empty() {
        return None;
    }
    Some(serde_json::json!({"metadata": {"labels": labels, "annotations": annotations}}))
}
