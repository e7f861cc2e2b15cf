//! Reads of the store: one object, a list page (with its continue token), a snapshot for
//! watches, and the watch history.

use serde_json::Value;

use crate::error::SimError;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};

use super::{HistoryEvent, ListPage, ListQuery, ObjectKey, Store, output};

fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    use std::fmt::Write as _;
    format!("{rv}|{namespace}|{name}")
        .bytes()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

fn decode_continue(token: &str) -> Option<(u64, String, String)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '|');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, parts.next()?.to_owned(), parts.next()?.to_owned()))
}

impl Store {
    pub fn get(
        &self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, SimError> {
        self.lookup(&ObjectKey::of(rt, ns.unwrap_or(""), name))
            .map(|obj| output(rt, version, obj))
            .ok_or_else(|| SimError::not_found(rt.subject(name)))
    }

    pub fn list(
        &self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        query: &ListQuery<'_>,
    ) -> Result<ListPage, SimError> {
        let ListQuery {
            labels,
            fields,
            limit,
            continue_token,
        } = query;
        let (list_rv, start_after) = match continue_token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, ns, name) = decode_continue(token)
                    .ok_or_else(|| SimError::bad_request("continue key is not valid"))?;
                (rv, Some((ns, name)))
            }
            None => (self.rv, None),
        };
        let matching: Vec<(&(String, String), &Value)> = self
            .objects
            .get(&(rt.storage_group.clone(), rt.plural.clone()))
            .into_iter()
            .flat_map(|objs| objs.iter())
            .filter(|((obj_ns, _), _)| !rt.namespaced || ns.is_none_or(|n| n == obj_ns))
            .filter(|(key, _)| start_after.as_ref().is_none_or(|after| *key > after))
            .filter(|(_, obj)| labels.matches(obj) && fields.matches(obj))
            .collect();
        let take = match *limit {
            Some(l) if l > 0 => l.min(matching.len()),
            _ => matching.len(),
        };
        let remaining = matching.len() - take;
        let continue_token = (remaining > 0 && take > 0).then(|| {
            let (last_ns, last_name) = matching[take - 1].0;
            encode_continue(list_rv, last_ns, last_name)
        });
        Ok(ListPage {
            items: matching[..take]
                .iter()
                .map(|(_, obj)| output(rt, version, obj))
                .collect(),
            resource_version: list_rv,
            continue_token,
            remaining: (remaining > 0).then_some(remaining),
        })
    }

    /// Every object of a type (optionally one namespace) matching the selectors.
    pub fn snapshot(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.objects
            .get(&(rt.storage_group.clone(), rt.plural.clone()))
            .into_iter()
            .flat_map(|objs| objs.iter())
            .filter(|((obj_ns, _), _)| !rt.namespaced || ns.is_none_or(|n| n == obj_ns))
            .filter(|(_, obj)| labels.matches(obj) && fields.matches(obj))
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    /// Events after `rv`, or `Err(oldest available)` when history no longer reaches back.
    pub fn events_after(&self, rv: u64) -> Result<Vec<HistoryEvent>, u64> {
        if rv < self.compacted_rv {
            return Err(self.compacted_rv);
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok(self.history.iter().skip(start).cloned().collect())
    }

    pub fn expire_history(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }
}
