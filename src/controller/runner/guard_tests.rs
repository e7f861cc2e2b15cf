//! A panic in a reconcile is an error of its object, and counted.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;

use super::guard::contain_panics;
use crate::controller::{Context, Error, Options};
use crate::metrics::Metrics;
use crate::secret::FingerprintKey;

/// A context whose client points nowhere: the code under test makes no API call.
fn context() -> Context {
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = Client::try_from(config).unwrap();
    Context::new(
        client,
        &Options::new(FingerprintKey::new(b"k".to_vec())),
        Arc::new(Metrics::new()),
    )
}

#[tokio::test]
async fn a_panicking_reconcile_is_an_error_of_its_object_and_is_counted() {
    let ctx = context();
    let meta = kube::api::ObjectMeta {
        name: Some("app".into()),
        namespace: Some("team".into()),
        ..Default::default()
    };
    let result = contain_panics(&ctx, &meta, async {
        let values: Vec<i32> = Vec::new();
        #[allow(clippy::indexing_slicing)]
        Ok(Action::requeue(Duration::from_secs(
            u64::try_from(values[3]).unwrap_or_default(),
        )))
    })
    .await;
    match result {
        Err(Error::Panicked {
            namespace, name, ..
        }) => assert_eq!((namespace.as_str(), name.as_str()), ("team", "app")),
        other => panic!("expected a contained panic, got {other:?}"),
    }
    assert!(
        ctx.metrics
            .encode()
            .contains("sync_client_reconcile_panics_total 1"),
        "{}",
        ctx.metrics.encode()
    );
    let fine = contain_panics(&ctx, &meta, async { Ok(Action::await_change()) }).await;
    assert_eq!(fine.ok(), Some(Action::await_change()));
}
