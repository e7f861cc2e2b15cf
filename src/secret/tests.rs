//! The Secret record: round trip, tamper detection, ownership and redaction.

use super::*;
use crate::api::{BrokerRef, SyncClientCredentialSpec};

fn credential() -> SyncClientCredential {
    let mut cr = SyncClientCredential::new(
        "app",
        SyncClientCredentialSpec {
            broker_ref: BrokerRef {
                kind: crate::api::BrokerKind::IdentityBroker,
                name: "vc".into(),
            },
            directory_id: "1b2c3d4e-0000-4000-8000-000000000001".into(),
            credential_type: CredentialType::AccessToken,
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
        },
    );
    cr.metadata.namespace = Some("team".into());
    cr.metadata.uid = Some("uid-1".into());
    cr
}

fn issued(at: i64) -> (CredentialData, RecordMeta) {
    let issued_at = DateTime::from_timestamp(at, 0).unwrap();
    let expires_at = issued_at + chrono::TimeDelta::hours(1);
    let data = credential_data(
        &KeyNames::from_spec(None),
        &IssuedValues::AccessToken {
            token: "tok-secret-value",
            expires_at: Some(expires_at),
            scim_url: "https://b/usergroup/t/CUSTOMER/scim/v2",
        },
    );
    let record = RecordMeta {
        issued_at,
        expires_at: Some(expires_at),
        revision: 4,
        spec_hash: "abc".into(),
        rotate_request: None,
    };
    (data, record)
}

#[test]
fn rendered_secret_reads_back_as_an_intact_record() {
    let key = FingerprintKey::new(b"k".to_vec());
    let (data, meta) = issued(1_800_000_000);
    let secret = render(&credential(), "app", &data, &meta, &key);
    let state = observe(Some(&secret), "uid-1", CredentialType::AccessToken, &key);
    assert_eq!(
        state,
        SecretState::Owned(Record {
            issued_at: meta.issued_at,
            expiry: Expiry::At(meta.expires_at.unwrap()),
            revision: 4,
            spec_hash: Some("abc".into()),
            data_intact: true,
        })
    );
    let keys: Vec<_> = secret.data.as_ref().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["access_token", "expires_at", "scim_url"]);
    assert_eq!(
        secret.labels().get(MANAGED_BY_LABEL).map(String::as_str),
        Some(MANAGED_BY_VALUE)
    );
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        ("uid-1", Some(true))
    );
}

#[test]
fn edited_data_is_detected_as_tampered() {
    let key = FingerprintKey::new(b"k".to_vec());
    let (data, meta) = issued(1_800_000_000);
    let mut secret = render(&credential(), "app", &data, &meta, &key);
    secret
        .data
        .as_mut()
        .unwrap()
        .insert("access_token".into(), ByteString(b"edited".to_vec()));
    let SecretState::Owned(record) =
        observe(Some(&secret), "uid-1", CredentialType::AccessToken, &key)
    else {
        panic!("expected an owned record");
    };
    assert!(!record.data_intact);
}

#[test]
fn an_edited_expiry_annotation_is_detected_as_tampering() {
    let key = FingerprintKey::new(b"k".to_vec());
    let (data, meta) = issued(1_800_000_000);
    let mut secret = render(&credential(), "app", &data, &meta, &key);
    secret
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(EXPIRES_AT_ANNOTATION.into(), "2099-01-01T00:00:00Z".into());
    let SecretState::Owned(record) =
        observe(Some(&secret), "uid-1", CredentialType::AccessToken, &key)
    else {
        panic!("expected an owned record");
    };
    assert!(!record.data_intact, "postponing the expiry is noticed");
}

#[test]
fn secret_of_another_owner_is_not_ours() {
    let key = FingerprintKey::new(b"k".to_vec());
    let (data, meta) = issued(1_800_000_000);
    let secret = render(&credential(), "app", &data, &meta, &key);
    assert_eq!(
        observe(Some(&secret), "uid-2", CredentialType::AccessToken, &key),
        SecretState::NotOwned
    );
    assert_eq!(
        observe(None, "uid-1", CredentialType::AccessToken, &key),
        SecretState::Missing
    );
}

#[test]
fn missing_record_annotations_make_the_secret_unreadable() {
    let key = FingerprintKey::new(b"k".to_vec());
    let (data, meta) = issued(1_800_000_000);
    let mut secret = render(&credential(), "app", &data, &meta, &key);
    secret
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(REVISION_ANNOTATION);
    assert_eq!(
        observe(Some(&secret), "uid-1", CredentialType::AccessToken, &key),
        SecretState::Unreadable
    );
}

#[test]
fn fingerprint_depends_on_key_owner_and_data_boundaries() {
    let a = FingerprintKey::new(b"k1".to_vec());
    let b = FingerprintKey::new(b"k2".to_vec());
    let data = |k: &str, v: &str| CredentialData(BTreeMap::from([(k.into(), v.into())]));
    let record = RecordText::default();
    assert_ne!(
        a.fingerprint("u", &data("x", "1"), &record),
        b.fingerprint("u", &data("x", "1"), &record)
    );
    assert_ne!(
        a.fingerprint("u", &data("x", "1"), &record),
        a.fingerprint("v", &data("x", "1"), &record)
    );
    assert_ne!(
        a.fingerprint("u", &data("ab", "c"), &record),
        a.fingerprint("u", &data("a", "bc"), &record)
    );
    let later = RecordText {
        expires_at: "2099-01-01T00:00:00Z".into(),
        ..record.clone()
    };
    assert_ne!(
        a.fingerprint("u", &data("x", "1"), &record),
        a.fingerprint("u", &data("x", "1"), &later),
        "the record is covered too"
    );
}

#[test]
fn debug_output_never_shows_values() {
    let (data, _) = issued(1_800_000_000);
    let printed = format!("{data:?} {:?}", FingerprintKey::new(b"topsecret".to_vec()));
    assert!(!printed.contains("tok-secret-value"));
    assert!(!printed.contains("topsecret"));
}

#[test]
fn template_metadata_cannot_replace_the_managed_by_label() {
    let mut cr = credential();
    cr.spec.secret_template = Some(crate::api::SecretTemplate {
        labels: BTreeMap::from([(MANAGED_BY_LABEL.into(), "someone-else".into())]),
        annotations: BTreeMap::from([("team".into(), "blue".into())]),
        type_: None,
    });
    let (labels, annotations) = template_metadata(&cr);
    assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY_VALUE);
    assert_eq!(annotations["team"], "blue");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn annotation_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("2026-12-01T00:00:00Z".to_owned()),
            Just("+10000-01-01T00:00:00Z".to_owned()),
            Just(EXPIRY_NOT_REPORTED.to_owned()),
            Just("-1".to_owned()),
            Just("99999999999999999999".to_owned()),
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever someone wrote into a Secret, reading it back never panics, and it is only
        /// ever intact when it is exactly what the operator rendered.
        #[test]
        fn reading_any_secret_never_panics(
            issued in annotation_value(),
            expires in annotation_value(),
            revision in annotation_value(),
            fingerprint in annotation_value(),
            data in proptest::collection::btree_map(any::<String>(), any::<Vec<u8>>(), 0..4),
            owned in any::<bool>(),
        ) {
            let key = FingerprintKey::new(b"k".to_vec());
            let (rendered_data, meta) = issued_at_fixed();
            let mut secret = render(&credential(), "app", &rendered_data, &meta, &key);
            let annotations = secret.metadata.annotations.get_or_insert_default();
            annotations.insert(ISSUED_AT_ANNOTATION.into(), issued);
            annotations.insert(EXPIRES_AT_ANNOTATION.into(), expires);
            annotations.insert(REVISION_ANNOTATION.into(), revision);
            annotations.insert(FINGERPRINT_ANNOTATION.into(), fingerprint);
            secret.data = Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect());
            if !owned {
                secret.metadata.owner_references = None;
            }
            let state = observe(Some(&secret), "uid-1", CredentialType::AccessToken, &key);
            if let SecretState::Owned(record) = state {
                prop_assert!(!record.data_intact, "a forged fingerprint was accepted");
            }
        }
    }

    fn issued_at_fixed() -> (CredentialData, RecordMeta) {
        super::issued(1_800_000_000)
    }
}
