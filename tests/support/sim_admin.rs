// Each includer uses only some of it.
#![allow(dead_code)]
//! A client of the ARM simulator's admin API (`/_sim/...`, see ssw_simulator's crate docs),
//! for tests that drive a simulator over HTTP: one in another process (`ssw-simulator`), or
//! one whose admin API itself is under test. Bodies are YAML or JSON, in the scenario's shapes.
//! Every call answers the status and the body, so that tests can assert refusals too.
//! Shared by the product's tests and the simulator crate's (which include this file);
//! tested in tests/harness/sim_admin.rs.

use serde_json::Value;
use ssw_simulator::{RequestStats, ScaleSetRef};
use std::time::Duration;

/// What the admin API answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON; `Value::Null` for an empty body (204).
    #[track_caller]
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("admin answer is not JSON ({e}): {}", self.body))
    }

    /// Panics unless the status is 2xx; returns the answer.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            (200..300).contains(&self.status),
            "admin API answered {}: {}",
            self.status,
            self.body
        );
        self
    }
}

pub struct SimAdmin {
    base: String,
    http: reqwest::Client,
}

impl SimAdmin {
    /// `base` is the simulator's URL (`https://127.0.0.1:PORT`), `ca_pem` the CA it prints
    /// with `--ca-out` (or `SimulatorHandle::ca_pem`).
    pub fn new(base: &str, ca_pem: &str) -> Self {
        // reqwest is built without a default crypto provider; Err means one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// `/_sim/{path}` with `method` and an optional body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> Answer {
        let url = format!("{}/_sim/{}", self.base, path.trim_start_matches('/'));
        let mut req = self.http.request(method, &url);
        if let Some(body) = body {
            req = req.body(body.to_owned());
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Answer { status, body }
    }

    fn scale_set_path(r: &ScaleSetRef, rest: &str) -> String {
        format!(
            "scalesets/{}/{}/{}{rest}",
            r.subscription, r.resource_group, r.name
        )
    }

    /// Whether the simulator answers its health check.
    pub async fn healthy(&self) -> bool {
        let a = self.call(reqwest::Method::GET, "healthz", None).await;
        a.status == 200 && a.body == "ok"
    }

    pub async fn requests(&self) -> RequestStats {
        let a = self.call(reqwest::Method::GET, "requests", None).await.ok();
        serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("request stats ({e}): {}", a.body))
    }

    pub async fn reset_requests(&self) -> Answer {
        self.call(reqwest::Method::POST, "requests/reset", None)
            .await
    }

    pub async fn expire_tokens(&self) -> Answer {
        self.call(reqwest::Method::POST, "tokens/expire", None)
            .await
    }

    /// Starts a sign-in outage (`{status: 503, body: entra|html, retryAfter?}`).
    pub async fn start_token_outage(&self, outage: &str) -> Answer {
        self.call(reqwest::Method::PUT, "tokens/outage", Some(outage))
            .await
    }

    pub async fn end_token_outage(&self) -> Answer {
        self.call(reqwest::Method::DELETE, "tokens/outage", None)
            .await
    }

    /// Starts a token fault (`{redirect: {...}}` or `{answer: {...}}`).
    pub async fn start_token_fault(&self, fault: &str) -> Answer {
        self.call(reqwest::Method::PUT, "tokens/fault", Some(fault))
            .await
    }

    pub async fn end_token_fault(&self) -> Answer {
        self.call(reqwest::Method::DELETE, "tokens/fault", None)
            .await
    }

    /// The scale set's instances and armed faults.
    pub async fn scale_set(&self, r: &ScaleSetRef) -> Answer {
        self.call(reqwest::Method::GET, &Self::scale_set_path(r, ""), None)
            .await
    }

    /// Replaces (or adds) instance `id` with `spec`.
    pub async fn put_instance(&self, r: &ScaleSetRef, id: &str, spec: &str) -> Answer {
        let path = Self::scale_set_path(r, &format!("/instances/{id}"));
        self.call(reqwest::Method::PUT, &path, Some(spec)).await
    }

    /// Changes the fields of instance `id` that `patch` names.
    pub async fn patch_instance(&self, r: &ScaleSetRef, id: &str, patch: &str) -> Answer {
        let path = Self::scale_set_path(r, &format!("/instances/{id}"));
        self.call(reqwest::Method::PATCH, &path, Some(patch)).await
    }

    pub async fn remove_instance(&self, r: &ScaleSetRef, id: &str) -> Answer {
        let path = Self::scale_set_path(r, &format!("/instances/{id}"));
        self.call(reqwest::Method::DELETE, &path, None).await
    }

    pub async fn faults(&self, r: &ScaleSetRef) -> Answer {
        let path = Self::scale_set_path(r, "/faults");
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// Replaces the armed faults with `faults` (one fault or a list).
    pub async fn set_faults(&self, r: &ScaleSetRef, faults: &str) -> Answer {
        let path = Self::scale_set_path(r, "/faults");
        self.call(reqwest::Method::POST, &path, Some(faults)).await
    }

    pub async fn clear_faults(&self, r: &ScaleSetRef) -> Answer {
        let path = Self::scale_set_path(r, "/faults");
        self.call(reqwest::Method::DELETE, &path, None).await
    }
}
