//! Publishes Kubernetes events (`events.k8s.io/v1`), aggregating a repeat of the same event on the
//! same object within a few minutes into the first one's series, as kube's recorder does. Unlike
//! it, what is kept per event is small (its name and count) and bounded, and old entries are not
//! scanned on every publish: thousands of credentials issuing at once cost neither memory nor time.

use std::collections::HashMap;
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

fn within_window(last: Timestamp, now: Timestamp) -> bool {
    last.checked_add(SERIES_WINDOW).is_ok_and(|end| end > now)
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}
