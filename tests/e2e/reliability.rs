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
        let known = existing.lines().find(|l| l.starts_with(&row_prefix(id)));
        if let Some(line) = known {
            out.push_str(line);
        } else {
            out.push_str(&row_prefix(id));
            out.push(' ');
            out.push_str(fault);
            out.push_str(" | not run yet | | | |");
        }
        out.push('\n');
    }
    out
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
    let _lock = FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let committed = std::fs::read_to_string(path()).unwrap_or_default();
    if updating() {
        let mut rows: Vec<&str> = committed
            .lines()
            .filter(|l| !l.starts_with(&row_prefix(row.case)))
            .collect();
        rows.push(&line);
        let text = document(&rows.join("\n"));
        std::fs::write(path(), text).expect("write docs/reliability.md");
        return;
    }
    let found = committed
        .lines()
        .find(|l| l.starts_with(&row_prefix(row.case)));
    assert_eq!(
        found,
        Some(line.as_str()),
        "{DOC}: the row of {} differs from this run; if the change is intended, regenerate with \
         UPDATE_RELIABILITY=1 cargo test --test e2e faults::",
        row.case
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
         UPDATE_RELIABILITY=1 cargo test --test e2e faults:: reliability::"
    );
    assert!(
        !committed.contains("not run yet"),
        "{DOC} has rows no test wrote; regenerate with UPDATE_RELIABILITY=1"
    );
}

#[test]
fn case_ids_are_unique() {
    let mut ids: Vec<&str> = CASES.iter().map(|(id, _)| *id).collect();
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
