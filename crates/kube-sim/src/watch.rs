//! Watch streams: newline-delimited JSON events with resource-version replay, selector-aware
//! ADDED/MODIFIED/DELETED translation, bookmarks, timeouts, 410 Gone and forced disconnects.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Shared;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{EventType, HistoryEvent, output};
use crate::table::{self, IncludeObject};

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchStart {
    /// `resourceVersion` absent or "0": synthetic ADDED events for the current state first.
    Now,
    /// Replay every change after this resource version (410 if history no longer has it).
    After(u64),
    /// `sendInitialEvents=true`: the current state, then a bookmark marking its end.
    InitialEvents,
}

pub(crate) struct WatchRequest {
    pub rt: Arc<ResourceType>,
    pub version: String,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub start: WatchStart,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub table: Option<IncludeObject>,
    /// Send `PartialObjectMetadata` instead of whole objects.
    pub metadata_only: bool,
}

/// How a watch is ended from the outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disconnect {
    /// End the response body cleanly (like a server-side timeout).
    Close,
    /// Abort the connection mid-stream (like a network failure or server crash).
    Abort,
}

type Chunk = Result<Bytes, std::io::Error>;

impl WatchRequest {
    fn selects(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    fn in_scope(&self, event: &HistoryEvent) -> bool {
        event.key.group == self.rt.storage_group
            && event.key.plural == self.rt.plural
            && (!self.rt.namespaced
                || self
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| *ns == event.key.namespace))
    }

    /// The event this watcher sees, if any: objects entering or leaving the selection show
    /// up as ADDED or DELETED, as with kube-apiserver.
    fn translate(&self, event: &HistoryEvent) -> Option<EventType> {
        if !self.in_scope(event) {
            return None;
        }
        let now = self.selects(&event.object);
        match event.event_type {
            EventType::Added | EventType::Deleted => now.then_some(event.event_type),
            EventType::Modified => {
                let before = event.previous.as_ref().is_some_and(|p| self.selects(p));
                match (before, now) {
                    (true, true) => Some(EventType::Modified),
                    (false, true) => Some(EventType::Added),
                    (true, false) => Some(EventType::Deleted),
                    (false, false) => None,
                }
            }
        }
    }

    fn line(&self, event_type: &str, obj: &Value) -> Bytes {
        let object = output(&self.rt, &self.version, obj);
        let object = match self.table {
            Some(include) => table::table(&self.rt, &self.version, &[object], &json!({}), include),
            None if self.metadata_only => table::partial_metadata(&object),
            None => object,
        };
        event_line(event_type, &object)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.rt.kind,
            "apiVersion": self.rt.api_version(&self.version),
            "metadata": metadata,
        });
        event_line("BOOKMARK", &object)
    }
}

fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn gone_line(requested: u64, oldest: u64) -> Bytes {
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("too old resource version: {requested} ({})", oldest + 1),
        "reason": "Expired",
        "code": 410,
    });
    event_line("ERROR", &status)
}

/// Starts the watch task and returns the receiving end of its body.
pub(crate) fn spawn(shared: Arc<Shared>, request: WatchRequest) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(run(shared, request, tx));
    rx
}

async fn run(shared: Arc<Shared>, request: WatchRequest, tx: mpsc::Sender<Chunk>) {
    let mut changes = shared.changes.subscribe();
    let mut disconnects = shared.disconnects.subscribe();
    disconnects.borrow_and_update();
    let mut shutdown = shared.shutdown.subscribe();
    let deadline = tokio::time::Instant::now() + request.timeout;
    let mut bookmark_timer = tokio::time::interval(shared.bookmark_interval());
    bookmark_timer.tick().await;

    changes.borrow_and_update();
    let Some(mut last_rv) = send_initial(&shared, &request, &tx).await else {
        return;
    };
    loop {
        changes.borrow_and_update();
        let Some(rv) = send_changes(&shared, &request, &tx, last_rv).await else {
            return;
        };
        last_rv = rv;
        tokio::select! {
            woke = changes.changed() => {
                if woke.is_err() {
                    return;
                }
            }
            _ = bookmark_timer.tick(), if request.bookmarks => {
                if tx.send(Ok(request.bookmark(last_rv, false))).await.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                if request.bookmarks {
                    let _ = tx.send(Ok(request.bookmark(last_rv, false))).await;
                }
                return;
            }
            signalled = disconnects.changed() => {
                let how = *disconnects.borrow_and_update();
                if signalled.is_ok() && how.1 == Disconnect::Abort {
                    let _ = tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "watch dropped by the test"))).await;
                }
                return;
            }
            _ = shutdown.changed() => return,
            () = tx.closed() => return,
        }
    }
}

/// The synthetic ADDED events (and the initial-events-end bookmark) a watch starts with;
/// returns the resource version the watch continues from, `None` once the client is gone.
async fn send_initial(
    shared: &Shared,
    request: &WatchRequest,
    tx: &mpsc::Sender<Chunk>,
) -> Option<u64> {
    let (last_rv, initial) = {
        let store = shared.lock_store();
        match request.start {
            WatchStart::After(rv) => (rv, Vec::new()),
            WatchStart::Now | WatchStart::InitialEvents => {
                let objects = store.snapshot(
                    &request.rt,
                    request.namespace.as_deref(),
                    &request.labels,
                    &request.fields,
                );
                (store.current_rv(), objects)
            }
        }
    };
    for obj in &initial {
        tx.send(Ok(request.line("ADDED", obj))).await.ok()?;
    }
    if request.start == WatchStart::InitialEvents {
        tx.send(Ok(request.bookmark(last_rv, true))).await.ok()?;
    }
    Some(last_rv)
}

/// Sends the events after `last_rv`; returns the new last resource version, `None` when the
/// watch is over (client gone, or history expired and the 410 sent).
async fn send_changes(
    shared: &Shared,
    request: &WatchRequest,
    tx: &mpsc::Sender<Chunk>,
    mut last_rv: u64,
) -> Option<u64> {
    let events = shared.lock_store().events_after(last_rv);
    match events {
        Err(oldest) => {
            let _ = tx.send(Ok(gone_line(last_rv, oldest))).await;
            None
        }
        Ok(events) => {
            for event in events {
                last_rv = event.rv;
                if let Some(event_type) = request.translate(&event) {
                    tx.send(Ok(request.line(event_type.as_str(), &event.object)))
                        .await
                        .ok()?;
                }
            }
            Some(last_rv)
        }
    }
}
