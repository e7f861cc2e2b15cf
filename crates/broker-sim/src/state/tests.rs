//! Every transition of the state at a given instant: sessions, broker tokens, generates,
//! reads, probes and the documented errors.

use super::*;

const DIRECTORY: &str = "3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c";

fn state_with(config: &BrokerSimConfig) -> SimState {
    let mut state = SimState::new(config);
    state.add_directory(
        DIRECTORY,
        SyncClients::One {
            generate_token: true,
            token_ttl: 10,
        },
    );
    state
}

fn fast_state() -> SimState {
    state_with(&BrokerSimConfig {
        ttl_unit: Duration::from_secs(1),
        ..BrokerSimConfig::default()
    })
}

fn broker_token(state: &mut SimState, now: Instant) -> String {
    let session = state
        .login("administrator@vsphere.local", "broker-sim-Passw0rd!", now)
        .expect("default credentials log in");
    state
        .issue_broker_token(Some(&session), BrokerClient::OperatorClient, now)
        .expect("token issued")
        .access_token
}

fn generate(state: &mut SimState, request: GenerateRequest, now: Instant) -> SyncClientView {
    state
        .generate_credentials("CUSTOMER", DIRECTORY, request, now)
        .expect("generate succeeds")
}

#[test]
fn login_rejects_a_wrong_password() {
    let mut state = fast_state();
    assert!(
        state
            .login("administrator@vsphere.local", "wrong", Instant::now())
            .is_none()
    );
}

#[test]
fn sessions_expire_after_being_idle_and_use_refreshes_them() {
    let mut state = state_with(&BrokerSimConfig {
        session_idle_timeout: Duration::from_secs(10),
        ..BrokerSimConfig::default()
    });
    let start = Instant::now();
    let session = state
        .login("administrator@vsphere.local", "broker-sim-Passw0rd!", start)
        .expect("logged in");
    let later = start + Duration::from_secs(8);
    assert_eq!(state.use_session(Some(&session), later), Ok(()));
    assert_eq!(
        state.use_session(Some(&session), later + Duration::from_secs(9)),
        Ok(())
    );
    assert_eq!(
        state.use_session(Some(&session), later + Duration::from_secs(30)),
        Err(SessionError::Unauthenticated)
    );
}

#[test]
fn broker_token_needs_the_privilege_and_a_known_tenant() {
    let mut state = fast_state();
    let now = Instant::now();
    let session = state
        .login("administrator@vsphere.local", "broker-sim-Passw0rd!", now)
        .expect("logged in");
    let unknown = BrokerClient::AdminClient {
        tenant: "customer".to_owned(),
    };
    assert_eq!(
        state
            .issue_broker_token(Some(&session), unknown, now)
            .map(|_| ())
            .unwrap_err(),
        BrokerTokenError::UnknownTenant
    );
    state.set_privilege(false);
    assert_eq!(
        state
            .issue_broker_token(Some(&session), BrokerClient::OperatorClient, now)
            .map(|_| ())
            .unwrap_err(),
        BrokerTokenError::Unauthorized
    );
    assert_eq!(
        state
            .issue_broker_token(None, BrokerClient::OperatorClient, now)
            .map(|_| ())
            .unwrap_err(),
        BrokerTokenError::Unauthenticated
    );
}

#[test]
fn broker_tokens_expire_after_expires_in_seconds() {
    let mut state = state_with(&BrokerSimConfig {
        broker_token_expires_in: ExpiresIn::Seconds(5),
        ..BrokerSimConfig::default()
    });
    let now = Instant::now();
    let token = broker_token(&mut state, now);
    assert_eq!(
        state.authorize_usergroup(Some(&token), "CUSTOMER", now + Duration::from_secs(4)),
        Ok(())
    );
    assert_eq!(
        state.authorize_usergroup(Some(&token), "CUSTOMER", now + Duration::from_secs(5)),
        Err(UsergroupError::Unauthorized)
    );
}

#[test]
fn admin_client_token_opens_only_its_own_tenant() {
    let mut state = fast_state();
    let now = Instant::now();
    let session = state
        .login("administrator@vsphere.local", "broker-sim-Passw0rd!", now)
        .expect("logged in");
    let admin = BrokerClient::AdminClient {
        tenant: "CUSTOMER".to_owned(),
    };
    let token = state
        .issue_broker_token(Some(&session), admin, now)
        .expect("issued")
        .access_token;
    assert_eq!(
        state.authorize_usergroup(Some(&token), "CUSTOMER", now),
        Ok(())
    );
    assert_eq!(
        state.authorize_usergroup(Some(&token), "OTHER", now),
        Err(UsergroupError::Unauthorized)
    );
}

#[test]
fn operator_token_is_refused_when_only_admin_tokens_are_accepted() {
    let mut state = state_with(&BrokerSimConfig {
        accepted_broker_tokens: AcceptedBrokerTokens::AdminClientOnly,
        ..BrokerSimConfig::default()
    });
    let now = Instant::now();
    let token = broker_token(&mut state, now);
    assert_eq!(
        state.authorize_usergroup(Some(&token), "CUSTOMER", now),
        Err(UsergroupError::Unauthorized)
    );
}

#[test]
fn every_generate_revokes_the_previous_token_at_once() {
    let mut state = fast_state();
    let now = Instant::now();
    let first = generate(&mut state, GenerateRequest::default(), now)
        .access_token
        .expect("token mode");
    assert!(state.token_is_valid(&first, now));
    let second = generate(&mut state, GenerateRequest::default(), now)
        .access_token
        .expect("token mode");
    assert_ne!(first, second);
    assert!(!state.token_is_valid(&first, now));
    assert!(state.token_is_valid(&second, now));
    assert_eq!(state.generate_count(DIRECTORY), 2);
}

#[test]
fn generated_token_lives_token_ttl_times_the_ttl_unit() {
    let mut state = fast_state();
    let now = Instant::now();
    let view = generate(
        &mut state,
        GenerateRequest {
            generate_token: None,
            token_ttl: Some(3),
        },
        now,
    );
    assert_eq!(view.access_token_expire_in, Some(3));
    assert_eq!(view.token_ttl, 3);
    let token = view.access_token.expect("token mode");
    assert!(state.token_is_valid(&token, now + Duration::from_millis(2_900)));
    assert!(!state.token_is_valid(&token, now + Duration::from_secs(3)));
    assert_eq!(
        state.current_token(DIRECTORY, now + Duration::from_secs(3)),
        None
    );
}

#[test]
fn omitted_settings_reuse_the_saved_ones() {
    let mut state = fast_state();
    let now = Instant::now();
    generate(
        &mut state,
        GenerateRequest {
            generate_token: Some(false),
            token_ttl: Some(7),
        },
        now,
    );
    let view = generate(&mut state, GenerateRequest::default(), now);
    assert!(!view.generate_token);
    assert_eq!(view.token_ttl, 7);
    assert!(view.client_secret.is_some());
    assert!(view.access_token.is_none());
}

#[test]
fn switching_to_client_secret_revokes_the_token_and_vice_versa() {
    let mut state = fast_state();
    let now = Instant::now();
    let token = generate(&mut state, GenerateRequest::default(), now)
        .access_token
        .expect("token mode");
    let secret_mode = GenerateRequest {
        generate_token: Some(false),
        token_ttl: None,
    };
    let secret = generate(&mut state, secret_mode, now)
        .client_secret
        .expect("secret mode");
    assert!(!state.token_is_valid(&token, now));
    assert_eq!(
        state.current_client_secret(DIRECTORY),
        Some((format!("sync-client-{DIRECTORY}"), secret))
    );
    let token_mode = GenerateRequest {
        generate_token: Some(true),
        token_ttl: None,
    };
    generate(&mut state, token_mode, now);
    assert_eq!(state.current_client_secret(DIRECTORY), None);
}

#[test]
fn directory_errors_follow_the_documented_statuses() {
    let mut state = fast_state();
    let now = Instant::now();
    state.add_directory("empty", SyncClients::None);
    state.add_directory("double", SyncClients::Two);
    let outcome = |state: &mut SimState, tenant: &str, id: &str| {
        state
            .generate_credentials(tenant, id, GenerateRequest::default(), now)
            .map(|_| ())
            .unwrap_err()
    };
    assert_eq!(
        outcome(&mut state, "CUSTOMER", "unknown"),
        UsergroupError::NotFound
    );
    assert_eq!(
        outcome(&mut state, "CUSTOMER", "empty"),
        UsergroupError::NotFound
    );
    assert_eq!(
        outcome(&mut state, "CUSTOMER", "double"),
        UsergroupError::Conflict
    );
    assert_eq!(
        outcome(&mut state, "OTHER", DIRECTORY),
        UsergroupError::NotFound
    );
    state.set_directory_access(DIRECTORY, false);
    assert_eq!(
        outcome(&mut state, "CUSTOMER", DIRECTORY),
        UsergroupError::Forbidden
    );
    state.set_directory_access(DIRECTORY, true);
    state.set_usergroup_access(false);
    assert_eq!(
        outcome(&mut state, "CUSTOMER", "double"),
        UsergroupError::Forbidden
    );
    assert_eq!(state.generate_count(DIRECTORY), 0);
}

#[test]
fn out_of_band_generate_revokes_the_live_token_and_keeps_the_settings() {
    let mut state = fast_state();
    let now = Instant::now();
    let old = generate(&mut state, GenerateRequest::default(), now)
        .access_token
        .expect("token mode");
    let new = state
        .generate_out_of_band(DIRECTORY, now)
        .expect("one sync client");
    assert_ne!(old, new);
    assert!(!state.token_is_valid(&old, now));
    assert_eq!(state.current_token(DIRECTORY, now), Some(new));
    assert_eq!(state.generate_count(DIRECTORY), 2);
    assert_eq!(state.generate_out_of_band("unknown", now), None);
    state.add_directory("double", SyncClients::Two);
    assert_eq!(state.generate_out_of_band("double", now), None);
}

#[test]
fn open_sessions_counts_live_sessions_only() {
    let mut state = state_with(&BrokerSimConfig {
        session_idle_timeout: Duration::from_secs(10),
        ..BrokerSimConfig::default()
    });
    let start = Instant::now();
    let first = state
        .login("administrator@vsphere.local", "broker-sim-Passw0rd!", start)
        .expect("logged in");
    state
        .login("administrator@vsphere.local", "broker-sim-Passw0rd!", start)
        .expect("logged in");
    assert_eq!(state.open_sessions(start), 2);
    state.logout(Some(&first), start).expect("logged out");
    assert_eq!(state.open_sessions(start), 1);
    assert_eq!(state.open_sessions(start + Duration::from_secs(10)), 0);
}

#[test]
fn non_positive_token_ttl_is_an_invalid_parameter() {
    let mut state = fast_state();
    let request = GenerateRequest {
        generate_token: None,
        token_ttl: Some(0),
    };
    assert_eq!(
        state
            .generate_credentials("CUSTOMER", DIRECTORY, request, Instant::now())
            .map(|_| ())
            .unwrap_err(),
        UsergroupError::InvalidParameters
    );
}

#[test]
fn read_reports_the_remaining_lifetime_without_credentials() {
    let mut state = fast_state();
    let now = Instant::now();
    let before = state
        .read_sync_client("CUSTOMER", DIRECTORY, now)
        .expect("readable");
    assert_eq!(before.access_token_expire_in, None);
    generate(&mut state, GenerateRequest::default(), now);
    let after = state
        .read_sync_client("CUSTOMER", DIRECTORY, now + Duration::from_secs(4))
        .expect("readable");
    assert_eq!(after.access_token_expire_in, Some(6));
    assert_eq!(after.access_token, None);
    assert_eq!(after.client_secret, None);
}

#[test]
fn probe_accepts_only_the_live_token_of_the_tenant() {
    let mut state = fast_state();
    let now = Instant::now();
    let token = generate(&mut state, GenerateRequest::default(), now)
        .access_token
        .expect("token mode");
    assert_eq!(state.probe(Some(&token), "CUSTOMER", now), Ok(()));
    assert_eq!(
        state.probe(Some(&token), "OTHER", now),
        Err(ProbeError::UnknownTenant)
    );
    assert_eq!(
        state.probe(Some("not-a-token"), "CUSTOMER", now),
        Err(ProbeError::Unauthorized)
    );
    let broker = broker_token(&mut state, now);
    assert_eq!(
        state.probe(Some(&broker), "CUSTOMER", now),
        Err(ProbeError::Unauthorized)
    );
}
