//! The chart's alert rules and Grafana dashboard query only series the running operator exposes:
//! every metric name they use (with the suffixes Prometheus stores: `_total` for counters,
//! `_bucket`/`_sum`/`_count` for histograms) and every label they match on.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sync_client_kube_sim::Fault;

use crate::harness::{DIRECTORY, Env, WAIT};
use crate::packaging::{ChartValues, chart_dir, helm_template, only};

/// Series Prometheus itself makes for each target: the rules may use them.
const PROMETHEUS_SERIES: &[&str] = &["up"];
/// Labels Prometheus adds to every series of a target (the rules select the release by them).
const TARGET_LABELS: &[&str] = &["job", "instance", "pod", "service", "container"];

/// Sample names and their label names, as Prometheus stores them, from an OpenMetrics text:
/// counters end in `_total`, histograms have `_bucket` (with `le`), `_sum` and `_count`.
fn exposed_series(exposition: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut families = BTreeMap::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').expect("# TYPE name type");
            families.insert(family.to_owned(), kind.to_owned());
        }
    }
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (family, kind) in &families {
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "gauge" | "unknown" => &[""],
            other => panic!("{family}: unexpected metric type {other}"),
        };
        for suffix in suffixes {
            series.insert(format!("{family}{suffix}"), BTreeSet::new());
        }
    }
    for line in exposition.lines().filter(|line| !line.starts_with('#')) {
        let name_end = line.find(['{', ' ']).expect("a sample line");
        let name = &line[..name_end];
        let labels = series
            .get_mut(name)
            .unwrap_or_else(|| panic!("sample {name} belongs to no declared family"));
        if let Some(inside) = line[name_end..]
            .strip_prefix('{')
            .and_then(|rest| rest.split_once('}'))
            .map(|(inside, _)| inside)
        {
            for pair in inside.split("\",") {
                let (label, _) = pair.split_once('=').expect("label=value");
                labels.insert(label.trim().to_owned());
            }
        }
    }
    series
}

/// Metric selectors in a PromQL expression: each metric name with the label names its braces
/// match on. Identifiers followed by `{` are metric names; so are `sync_client_*` ones without.
fn selectors(expr: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut found = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_identifier = (c.is_ascii_alphabetic() || c == '_')
            && (i == 0
                || !(chars[i - 1].is_ascii_alphanumeric()
                    || chars[i - 1] == '_'
                    || chars[i - 1] == '$'));
        if !starts_identifier {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if chars.get(i) == Some(&'{') {
            let close = chars[i..]
                .iter()
                .position(|c| *c == '}')
                .expect("closing brace")
                + i;
            let inside: String = chars[i + 1..close].iter().collect();
            found.push((name, matcher_labels(&inside)));
            i = close + 1;
        } else if name.starts_with("sync_client_") {
            found.push((name, BTreeSet::new()));
        }
    }
    found
}

/// Label names of matchers like `job=~"$job", condition!="True"`.
fn matcher_labels(inside: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    let mut rest = inside;
    while let Some(operator) = rest.find(['=', '!']) {
        let label = rest[..operator].trim().trim_start_matches(',').trim();
        if !label.is_empty() {
            labels.insert(label.to_owned());
        }
        // Skip the quoted value.
        let Some(open) = rest[operator..].find('"') else {
            break;
        };
        let value_start = operator + open + 1;
        let Some(close) = rest[value_start..].find('"') else {
            break;
        };
        rest = &rest[value_start + close + 1..];
    }
    labels
}

/// Every PromQL expression of the rendered rules and of the dashboard (panels and variables).
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let objects = helm_template(ChartValues::AllFeatures, &[]);
    let rule = only(&objects, "PrometheusRule");
    for group in rule["spec"]["groups"].as_array().expect("groups") {
        for alert in group["rules"].as_array().expect("rules") {
            out.push((
                format!("alert {}", alert["alert"]),
                alert["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("files/dashboards/sync-client-operator.json"))
            .expect("read the dashboard"),
    )
    .expect("dashboard JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel {}", panel["title"]),
                target["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(query) = variable["query"]["query"].as_str() {
            let query = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map_or(query, |(selector, _)| selector);
            out.push((format!("variable {}", variable["name"]), query.to_owned()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboard_query_only_series_the_operator_exposes() {
    let env = Env::start().await;
    if let Some(kube) = &env.kube {
        // One failed Kubernetes call, so the reconcile error counter has a series too.
        kube.inject(Fault::fail("patch", "syncclientcredentials/status"));
    }
    let operator = env.operator("op", &[]);
    // Delivered to Entra ID, so the delivery and Graph series exist too.
    let entra = crate::delivery::Entra::start(&env).await;
    let (service_principal, _) = entra.service_principal();
    env.create_credential(
        "app",
        json!({"deliveries": crate::delivery::delivery(&service_principal)}),
    )
    .await;
    env.wait_for_revision("app", 1).await;
    env.wait_for_reason("app", "CredentialCurrent").await;
    crate::delivery::delivered(&env, &entra, "app", &service_principal, DIRECTORY).await;
    let body = env
        .eventually("a scrape with every series", WAIT, || async {
            let (status, body) = operator.http_get("/metrics").await?;
            (status == 200
                && body.contains("sync_client_credential_renewal_timestamp_seconds{")
                && body.contains("sync_client_broker_ready_status{")
                && body.contains("sync_client_deliveries_total{")
                && (env.kube.is_none() || body.contains("sync_client_reconcile_errors_total{")))
            .then_some(body)
        })
        .await;
    let exposed = exposed_series(&body);
    assert!(
        exposed.contains_key("sync_client_rotations_total")
            && exposed.contains_key("sync_client_broker_request_duration_seconds_bucket"),
        "{exposed:?}"
    );

    let mut used = BTreeSet::new();
    for (origin, expr) in expressions() {
        let found = selectors(&expr);
        assert!(!found.is_empty(), "{origin} queries no metric: {expr}");
        for (name, labels) in found {
            used.insert(name.clone());
            if PROMETHEUS_SERIES.contains(&name.as_str()) {
                continue;
            }
            if env.kube.is_none() && name.starts_with("sync_client_reconcile_errors") {
                continue;
            }
            let Some(exposed_labels) = exposed.get(&name) else {
                panic!(
                    "{origin} uses {name}, which the operator does not expose: {:?}",
                    exposed.keys()
                );
            };
            for label in labels {
                assert!(
                    TARGET_LABELS.contains(&label.as_str()) || exposed_labels.contains(&label),
                    "{origin} matches {name} on label {label}, which it does not have: {exposed_labels:?}"
                );
            }
        }
    }
    // The rules and dashboard cover the families the README promises. (Against a real cluster no
    // reconcile error is provoked, so its counter may have no series to check there.)
    for family in [
        "sync_client_credential_expiration_timestamp_seconds",
        "sync_client_credential_renewal_timestamp_seconds",
        "sync_client_credential_ready_status",
        "sync_client_rotations_total",
        "sync_client_broker_requests_total",
        "sync_client_broker_request_duration_seconds_bucket",
        "sync_client_reconcile_duration_seconds_bucket",
        "sync_client_reconcile_errors_total",
        "sync_client_broker_ready_status",
    ] {
        assert!(used.contains(family), "{family} is not shown anywhere");
    }
}

#[test]
fn promql_selectors_are_read_with_their_labels() {
    let found = selectors(
        r#"sum by (result) (increase(sync_client_rotations_total{job="x", result!~"a|b"}[15m])) > 0 or absent(up{job=~"$job"} == 1) unless sync_client_y"#,
    );
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["sync_client_rotations_total", "up", "sync_client_y"]
    );
    assert_eq!(
        found[0].1,
        ["job", "result"].iter().map(|s| (*s).to_owned()).collect()
    );
}
