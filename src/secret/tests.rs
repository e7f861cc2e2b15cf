//! The Secret record: round trip, tamper detection, ownership, key rotation, 0.1.0's records and
//! redaction.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::*;
use crate::api::{BrokerRef, SecretKeys, SyncClientCredential, SyncClientCredentialSpec};
use crate::planner::{Expiry, Record, SecretState};

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
            deliveries: vec![],
        },
    );
    cr.metadata.namespace = Some("team".into());
    cr.metadata.uid = Some("uid-1".into());
    cr
}

fn keys(bytes: &[u8]) -> FingerprintKeys {
    FingerprintKey::new(bytes.to_vec()).into()
}

fn issued(cr: &SyncClientCredential, at: i64) -> (CredentialData, RecordMeta) {
    let issued_at = DateTime::from_timestamp(at, 0).unwrap();
    let expires_at = issued_at + chrono::TimeDelta::hours(1);
    let names = KeyNames::from_spec(cr.spec.keys.as_ref());
    let data = credential_data(
        &names,
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
        spec_hash: crate::api::spec_hash(cr),
        rotate_request: None,
        credential_type: CredentialType::AccessToken,
        keys: names,
        issue_id: "0123456789abcdef".into(),
    };
    (data, record)
}

fn rendered(cr: &SyncClientCredential, keys: &FingerprintKeys) -> (Secret, RecordMeta) {
    let (data, meta) = issued(cr, 1_800_000_000);
    (render(cr, "app", &data, &meta, keys), meta)
}

fn owned_record(state: SecretState) -> Record {
    match state {
        SecretState::Owned(record) => record,
        other => panic!("expected an owned record, got {other:?}"),
    }
}

#[test]
fn rendered_secret_reads_back_as_an_intact_current_record() {
    let cr = credential();
    let key = keys(b"k");
    let (secret, meta) = rendered(&cr, &key);
    let state = observe(Some(&secret), &Expected::of(&cr), &key);
    assert_eq!(
        state,
        SecretState::Owned(Record {
            issued_at: meta.issued_at,
            expiry: Expiry::At(meta.expires_at.unwrap()),
            revision: 4,
            spec_hash: Some(crate::api::spec_hash(&cr)),
            data_intact: true,
            layout_current: true,
            fingerprint_current: true,
        })
    );
    let data_keys: Vec<_> = secret.data.as_ref().unwrap().keys().cloned().collect();
    assert_eq!(data_keys, ["access_token", "expires_at", "scim_url"]);
    assert_eq!(
        secret.annotations()[DATA_KEYS_ANNOTATION],
        "accessToken=access_token,expiresAt=expires_at,scimUrl=scim_url"
    );
    assert!(secret.annotations()[FINGERPRINT_ANNOTATION].starts_with("v3:"));
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

type Edit = (&'static str, fn(&mut Secret));

#[test]
fn edited_data_or_record_is_detected_as_tampered() {
    let cr = credential();
    let key = keys(b"k");
    let edits: [Edit; 4] = [
        ("the token", |s| {
            s.data
                .as_mut()
                .unwrap()
                .insert("access_token".into(), ByteString(b"edited".to_vec()));
        }),
        ("the expiry", |s| {
            s.metadata
                .annotations
                .as_mut()
                .unwrap()
                .insert(EXPIRES_AT_ANNOTATION.into(), "2099-01-01T00:00:00Z".into());
        }),
        ("the recorded data keys", |s| {
            s.metadata.annotations.as_mut().unwrap().insert(
                DATA_KEYS_ANNOTATION.into(),
                "accessToken=scim_url,expiresAt=expires_at,scimUrl=access_token".into(),
            );
        }),
        ("a value the recorded keys need", |s| {
            s.data.as_mut().unwrap().remove("scim_url");
        }),
    ];
    for (what, edit) in edits {
        let (mut secret, _) = rendered(&cr, &key);
        edit(&mut secret);
        let record = owned_record(observe(Some(&secret), &Expected::of(&cr), &key));
        assert!(!record.data_intact, "editing {what} is noticed");
    }
}

#[test]
fn secret_of_another_owner_is_not_ours_and_no_secret_is_missing() {
    let cr = credential();
    let key = keys(b"k");
    let (secret, _) = rendered(&cr, &key);
    let mut other = cr.clone();
    other.metadata.uid = Some("uid-2".into());
    assert_eq!(
        observe(Some(&secret), &Expected::of(&other), &key),
        SecretState::NotOwned
    );
    assert_eq!(
        observe(None, &Expected::of(&cr), &key),
        SecretState::Missing
    );
}

#[test]
fn missing_record_annotations_make_the_secret_unreadable() {
    let cr = credential();
    let key = keys(b"k");
    let (mut secret, _) = rendered(&cr, &key);
    secret
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(REVISION_ANNOTATION);
    assert_eq!(
        observe(Some(&secret), &Expected::of(&cr), &key),
        SecretState::Unreadable
    );
}

/// Renaming the Secret's keys, its name or the TTL, or spelling the spec differently, keeps the
/// identity: the credential is rewritten, not re-issued. The broker, directory and type do not.
#[test]
fn only_the_broker_directory_and_type_make_another_identity() {
    let cr = credential();
    let same = |f: fn(&mut SyncClientCredential)| {
        let mut other = cr.clone();
        f(&mut other);
        crate::api::spec_hash(&other) == crate::api::spec_hash(&cr)
    };
    assert!(same(|c| c.spec.token_ttl = Some("43200m".into())));
    assert!(same(|c| c.spec.secret_name = Some("app".into())));
    assert!(same(|c| c.spec.keys = Some(SecretKeys::default())));
    assert!(same(
        |c| c.spec.directory_id = c.spec.directory_id.to_uppercase()
    ));
    assert!(same(|c| c.spec.renew_before = Some("24h".into())));
    assert!(!same(|c| c.spec.broker_ref.name = "other".into()));
    assert!(!same(
        |c| c.spec.directory_id = "1b2c3d4e-0000-4000-8000-000000000002".into()
    ));
    assert!(!same(
        |c| c.spec.credential_type = CredentialType::ClientSecret
    ));
}

#[test]
fn renamed_keys_leave_the_record_intact_but_not_current() {
    let cr = credential();
    let key = keys(b"k");
    let (secret, meta) = rendered(&cr, &key);
    let mut renamed = cr.clone();
    renamed.spec.keys = Some(SecretKeys {
        access_token: Some("token".into()),
        ..SecretKeys::default()
    });
    let expected = Expected::of(&renamed);
    let record = owned_record(observe(Some(&secret), &expected, &key));
    assert!(record.data_intact && !record.layout_current);
    assert_eq!(
        record.spec_hash.as_deref(),
        Some(expected.spec_hash.as_str())
    );
    let (moved, values) = held_record(&secret, &expected, &record).unwrap();
    assert_eq!(
        moved.issue_id, meta.issue_id,
        "the same issue, written again"
    );
    let data = values.data(&moved.keys);
    assert_eq!(data.get("token"), Some("tok-secret-value"));
    assert_eq!(data.get("access_token"), None);
    assert_eq!(data.get("expires_at"), Some("2027-01-15T09:00:00Z"));
}

#[test]
fn a_previous_key_is_accepted_and_asks_for_a_new_fingerprint() {
    let cr = credential();
    let old = keys(b"old");
    let (secret, _) = rendered(&cr, &old);
    let rotated = FingerprintKeys::from(FingerprintKey::new(b"new".to_vec()))
        .with_previous(FingerprintKey::new(b"old".to_vec()));
    let record = owned_record(observe(Some(&secret), &Expected::of(&cr), &rotated));
    assert!(record.data_intact && record.layout_current && !record.fingerprint_current);
    let forgotten = keys(b"new");
    let record = owned_record(observe(Some(&secret), &Expected::of(&cr), &forgotten));
    assert!(
        !record.data_intact,
        "a key no longer in the ring is not trusted"
    );
}

#[test]
fn fingerprint_depends_on_key_owner_data_boundaries_and_every_record_field() {
    let a = keys(b"k1");
    let b = keys(b"k2");
    let data = |k: &str, v: &str| CredentialData(BTreeMap::from([(k.into(), v.into())]));
    let record = RecordText::default();
    assert_ne!(
        a.sign("u", &data("x", "1"), &record),
        b.sign("u", &data("x", "1"), &record)
    );
    assert_ne!(
        a.sign("u", &data("x", "1"), &record),
        a.sign("v", &data("x", "1"), &record)
    );
    assert_ne!(
        a.sign("u", &data("ab", "c"), &record),
        a.sign("u", &data("a", "bc"), &record)
    );
    for field in 0..7 {
        let mut changed = record.clone();
        let slot = match field {
            0 => &mut changed.issued_at,
            1 => &mut changed.expires_at,
            2 => &mut changed.revision,
            3 => &mut changed.spec_hash,
            4 => &mut changed.rotate_request,
            5 => &mut changed.data_keys,
            _ => &mut changed.issue_id,
        };
        *slot = "changed".into();
        assert_ne!(
            a.sign("u", &data("x", "1"), &record),
            a.sign("u", &data("x", "1"), &changed),
            "record field {field} is covered"
        );
    }
}

#[test]
fn debug_output_never_shows_values() {
    let cr = credential();
    let (data, _) = issued(&cr, 1_800_000_000);
    let key = FingerprintKey::new(b"topsecret".to_vec());
    let held = HeldValues::read(
        &data,
        &KeyNames::from_spec(None),
        CredentialType::AccessToken,
    );
    let printed = format!(
        "{data:?} {key:?} {:?} {held:?}",
        FingerprintKeys::from(key.clone())
    );
    assert!(!printed.contains("tok-secret-value"), "{printed}");
    assert!(!printed.contains("topsecret"), "{printed}");
    let history = keys(b"topsecret").short_mac("tok-secret-value");
    assert!(
        history.starts_with("hmac-sha256:") && history.len() == 24,
        "{history}"
    );
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

/// What release 0.1.0 wrote (`tests/fixtures/upgrade-0.1.0`, captured by 0.1.0 itself) is read
/// as intact, issued for the spec it was issued for, in the right data keys, and due for a new
/// fingerprint only: taking it over mints nothing.
#[test]
fn secrets_written_by_0_1_0_are_taken_over_as_they_are() {
    let fixture = include_str!("../../tests/fixtures/upgrade-0.1.0/state.yaml");
    let objects: Vec<serde_json::Value> = fixture
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect();
    let builtin = keys(b"sync-client-operator/fingerprint/v1");
    let mut checked = 0;
    for object in objects.iter().filter(|o| o["kind"] == "Secret") {
        let Some(owner) = object["metadata"]["ownerReferences"][0]["uid"].as_str() else {
            continue;
        };
        let cr: SyncClientCredential = serde_json::from_value(
            objects
                .iter()
                .find(|o| o["metadata"]["uid"] == owner)
                .unwrap()
                .clone(),
        )
        .unwrap();
        let secret: Secret = serde_json::from_value(object.clone()).unwrap();
        assert_eq!(
            secret.annotations()[SPEC_HASH_ANNOTATION],
            crate::api::legacy_spec_hash(&cr),
            "0.1.0's identity hash is computed as 0.1.0 did"
        );
        let record = owned_record(observe(Some(&secret), &Expected::of(&cr), &builtin));
        assert!(record.data_intact, "{}", cr.name_any());
        assert!(record.layout_current, "{}", cr.name_any());
        assert!(!record.fingerprint_current, "{}", cr.name_any());
        assert_eq!(record.spec_hash, Some(crate::api::spec_hash(&cr)));
        assert!(held_record(&secret, &Expected::of(&cr), &record).is_some());
        checked += 1;
    }
    assert_eq!(checked, 4, "every Secret 0.1.0 wrote");
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
            Just("v3:00000000:00".to_owned()),
            Just("v2:00".to_owned()),
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
            data_keys in annotation_value(),
            data in proptest::collection::btree_map(any::<String>(), any::<Vec<u8>>(), 0..4),
            owned in any::<bool>(),
        ) {
            let cr = credential();
            let key = keys(b"k");
            let (mut secret, _) = rendered(&cr, &key);
            let annotations = secret.metadata.annotations.get_or_insert_default();
            annotations.insert(ISSUED_AT_ANNOTATION.into(), issued);
            annotations.insert(EXPIRES_AT_ANNOTATION.into(), expires);
            annotations.insert(REVISION_ANNOTATION.into(), revision);
            annotations.insert(FINGERPRINT_ANNOTATION.into(), fingerprint);
            annotations.insert(DATA_KEYS_ANNOTATION.into(), data_keys);
            secret.data = Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect());
            if !owned {
                secret.metadata.owner_references = None;
            }
            let state = observe(Some(&secret), &Expected::of(&cr), &key);
            if let SecretState::Owned(record) = state {
                prop_assert!(!record.data_intact, "a forged fingerprint was accepted");
            }
        }
    }
}
