//! Publishes Kubernetes events (`events.k8s.io/v1`), aggregating a repeat of the same event on the
//! same object within a few minutes into the first one's series, as kube's recorder does. The
//! same event means the same reason, action, type and note (a hash of it): a different later
//! failure is a new event with its own words, not a count on the first. Unlike kube's recorder,
//! what is kept per event is small (its name and count) and bounded, and old entries are not
//! scanned on every publish: thousands of credentials issuing at once cost neither memory nor time.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Client, ResourceExt};

/// A repeat within this long joins the first event's series.
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// Most series remembered; beyond it the oldest are forgotten (a repeat then starts a new event).
const MAX_SERIES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    uid: String,
    namespace: String,
    name: String,
    reason: String,
    type_: &'static str,
    action: String,
    /// A hash of the note: the words are part of what makes an event the same.
    note: u64,
}

#[derive(Debug, Clone)]
struct Series {
    event_name: String,
    count: i32,
    last: Timestamp,
}

/// The operator's event recorder.
pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    series: Mutex<HashMap<Key, Series>>,
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: Option<&str>) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or(controller).to_owned(),
            series: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the event, or adds to its series when it repeats.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let key = Key {
            uid: regarding.uid.clone().unwrap_or_default(),
            namespace: namespace.clone(),
            name: regarding.name.clone().unwrap_or_default(),
            reason: event.reason.clone(),
            type_: type_name(event.type_),
            action: event.action.clone(),
            note: note_hash(event.note.as_deref()),
        };
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        if let Some(series) = self.repeat(&key, now) {
            let patch = serde_json::json!({"series": EventSeries {
                count: series.count,
                last_observed_time: MicroTime(now),
            }});
            let patched = api
                .patch(
                    &series.event_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await;
            if patched.is_ok() {
                return Ok(());
            }
            // The event is gone (deleted, expired) or refused: forget its series and create a
            // new one, or every repeat within the window would fail the same way.
            self.forget(&key);
        }
        let created = api
            .create(&PostParams::default(), &self.render(event, regarding, now))
            .await?;
        self.remember(key, created.name_any(), now);
        Ok(())
    }

    /// The series `key` continues, counted up, if it saw an event within the window.
    fn repeat(&self, key: &Key, now: Timestamp) -> Option<Series> {
        let mut all = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let series = all.get_mut(key)?;
        if !within_window(series.last, now) {
            all.remove(key);
            return None;
        }
        series.count = series.count.saturating_add(1);
        series.last = now;
        Some(series.clone())
    }

    fn forget(&self, key: &Key) {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn remember(&self, key: Key, event_name: String, now: Timestamp) {
        let mut all = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        if all.len() >= MAX_SERIES {
            all.retain(|_, series| within_window(series.last, now));
            if all.len() >= MAX_SERIES {
                all.clear();
            }
        }
        all.insert(
            key,
            Series {
                event_name,
                count: 1,
                last: now,
            },
        );
    }

    fn render(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(type_name(event.type_).to_owned()),
            related: event.secondary.clone(),
            ..K8sEvent::default()
        }
    }
}

fn note_hash(note: Option<&str>) -> u64 {
    let mut hasher = DefaultHasher::new();
    note.hash(&mut hasher);
    hasher.finish()
}

fn within_window(last: Timestamp, now: Timestamp) -> bool {
    last.checked_add(SERIES_WINDOW).is_ok_and(|end| end > now)
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::{Method, Request, Response};
    use kube::client::Body;

    use super::*;

    /// What the fake API server received: method, path and body.
    type Seen = Arc<Mutex<Vec<(Method, String, serde_json::Value)>>>;

    /// A client whose API server answers every event create and patch with the event sent.
    fn fake_api() -> (Client, Seen) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = Seen::default();
        tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Some((request, respond)) = handle.next_request().await {
                    let (parts, body) = request.into_parts();
                    let bytes = body.collect_bytes().await.unwrap_or_default();
                    let body: serde_json::Value =
                        serde_json::from_slice(&bytes).unwrap_or_default();
                    seen.lock().unwrap().push((
                        parts.method.clone(),
                        parts.uri.path().to_owned(),
                        body.clone(),
                    ));
                    let code = if parts.method == Method::POST {
                        201
                    } else {
                        200
                    };
                    let response = Response::builder()
                        .status(code)
                        .header("content-type", "application/json")
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap();
                    respond.send_response(response);
                }
            }
        });
        (Client::new(service, "team"), seen)
    }

    fn warning(note: &str) -> Event {
        Event {
            type_: EventType::Warning,
            reason: "RotationFailed".into(),
            note: Some(note.into()),
            action: "Issue".into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn a_repeat_joins_the_series_and_a_different_failure_is_a_new_event() {
        let (client, seen) = fake_api();
        let recorder = Recorder::new(client, "sync-client-operator", Some("test"));
        let regarding = ObjectReference {
            kind: Some("SyncClientCredential".into()),
            namespace: Some("team".into()),
            name: Some("app".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        };
        let first = "BrokerUnavailable: broker answered 503";
        let second = "AuthenticationFailed: login refused";
        for note in [first, first, second, first, second] {
            recorder.publish(&warning(note), &regarding).await.unwrap();
        }
        let seen = seen.lock().unwrap().clone();
        let methods: Vec<&Method> = seen.iter().map(|(method, _, _)| method).collect();
        assert_eq!(
            methods,
            [
                &Method::POST,
                &Method::PATCH,
                &Method::POST,
                &Method::PATCH,
                &Method::PATCH
            ]
        );
        let created = |i: usize| seen[i].2["metadata"]["name"].as_str().unwrap().to_owned();
        assert_eq!(seen[0].2["note"], first);
        assert_eq!(
            seen[2].2["note"], second,
            "the new failure has its own words"
        );
        assert_ne!(created(0), created(2));
        // Each repeat counts on the series of its own words.
        assert!(
            seen[3].1.ends_with(&format!("/{}", created(0))),
            "{}",
            seen[3].1
        );
        assert_eq!(seen[3].2["series"]["count"], 3);
        assert!(
            seen[4].1.ends_with(&format!("/{}", created(2))),
            "{}",
            seen[4].1
        );
        assert_eq!(seen[4].2["series"]["count"], 2);
    }
}
