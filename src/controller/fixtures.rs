//! The reconciler against a mocked API server that answers, and checks, each exact call:
//! which path, which verb, which body, in which order, and that nothing else is sent.
//! `decide` has the timing and judgement tests; these prove the shell carries a decision out.

use super::reconcile::{Context, reconcile as reconcile_for_tests};
use crate::api::{ScaleSetWatch, ScaleSetWatchSpec};
use crate::azure::EndpointOverrides;
use crate::azure::arm::client::{ArmClient, Limits};
use crate::azure::poller::Poller;
use crate::controller::metrics::Metrics;
use http::{Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::{Client, Resource};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower_test::mock::{self, Handle};

type ApiServer = Handle<Request<Body>, Response<Body>>;

const NS: &str = "team";
const UID: &str = "6f1f3c9e-1b2a-4c3d-8e4f-5a6b7c8d9e0f";

fn watch(spec: Value, status: Option<Value>) -> ScaleSetWatch {
    let spec: ScaleSetWatchSpec = serde_json::from_value(spec).expect("spec");
    let mut w = ScaleSetWatch::new("web", spec);
    let meta = w.meta_mut();
    meta.namespace = Some(NS.into());
    meta.uid = Some(UID.into());
    meta.generation = Some(2);
    if let Some(status) = status {
        w.status = Some(serde_json::from_value(status).expect("status"));
    }
    w
}

fn spec(extra: Value) -> Value {
    let mut s = json!({
        "subscriptionId": "00000000-0000-0000-0000-0000000000aa",
        "resourceGroup": "rg",
        "scaleSetName": "web",
        "interval": "60s",
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    s
}

fn context() -> (Arc<Context>, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let http = crate::azure::http_client(None).expect("an HTTP client");
    let poller = Poller::new(
        ArmClient::new(http.clone(), Limits::default()),
        http,
        EndpointOverrides::default(),
    );
    let ctx = Context::new(
        client,
        poller,
        Arc::new(Metrics::default()),
        Reporter {
            controller: "scaleset-watch".into(),
            instance: None,
        },
        crate::api::Cloud::AzurePublic,
        true,
    );
    (Arc::new(ctx), handle)
}

/// The next request: its method, path and query, and JSON body.
async fn next(api: &mut ApiServer) -> (String, String, Value, mock::SendResponse<Response<Body>>) {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), api.next_request())
        .await
        .expect("a request within 5 s")
        .expect("the client is alive");
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let bytes = request
        .into_body()
        .collect_bytes()
        .await
        .expect("request body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    (method, uri, body, send)
}

fn respond(send: mock::SendResponse<Response<Body>>, status: StatusCode, body: &Value) {
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(body.to_string().into_bytes()))
            .expect("response"),
    );
}

fn not_found(what: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
           "message": format!("{what} not found"), "code": 404})
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} in {status:#}"))
}

/// A status patch: the uid test, then the whole status. Returns the status.
#[track_caller]
fn assert_status_patch(method: &str, uri: &str, body: &Value) -> Value {
    assert_eq!(method, "PATCH");
    assert!(
        uri.starts_with(&format!(
            "/apis/scalesetwatch.io/v1alpha1/namespaces/{NS}/scalesetwatches/web/status?"
        )),
        "{uri}"
    );
    assert!(uri.contains("fieldManager=scaleset-watch"), "{uri}");
    assert_eq!(
        body[0],
        json!({"op": "test", "path": "/metadata/uid", "value": UID})
    );
    assert_eq!(body[1]["op"], "add");
    assert_eq!(body[1]["path"], "/status");
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body:#}");
    body[1]["value"].clone()
}

#[track_caller]
fn assert_event(method: &str, uri: &str, body: &Value, type_: &str, reason: &str) {
    assert_eq!(method, "POST");
    assert_eq!(
        uri,
        format!("/apis/events.k8s.io/v1/namespaces/{NS}/events?")
    );
    assert_eq!(body["type"], type_, "{body:#}");
    assert_eq!(body["reason"], reason, "{body:#}");
    assert_eq!(body["regarding"]["uid"], UID);
    assert_eq!(body["reportingController"], "scaleset-watch");
}

async fn assert_quiet(api: &mut ApiServer) {
    let more = tokio::time::timeout(Duration::from_millis(300), api.next_request()).await;
    if let Ok(Some((request, _))) = more {
        panic!("unexpected {} {}", request.method(), request.uri());
    }
}

#[tokio::test]
async fn a_suspended_watch_gets_one_status_patch_and_one_event() {
    let (ctx, mut api) = context();
    let w = Arc::new(watch(spec(json!({"suspend": true})), None));
    let reconcile = tokio::spawn(reconcile_for_tests(w.clone(), ctx.clone()));

    let (method, uri, body, send) = next(&mut api).await;
    let status = assert_status_patch(&method, &uri, &body);
    assert_eq!(condition(&status, "Ready")["status"], "False");
    assert_eq!(condition(&status, "Ready")["reason"], "Suspended");
    assert_eq!(condition(&status, "Ready")["observedGeneration"], 2);
    assert_eq!(condition(&status, "Healthy")["status"], "Unknown");
    let mut stored = serde_json::to_value(&*w).expect("json");
    stored["status"] = status;
    respond(send, StatusCode::OK, &stored);

    let (method, uri, body, send) = next(&mut api).await;
    assert_event(&method, &uri, &body, "Warning", "PollFailed");
    assert!(
        body["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("Suspended: ")),
        "{body:#}"
    );
    respond(send, StatusCode::CREATED, &body);
    // Healthy: from nothing to Unknown.
    let (method, uri, body, send) = next(&mut api).await;
    assert_event(&method, &uri, &body, "Normal", "HealthUnknown");
    respond(send, StatusCode::CREATED, &body);

    let requeue = reconcile.await.expect("joined").expect("reconciled");
    assert_eq!(requeue, kube::runtime::controller::Action::await_change());
    assert_quiet(&mut api).await;
}

#[tokio::test]
async fn an_unchanged_status_is_not_written_again() {
    let (ctx, mut api) = context();
    let first = watch(spec(json!({"suspend": true})), None);
    // The status the first reconcile would write, as stored.
    let reconcile = tokio::spawn(reconcile_for_tests(Arc::new(first.clone()), ctx.clone()));
    let (method, uri, body, send) = next(&mut api).await;
    let status = assert_status_patch(&method, &uri, &body);
    let mut stored = serde_json::to_value(&first).expect("json");
    stored["status"] = status.clone();
    respond(send, StatusCode::OK, &stored);
    for _ in 0..2 {
        let (_, _, body, send) = next(&mut api).await;
        respond(send, StatusCode::CREATED, &body);
    }
    reconcile.await.expect("joined").expect("reconciled");

    let again = watch(spec(json!({"suspend": true})), Some(status));
    reconcile_for_tests(Arc::new(again), ctx.clone())
        .await
        .expect("reconciled");
    assert_quiet(&mut api).await;
}

#[tokio::test]
async fn a_missing_secret_is_read_once_then_reported_in_ready() {
    let (ctx, mut api) = context();
    let w = watch(
        spec(json!({"credentials": {"secretRef": {"name": "sp"}}})),
        None,
    );
    let reconcile = tokio::spawn(reconcile_for_tests(Arc::new(w.clone()), ctx.clone()));

    let (method, uri, body, send) = next(&mut api).await;
    assert_eq!(
        (method.as_str(), uri.as_str()),
        ("GET", "/api/v1/namespaces/team/secrets/sp")
    );
    assert_eq!(body, Value::Null);
    respond(send, StatusCode::NOT_FOUND, &not_found("secrets \"sp\""));

    let (method, uri, body, send) = next(&mut api).await;
    let status = assert_status_patch(&method, &uri, &body);
    let ready = condition(&status, "Ready");
    assert_eq!(ready["reason"], "CredentialsNotFound");
    assert_eq!(ready["message"], "Secret team/sp not found");
    let mut stored = serde_json::to_value(&w).expect("json");
    stored["status"] = status;
    respond(send, StatusCode::OK, &stored);

    let (method, uri, body, send) = next(&mut api).await;
    assert_event(&method, &uri, &body, "Warning", "PollFailed");
    respond(send, StatusCode::CREATED, &body);
    let (method, uri, body, send) = next(&mut api).await;
    assert_event(&method, &uri, &body, "Normal", "HealthUnknown");
    respond(send, StatusCode::CREATED, &body);

    let action = reconcile.await.expect("joined").expect("reconciled");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(5)),
        "the first retry after a failure"
    );
    assert_quiet(&mut api).await;
}

#[tokio::test]
async fn a_watch_replaced_during_the_poll_keeps_its_successor_untouched() {
    let (ctx, mut api) = context();
    let w = watch(spec(json!({"suspend": true})), None);
    let reconcile = tokio::spawn(reconcile_for_tests(Arc::new(w.clone()), ctx.clone()));

    let (method, uri, body, send) = next(&mut api).await;
    assert_status_patch(&method, &uri, &body);
    // The uid test failed: another object of that name now.
    respond(
        send,
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid",
                "message": "the server rejected our request due to an error in our request", "code": 422}),
    );
    let (method, uri, _, send) = next(&mut api).await;
    assert_eq!(
        (method.as_str(), uri.as_str()),
        (
            "GET",
            "/apis/scalesetwatch.io/v1alpha1/namespaces/team/scalesetwatches/web"
        )
    );
    let mut successor = serde_json::to_value(&w).expect("json");
    successor["metadata"]["uid"] = json!("00000000-1111-2222-3333-444444444444");
    respond(send, StatusCode::OK, &successor);

    reconcile
        .await
        .expect("joined")
        .expect("no error: the status is dropped");
    assert_quiet(&mut api).await;
}
