//! The handlers' parsing and answer shaping without HTTP: media types, generate bodies, SCIM
//! filters and the answers of injected faults.

use serde_json::{Value, json};

use super::injected::{malformed_success, oversized, set_field};
use super::scim::{SCIM_USERS, filtered_users};
use super::usergroup::{is_sync_client_media_type, parse_generate_body};
use super::{Endpoint, JSON, SYNC_CLIENT_MEDIA_TYPE, SimResponse};
use crate::state::{GenerateRequest, UsergroupError};

#[test]
fn media_type_check_allows_parameters_and_case() {
    assert!(is_sync_client_media_type(Some(SYNC_CLIENT_MEDIA_TYPE)));
    assert!(is_sync_client_media_type(Some(
        "Application/VND.vmware.vidm.usergroup.broker.directory.syncclientconfiguration+json; charset=utf-8"
    )));
    assert!(!is_sync_client_media_type(Some("application/json")));
    assert!(!is_sync_client_media_type(None));
}

#[test]
fn generate_body_fields_are_optional_and_typed() {
    assert_eq!(parse_generate_body(b""), Ok(GenerateRequest::default()));
    assert_eq!(parse_generate_body(b"{}"), Ok(GenerateRequest::default()));
    assert_eq!(
        parse_generate_body(br#"{"generate_token":false,"token_ttl":5,"client_secret":"x"}"#),
        Ok(GenerateRequest {
            generate_token: Some(false),
            token_ttl: Some(5)
        })
    );
    assert_eq!(
        parse_generate_body(br#"{"generate_token":null,"token_ttl":null}"#),
        Ok(GenerateRequest::default())
    );
    for invalid in [
        &br#"{"generate_token":"yes"}"#[..],
        br#"{"token_ttl":1.5}"#,
        br#"{"token_ttl":3000000000}"#,
        br"[1]",
        br"{not json",
    ] {
        assert_eq!(
            parse_generate_body(invalid),
            Err(UsergroupError::InvalidParameters)
        );
    }
}

#[test]
fn oversized_answers_keep_their_fields_and_stay_valid_json() {
    let real = SimResponse::json(200, SYNC_CLIENT_MEDIA_TYPE, &json!({"access_token": "t"}));
    let padded = oversized(real, 1000);
    assert!(padded.body.len() >= 1000);
    let body: Value = serde_json::from_slice(&padded.body).expect("valid JSON");
    assert_eq!(body["access_token"], "t");
    assert_eq!(padded.content_type.as_deref(), Some(SYNC_CLIENT_MEDIA_TYPE));
    let padded = oversized(SimResponse::empty(404), 10);
    assert_eq!(padded.status, 404);
    assert_eq!(padded.content_type.as_deref(), Some(JSON));
    assert!(serde_json::from_slice::<Value>(&padded.body).is_ok());
}

#[test]
fn set_field_replaces_or_removes_one_field_of_json_objects_only() {
    let real = || SimResponse::json(200, JSON, &json!({"a": 1, "b": 2}));
    let changed = set_field(real(), "a", Some("1e30"));
    let body: Value = serde_json::from_slice(&changed.body).expect("JSON");
    assert_eq!(body, json!({"a": 1e30, "b": 2}));
    let removed = set_field(real(), "b", None);
    let body: Value = serde_json::from_slice(&removed.body).expect("JSON");
    assert_eq!(body, json!({"a": 1}));
    let untouched = set_field(SimResponse::empty(401), "a", Some("null"));
    assert!(untouched.body.is_empty());
}

#[test]
fn scim_filters_select_users_by_user_name_ignoring_case() {
    assert_eq!(filtered_users(None).map(|users| users.len()), Ok(2));
    assert_eq!(
        filtered_users(Some("userName eq \"ALICE@example.com\"")),
        Ok(vec![SCIM_USERS[0]])
    );
    assert_eq!(
        filtered_users(Some("userName eq \"3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c\"")),
        Ok(Vec::new())
    );
    assert_eq!(
        filtered_users(Some("username EQ \"bob@example.com\"")).map(|users| users.len()),
        Ok(1)
    );
    for unsupported in [
        "userName co \"a\"",
        "displayName eq \"a\"",
        "userName eq a",
        "userName",
    ] {
        assert_eq!(filtered_users(Some(unsupported)), Err(()), "{unsupported}");
    }
}

#[test]
fn malformed_success_bodies_do_not_parse_as_json() {
    for endpoint in [
        Endpoint::Login,
        Endpoint::OperatorClientToken,
        Endpoint::Generate,
        Endpoint::ScimProbe,
        Endpoint::Unknown,
    ] {
        let response = malformed_success(endpoint);
        assert_eq!(response.status, 200);
        assert!(serde_json::from_slice::<Value>(&response.body).is_err());
    }
}
