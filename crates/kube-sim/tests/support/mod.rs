//! A small HTTP client for driving the simulator like a Kubernetes client would.
#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client as HyperClient, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sync_client_kube_sim::KubeSim;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The fixture CRDs: namespaced `widgets.test.example` (status subresource, printer columns,
/// defaults, enums, formats, CEL rules) and cluster-scoped `gadgets.test.example`.
pub const FIXTURE_CRDS: &str = include_str!("../fixtures/crds.yaml");

pub struct Client {
    base: String,
    /// `Authorization` header value; `None` sends none.
    authorization: Option<String>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

pub enum WatchItem {
    Event(Value),
    End,
    Failed(String),
    TimedOut,
}

pub struct WatchStream {
    pub status: u16,
    body: Incoming,
    buffer: Vec<u8>,
}

impl WatchStream {
    /// The next event line, waiting at most `wait`.
    pub async fn next(&mut self, wait: Duration) -> WatchItem {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                return WatchItem::Event(
                    serde_json::from_slice(&line).expect("watch line is JSON"),
                );
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return WatchItem::TimedOut,
                Ok(None) => return WatchItem::End,
                Ok(Some(Err(e))) => return WatchItem::Failed(e.to_string()),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// The next event, which must arrive within the test timeout.
    pub async fn event(&mut self) -> Value {
        match self.next(TIMEOUT).await {
            WatchItem::Event(e) => e,
            WatchItem::End => panic!("watch ended while an event was expected"),
            WatchItem::Failed(e) => panic!("watch failed while an event was expected: {e}"),
            WatchItem::TimedOut => panic!("no watch event within {TIMEOUT:?}"),
        }
    }

    /// The next event that is not a bookmark.
    pub async fn change(&mut self) -> Value {
        loop {
            let event = self.event().await;
            if event["type"] != "BOOKMARK" {
                return event;
            }
        }
    }
}

impl Client {
    pub fn new(sim: &KubeSim) -> Self {
        Self::with_token(sim, Some("sim-token"))
    }

    /// A client sending `Authorization: Bearer <token>`, or no `Authorization` at all.
    pub fn with_token(sim: &KubeSim, token: Option<&str>) -> Self {
        Self {
            base: sim.url(),
            authorization: token.map(|t| format!("Bearer {t}")),
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> hyper::Response<Incoming> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("valid request");
        tokio::time::timeout(TIMEOUT, self.http.request(request))
            .await
            .expect("request timed out")
            .expect("request failed")
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let response = self.send(method, path, headers, body).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = tokio::time::timeout(TIMEOUT, response.into_body().collect())
            .await
            .expect("body timed out")
            .expect("body failed")
            .to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[("accept", "application/json")], None)
            .await
    }

    pub async fn get_accept(&self, path: &str, accept: &str) -> Reply {
        self.request("GET", path, &[("accept", accept)], None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.request(
            "PUT",
            path,
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
        .await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &str) -> Reply {
        self.request(
            "PATCH",
            path,
            &[("content-type", content_type)],
            Some(body.to_owned()),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, &[], None).await
    }

    pub async fn delete_with(&self, path: &str, options: &Value) -> Reply {
        self.request(
            "DELETE",
            path,
            &[("content-type", "application/json")],
            Some(options.to_string()),
        )
        .await
    }

    pub async fn watch(&self, path: &str) -> WatchStream {
        self.watch_accept(path, "application/json").await
    }

    pub async fn watch_accept(&self, path: &str, accept: &str) -> WatchStream {
        let response = self.send("GET", path, &[("accept", accept)], None).await;
        WatchStream {
            status: response.status().as_u16(),
            body: response.into_body(),
            buffer: Vec::new(),
        }
    }
}

/// A kube-rs client from a kubeconfig: [`KubeSim::kubeconfig_yaml`], or one with another token.
pub async fn kube_client(kubeconfig_yaml: &str) -> kube::Client {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let kubeconfig = Kubeconfig::from_yaml(kubeconfig_yaml).expect("a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a kube config");
    kube::Client::try_from(config).expect("a kube client")
}

/// A simulator with the fixture CRDs installed, and a client for it.
pub async fn sim_with_fixtures() -> (KubeSim, Client) {
    let sim = KubeSim::start().await.expect("simulator starts");
    sim.apply_yaml(FIXTURE_CRDS).expect("fixture CRDs apply");
    let client = Client::new(&sim);
    (sim, client)
}

pub fn secret(name: &str, labels: &Value) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "dg=="},
    })
}

pub fn widget(name: &str, spec: &Value) -> Value {
    serde_json::json!({
        "apiVersion": "test.example/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    })
}

pub const SECRETS: &str = "/api/v1/namespaces/default/secrets";
pub const WIDGETS: &str = "/apis/test.example/v1/namespaces/default/widgets";
