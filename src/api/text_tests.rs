//! Names are shared, texts and histories compare by content whether held in full or as a
//! digest, and each serializes as the API server knows it (or as a marker when elided).

use chrono::DateTime;
use serde_json::json;

use super::text::{ELIDED, History, Name, SHORT_TEXT, Text, digest_of};
use super::{Condition, ConditionStatus, RotationRecord};

fn attempt(revision: i64, outcome: &'static str) -> RotationRecord {
    RotationRecord {
        time: DateTime::from_timestamp(1_800_000_000 + revision, 0).unwrap(),
        revision,
        trigger: "RenewalDue".into(),
        outcome: outcome.into(),
        fingerprint: Some(format!("sha256:{revision:012}")),
    }
}

fn long(text: &str) -> Text {
    Text::from(format!("{text}: {}", "a long explanation ".repeat(3)))
}

#[test]
fn names_read_from_the_api_server_share_one_copy() {
    let condition = json!({"type": "Ready", "status": "True", "reason": "CredentialCurrent",
        "message": "m", "lastTransitionTime": "2027-01-15T08:00:00Z"});
    let a: Condition = serde_json::from_value(condition.clone()).unwrap();
    let b: Condition = serde_json::from_value(condition).unwrap();
    assert_eq!(a.reason, "CredentialCurrent");
    assert!(
        std::ptr::eq(a.reason.as_str(), b.reason.as_str()),
        "one copy of the name for both"
    );
    assert!(std::ptr::eq(a.type_.as_str(), b.type_.as_str()));
    assert_eq!(Name::new("Ready"), Name::intern("Ready"));
    assert_eq!(
        serde_json::to_value(Name::intern("Ready")).unwrap(),
        "Ready"
    );
    assert_eq!(format!("{:?}", Name::new("Ready")), "\"Ready\"");
}

#[test]
fn a_long_name_is_still_a_name_without_being_interned() {
    let long_name = "N".repeat(500);
    let name = Name::intern(&long_name);
    assert_eq!(name, long_name);
    assert!(!std::ptr::eq(
        name.as_str(),
        Name::intern(&long_name).as_str()
    ));
}

#[test]
fn an_elided_text_equals_the_text_it_stands_for_and_nothing_else() {
    let full = long("the broker refused");
    let mut elided = full.clone();
    elided.elide();
    assert!(elided.is_elided());
    assert_eq!(elided, full);
    assert_eq!(full, elided);
    assert_eq!(elided, *full.as_full().unwrap());
    assert_ne!(elided, long("the broker accepted"));
    assert_eq!(&*elided, "", "an elided text reads as empty");
    assert_eq!(elided.as_full(), None);
    let marker = serde_json::to_value(&elided).unwrap();
    let digest = marker[ELIDED].as_u64().unwrap();
    assert_eq!(digest, digest_of(&serde_json::to_value(&full).unwrap()));
}

#[test]
fn short_texts_are_kept() {
    for text in ["Valid", "Revoked", &"x".repeat(SHORT_TEXT)] {
        let mut kept = Text::from(text);
        kept.elide();
        assert_eq!(kept.as_full(), Some(text));
    }
}

#[test]
fn a_text_built_on_an_elided_one_is_unknown() {
    let mut last = long("the broker refused");
    let built = last.map(|l| format!("not valid; {l}"));
    assert!(
        built
            .as_full()
            .unwrap()
            .starts_with("not valid; the broker refused")
    );
    last.elide();
    let unknown = last.map(|l| format!("not valid; {l}"));
    assert!(unknown.is_elided());
    assert_ne!(unknown, built);
    assert_eq!(
        serde_json::to_value(&unknown).unwrap(),
        json!({ELIDED: null}),
        "an unknown text serializes as a marker without a digest"
    );
}

#[test]
fn an_elided_history_keeps_the_attempts_asked_for_and_equals_the_whole() {
    let whole: Vec<RotationRecord> = (1..=10)
        .rev()
        .map(|r| {
            attempt(
                r,
                if r == 4 {
                    "RotationStateUnknown"
                } else {
                    "Issued"
                },
            )
        })
        .collect();
    let full = History::from(whole.clone());
    let mut elided = full.clone();
    elided.elide(|a| a.outcome == "RotationStateUnknown");
    assert!(elided.is_elided());
    assert_eq!(elided.len(), 1);
    assert_eq!(elided[0].revision, 4);
    assert_eq!(elided, full);
    assert_ne!(elided, History::from(whole[1..].to_vec()));
    assert_eq!(
        serde_json::to_value(&full).unwrap(),
        serde_json::to_value(&whole).unwrap(),
        "a full history is the array the API server holds"
    );
}

#[test]
fn recording_on_an_elided_history_makes_the_whole_unknown() {
    let mut full = History::from(vec![attempt(1, "Issued")]);
    let mut elided = full.clone();
    elided.elide(|_| false);
    full.record(attempt(2, "Issued"), 10);
    elided.record(attempt(2, "Issued"), 10);
    assert_eq!(full.len(), 2);
    assert_ne!(elided, full);
    assert_eq!(
        serde_json::to_value(&elided).unwrap(),
        json!({ELIDED: null})
    );
}

#[test]
fn the_history_is_bounded_newest_first() {
    let mut history = History::default();
    for revision in 1..=12 {
        history.record(attempt(revision, "Issued"), 10);
    }
    let revisions: Vec<i64> = history.iter().map(|a| a.revision).collect();
    assert_eq!(revisions, (3..=12).rev().collect::<Vec<_>>());
}

#[test]
fn conditions_read_back_as_written() {
    let condition = Condition {
        type_: "Ready".into(),
        status: ConditionStatus::False,
        reason: Name::intern("BrokerUnavailable"),
        message: long("scheduled rotation failed"),
        last_transition_time: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        observed_generation: Some(3),
    };
    let json = serde_json::to_value(&condition).unwrap();
    assert_eq!(json["message"], *condition.message.as_full().unwrap());
    let back: Condition = serde_json::from_value(json).unwrap();
    assert_eq!(back, condition);
}
