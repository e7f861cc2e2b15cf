//! `docs/reliability.md`: the fault matrix as a table, written by the fault tests themselves.
//!
//! Every case of [`CASES`] is its own test (in `faults.rs`); each renders its row from what it
//! measured and compares it with the committed row, so the document cannot drift from the
//! behaviour. `UPDATE_RELIABILITY=1 cargo test --test e2e faults::` rewrites the rows instead
//! (like `make generate` for the CRDs). Only counts go into the file, and each is exact: every
//! case consumes its fault a fixed number of times and its retries are spaced by the operator's
//! backoff (at least 3.75 s), so no count depends on timing (checked by repeated runs with up to
//! eight cases at once). Should one ever have to, its test would assert a bound and the table
//! show it as `≤ n`. Times to recovery vary: the tests print them, the file does not hold them.

use std::path::PathBuf;
use std::sync::Mutex;

/// Every case of the fault matrix, in table order: id and the fault as injected.
pub const CASES: &[(&str, &str)] = &[
    (
        "generate-503",
        "broker: generate answers 503 with an empty body, once",
    ),
    (
        "generate-429-retry-after",
        "broker: generate answers 429 with `Retry-After: 8`, once",
    ),
    (
        "generate-html-error-page",
        "broker: a proxy answers generate with a 502 HTML page, once (not processed, but a 502 may follow a rotation)",
    ),
    (
        "generate-dropped-connection",
        "broker: the connection closes before generate is answered (not processed), once",
    ),
    (
        "generate-reset-mid-body",
        "broker: generate rotates, then the connection breaks in the middle of the body, once",
    ),
    (
        "generate-slow-body",
        "broker: generate rotates, then its body trickles over 5 s (request timeout 2 s), once",
    ),
    (
        "generate-malformed-body",
        "broker: generate rotates, then answers 200 with truncated JSON, once",
    ),
    (
        "generate-oversized-body",
        "broker: generate rotates, then answers 200 with 5 MiB of JSON, once",
    ),
    (
        "generate-wrong-content-type",
        "broker: generate rotates and answers its real body as `text/plain`, once",
    ),
    (
        "generate-html-after-rotation",
        "broker: generate rotates, then a proxy answers a 502 HTML page instead, once",
    ),
    (
        "generate-expired-on-arrival",
        "broker: generate rotates and reports `access_token_expire_in: -5`, once",
    ),
    (
        "generate-403",
        "broker: generate answers 403 (vAPI `UNAUTHORIZED`) once; permanent, so it waits for a new rotate request",
    ),
    (
        "broker-token-expired",
        "broker: every cached broker token is invalidated mid-run, then a rotation is requested",
    ),
    (
        "session-expired",
        "broker: vCenter sessions and broker tokens end mid-run, then a rotation is requested",
    ),
    (
        "session-expired-login-503",
        "broker: as `session-expired`, and the new login answers 503 once",
    ),
    (
        "tls-certificate-rotated",
        "broker: the server certificate changes to a new CA mid-run; the broker's caBundle is updated after the first failure",
    ),
    (
        "kube-offline-30s",
        "Kubernetes: the API server is unreachable for 30 s while a renewal falls due",
    ),
    (
        "kube-watches-dropped",
        "Kubernetes: every watch connection breaks, then a rotation is requested",
    ),
    (
        "kube-watch-history-expired",
        "Kubernetes: watch history expires (410 Gone on re-watch) and watches break, then a rotation is requested",
    ),
    (
        "kube-409-every-secret-write",
        "Kubernetes: every real Secret write (not the dry run before the generate) answers 409 Conflict while a requested rotation is stored, until cleared",
    ),
    (
        "kube-500-secret-write",
        "Kubernetes: the real Secret write answers 500 twice (dry runs pass)",
    ),
    (
        "kube-422-secret-create",
        "Kubernetes: creating the Secret answers 422 Invalid (dry run included), until cleared",
    ),
    (
        "kube-quota-secret-create",
        "Kubernetes: creating the Secret answers 403 exceeded quota (dry run included), until cleared",
    ),
    (
        "kube-status-write-500",
        "Kubernetes: the credential's status patch answers 500 twice (the issue's history entry is carried into the next write)",
    ),
    (
        "kube-status-write-500-after-rotate-request",
        "Kubernetes: the status patch recording a served rotate request answers 500 twice (the Secret's record says it was served: no second issue)",
    ),
    (
        "kube-secret-read-500",
        "Kubernetes: reading the Secret answers 500 three times",
    ),
    (
        "kube-slow-api",
        "Kubernetes: every API request is delayed 700 ms",
    ),
];

/// The never-hurt scenarios (`never_hurt.rs`, `fencing.rs`), in table order: id, what happens,
/// and what the operator does about it (what the test asserts besides the count).
pub const NEVER_HURT: &[(&str, &str, &str)] = &[
    (
        "edit-ttl-spelling",
        "`tokenTTL: 720h` rewritten as `43200m`",
        "nothing; the Secret keeps the live token",
    ),
    (
        "edit-default-secret-name",
        "the default `secretName` written out",
        "nothing",
    ),
    ("edit-empty-keys", "`keys: {}` added", "nothing"),
    (
        "edit-directory-case",
        "the directory id written in upper case",
        "nothing",
    ),
    (
        "edit-renew-before",
        "`renewBeforePercentage` changed",
        "re-plans the renewal",
    ),
    (
        "secret-renamed",
        "`secretName` changed",
        "writes the credential held into the new Secret (the old one keeps its owner reference)",
    ),
    (
        "key-renamed",
        "`keys.accessToken` renamed",
        "rewrites the Secret under the new key",
    ),
    (
        "template-changed",
        "`secretTemplate` labels changed",
        "patches the Secret's metadata",
    ),
    (
        "fingerprint-key-rotated",
        "the fingerprint key replaced, the old one kept as previous",
        "fingerprints every Secret again with the new key",
    ),
    (
        "renewal-refused-403",
        "the renewal answered 403 once",
        "shows `PermissionDenied` with `renewalDueTime`, retries on the slow backoff before the expiry (the retry mints)",
    ),
    (
        "renewal-refused-404",
        "the renewal answered 404 (sync client not found) once",
        "shows `SyncClientNotFound` with `renewalDueTime`, retries on the slow backoff before the expiry (the retry mints)",
    ),
    (
        "expired-while-failing",
        "the stored token expires while every renewal fails",
        "`Ready` False at the expiry",
    ),
    (
        "late-generate",
        "a generate answered after the request timeout lands later and revokes the retry's token",
        "probes once the late request can no longer land and replaces the revoked token (the late one, the retry, the replacement)",
    ),
    (
        "probe-refuses-every-token",
        "the SCIM probe answers 401 for every token, the first one included",
        "keeps the token: verification unavailable, `Ready` stays True",
    ),
    (
        "deposed-leader",
        "two replicas; only the leader's Lease writes fail",
        "the old leader counts itself deposed before the standby takes the lease and mints nothing after",
    ),
    (
        "sigterm-slow-chain",
        "SIGTERM while the first issue's generate is in flight and slow (50 s)",
        "finishes the chain and stores the credential before it exits",
    ),
];

const DOC: &str = "docs/reliability.md";

const PRELUDE: &str = "\
# Reliability: faults and what the operator does

Generated by the fault tests in `tests/e2e/faults.rs`; do not edit by hand. Each row is one test:
the real operator binary against the Kubernetes API simulator and the broker simulator, with one
fault injected. A test fails when its row here differs from what a fresh run measured; regenerate
with `UPDATE_RELIABILITY=1 cargo test --test e2e faults::`.

- **Attempts**: the credential's status history, oldest first, as `trigger: outcome`; a retry that
  repeats the same attempt is shown once (how often it repeats depends on timing).
- **Ready**: the final `Ready` condition reason.
- **Generate calls**: `generate_credentials` requests the broker received, faulted ones
  included (every one the broker handled revoked the live token).
- **Broker calls**: every request the broker received (login, broker token, generate, reads,
  probes; the first token through a broker is probed once, 2 s after its issue, to learn whether
  the broker's probe can be believed). Counts are exact, taken after a 3 s quiet window at the
  end.
- In every case no owned Secret was deleted or emptied: a watch on them runs through the whole
  test and the API server's request log holds no Secret deletion by the operator. Where the final
  reason is `CredentialCurrent`, the Secret holds the broker's current token, live by the SCIM
  probe.

Beyond the table, `tests/e2e/chaos.rs` kills the operator 24 times (at seeded random moments and
while a generate is in flight or its result not yet stored), pauses a leader with its generate in
flight past its lease, and revokes the stored token behind the operator's back. Their figures
(kills, generates, scheduled rotations, worst time until the Secret held a valid token) vary with
timing: the tests print them and assert the bounds they derive.

| Case | Fault | Attempts | Ready | Generate calls | Broker calls |
|---|---|---|---|---|---|
";

const NEVER_HURT_PRELUDE: &str = "
## Never hurt: what is minted for what

Every mint revokes the token the consumer holds. Generated by the tests in
`tests/e2e/never_hurt.rs` and `tests/e2e/fencing.rs` (the real binary against both simulators);
regenerate with `UPDATE_RELIABILITY=1 cargo test --test e2e never_hurt:: fencing::`.
**Generate calls** counts the `generate_credentials` requests the scenario caused after the first
issue it starts from (exact: each test asserts it); for the deposed leader, those the old leader
sent after it counted itself deposed; for SIGTERM, the first issue itself. How long the status
took to show each scenario is printed by the tests (`--nocapture`), not kept here.

| Case | What happens | Generate calls | What the operator does |
|---|---|---|---|
";

/// One measured row.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: &'static str,
    pub attempts: Vec<String>,
    pub ready: String,
    pub generates: usize,
    pub broker_calls: usize,
}

fn fault_of(case: &str) -> &'static str {
    CASES.iter().find(|(id, _)| *id == case).map_or_else(
        || panic!("{case} is not in reliability::CASES"),
        |(_, fault)| *fault,
    )
}

fn row_prefix(case: &str) -> String {
    format!("| `{case}` |")
}

fn render(row: &Row) -> String {
    let attempts = if row.attempts.is_empty() {
        "—".to_owned()
    } else {
        row.attempts.join(" → ")
    };
    format!(
        "{} {} | {attempts} | {} | {} | {} |",
        row_prefix(row.case),
        fault_of(row.case),
        row.ready,
        row.generates,
        row.broker_calls
    )
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DOC)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_RELIABILITY").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Tests of one binary run in one process: the file is rewritten under this lock.
static FILE: Mutex<()> = Mutex::new(());

/// The whole document with `rows` (by case id) where known and placeholders elsewhere.
fn document(existing: &str) -> String {
    let mut out = PRELUDE.to_owned();
    for (id, fault) in CASES {
        push_row(&mut out, existing, id, || {
            format!("{} {fault} | not run yet | | | |", row_prefix(id))
        });
    }
    out.push_str(NEVER_HURT_PRELUDE);
    for (id, what, does) in NEVER_HURT {
        push_row(&mut out, existing, id, || {
            format!("{} {what} | not run yet | {does} |", row_prefix(id))
        });
    }
    out
}

/// Appends the row of `id` kept in `existing`, or `placeholder` for a case not run yet.
fn push_row(out: &mut String, existing: &str, id: &str, placeholder: impl FnOnce() -> String) {
    match existing.lines().find(|l| l.starts_with(&row_prefix(id))) {
        Some(line) => out.push_str(line),
        None => out.push_str(&placeholder()),
    }
    out.push('\n');
}

/// Compares the measured row with the committed one (or writes it with `UPDATE_RELIABILITY=1`).
/// A case outside [`CASES`] (an open bug's test) only prints what it measured.
pub fn record(row: &Row) {
    if !CASES.iter().any(|(id, _)| *id == row.case) {
        println!("{} (not in the table): {row:?}", row.case);
        return;
    }
    let line = render(row);
    println!("reliability row: {line}");
    write_or_compare(row.case, &line);
}

/// Records how many generates a never-hurt scenario caused (after its assertions held), as
/// [`record`] does for a fault.
pub fn record_mints(case: &'static str, generates: usize) {
    let (_, what, does) = NEVER_HURT
        .iter()
        .find(|(id, ..)| *id == case)
        .unwrap_or_else(|| panic!("{case} is not in reliability::NEVER_HURT"));
    let line = format!("{} {what} | {generates} | {does} |", row_prefix(case));
    println!("never-hurt row: {line}");
    write_or_compare(case, &line);
}

/// Rewrites the row of `case` (`UPDATE_RELIABILITY=1`) or compares it with the committed one.
fn write_or_compare(case: &str, line: &str) {
    let _lock = FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let committed = std::fs::read_to_string(path()).unwrap_or_default();
    if updating() {
        let mut rows: Vec<&str> = committed
            .lines()
            .filter(|l| !l.starts_with(&row_prefix(case)))
            .collect();
        rows.push(line);
        let text = document(&rows.join("\n"));
        std::fs::write(path(), text).expect("write docs/reliability.md");
        return;
    }
    let found = committed.lines().find(|l| l.starts_with(&row_prefix(case)));
    assert_eq!(
        found,
        Some(line),
        "{DOC}: the row of {case} differs from this run; if the change is intended, regenerate \
         with UPDATE_RELIABILITY=1 cargo test --test e2e faults:: never_hurt:: fencing::",
    );
}

#[test]
fn reliability_document_lists_every_case_in_order() {
    let _lock = FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let committed = std::fs::read_to_string(path()).unwrap_or_default();
    let expected = document(&committed);
    if updating() {
        std::fs::write(path(), &expected).expect("write docs/reliability.md");
        return;
    }
    assert!(
        committed == expected,
        "{DOC} is out of date (prelude, missing or extra rows, order); regenerate with \
         UPDATE_RELIABILITY=1 cargo test --test e2e faults:: never_hurt:: fencing:: reliability::"
    );
    assert!(
        !committed.contains("not run yet"),
        "{DOC} has rows no test wrote; regenerate with UPDATE_RELIABILITY=1"
    );
}

#[test]
fn case_ids_are_unique() {
    let mut ids: Vec<&str> = CASES
        .iter()
        .map(|(id, _)| *id)
        .chain(NEVER_HURT.iter().map(|(id, ..)| *id))
        .collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(
        ids.len(),
        before,
        "duplicate case ids in reliability::CASES"
    );
    assert!(before >= 20, "the matrix has at least 20 faults");
}
