//! The router: Entra's token endpoint, the `/_sim/` admin API, and ARM for
//! everything else.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::scenario::{Fault, InstanceSpec, OutageBody, TokenFault, TokenFaultKind, TokenOutage};
use super::state::{RequestKind, ScaleSetRef, SimState, StateError, lock};
use super::{arm, tokens};

pub(crate) struct App {
    pub state: Arc<SimState>,
    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub shutdown: watch::Receiver<bool>,
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/_sim/healthz", get(|| async { "ok" }))
        .route("/_sim/requests", get(requests))
        .route("/_sim/requests/reset", post(reset_requests))
        .route("/_sim/tokens/expire", post(expire_tokens))
        .route(
            "/_sim/tokens/outage",
            put(start_token_outage).delete(end_token_outage),
        )
        .route(
            "/_sim/tokens/fault",
            put(start_token_fault).delete(end_token_fault),
        )
        .route(
            "/_sim/scalesets/{sub}/{rg}/{vmss}",
            get(scale_set_instances),
        )
        .route(
            "/_sim/scalesets/{sub}/{rg}/{vmss}/instances/{id}",
            put(put_instance)
                .patch(patch_instance)
                .delete(delete_instance),
        )
        .route(
            "/_sim/scalesets/{sub}/{rg}/{vmss}/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .fallback(arm::handle)
        .with_state(app)
}

async fn token(State(app): State<Arc<App>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    app.state.record_arrival(RequestKind::Token, None, false);
    let (outage, fault) = {
        let world = lock(&app.state.world);
        let settings = &world.token_settings;
        (settings.outage.clone(), settings.fault.clone())
    };
    let path = format!("/{tenant}/oauth2/v2.0/token");
    let retry_after = outage
        .as_ref()
        .and_then(|o| o.retry_after.as_deref())
        .and_then(|v| HeaderValue::from_str(v).ok());
    let mut resp = match outage {
        Some(TokenOutage {
            status,
            body: OutageBody::Html,
            ..
        }) => {
            // A gateway's error page: no JSON at all.
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let page = format!("<html><body><h1>{status}</h1></body></html>");
            (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
        }
        Some(TokenOutage { status, .. }) => {
            entra_answer(&app, &tenant, Err(tokens::EntraError::unavailable(status)))
        }
        None => match fault.map(|f| f.kind) {
            Some(TokenFaultKind::Redirect(r)) => {
                let status =
                    StatusCode::from_u16(r.status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
                (status, [(header::LOCATION, r.location(&path))]).into_response()
            }
            Some(TokenFaultKind::Answer(body)) => entra_answer(&app, &tenant, Ok(body)),
            None => {
                let result = tokens::token_request(&app.state, &tenant, &body).await;
                entra_answer(&app, &tenant, result)
            }
        },
    };
    if let Some(v) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    app.state.record_token_outcome(resp.status().is_success());
    app.state
        .record_response("POST", &path, RequestKind::Token, resp.status().as_u16());
    resp
}

/// Entra's answer to a token request: the token, or its error body.
fn entra_answer(app: &App, tenant: &str, result: Result<Value, tokens::EntraError>) -> Response {
    let (status, json) = match result {
        Ok(v) => {
            tracing::info!(%tenant, "token issued");
            (StatusCode::OK, v)
        }
        Err(e) => {
            tracing::info!(%tenant, error = e.error, code = e.code, "token refused");
            let line_breaks = lock(&app.state.world)
                .token_settings
                .error_description_line_breaks;
            (e.status, e.body(line_breaks, &app.base_url))
        }
    };
    let mut resp = (status, axum::Json(json)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&super::state::random_uuid()) {
        h.insert("x-ms-request-id", v);
    }
    resp
}

async fn start_token_outage(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let set = parse_body::<TokenOutage>(&body).and_then(|o| app.state.set_token_outage(Some(o)));
    no_content(set)
}

async fn end_token_outage(State(app): State<Arc<App>>) -> Response {
    no_content(app.state.set_token_outage(None))
}

async fn start_token_fault(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let set = parse_body::<TokenFault>(&body).and_then(|f| app.state.set_token_fault(Some(f)));
    no_content(set)
}

async fn end_token_fault(State(app): State<Arc<App>>) -> Response {
    no_content(app.state.set_token_fault(None))
}

fn no_content(r: Result<(), StateError>) -> Response {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(e),
    }
}

/// Admin answers are plain JSON; errors are `{"error": "..."}`.
fn admin_error(e: StateError) -> Response {
    let status = match e {
        StateError::ScaleSetNotFound(_) | StateError::InstanceNotFound { .. } => {
            StatusCode::NOT_FOUND
        }
        StateError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    (status, axum::Json(json!({"error": e.to_string()}))).into_response()
}

fn admin<T: serde::Serialize>(r: Result<T, StateError>, ok: StatusCode) -> Response {
    match r {
        Ok(v) => (ok, axum::Json(v)).into_response(),
        Err(e) => admin_error(e),
    }
}

/// JSON is YAML, so one parser takes either.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, StateError> {
    yaml_serde::from_slice(body).map_err(|e| StateError::Invalid(format!("bad body: {e}")))
}

async fn requests(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.state.request_stats()).into_response()
}

async fn reset_requests(State(app): State<Arc<App>>) -> StatusCode {
    app.state.reset_requests();
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(app): State<Arc<App>>) -> StatusCode {
    app.state.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn scale_set_instances(
    State(app): State<Arc<App>>,
    Path((sub, rg, vmss)): Path<(String, String, String)>,
) -> Response {
    let r = ScaleSetRef::new(sub, rg, vmss);
    let result = app.state.instances(&r).and_then(|instances| {
        let faults = app.state.faults(&r)?;
        Ok(json!({"instances": instances, "faults": faults}))
    });
    admin(result, StatusCode::OK)
}

async fn put_instance(
    State(app): State<Arc<App>>,
    Path((sub, rg, vmss, id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    let r = ScaleSetRef::new(sub, rg, vmss);
    let result = parse_body::<InstanceSpec>(&body).and_then(|mut spec| {
        if spec
            .id
            .as_deref()
            .is_some_and(|b| !b.eq_ignore_ascii_case(&id))
        {
            return Err(StateError::Invalid(
                "the id in the body differs from the path".into(),
            ));
        }
        spec.id = Some(id);
        app.state.put_instance(&r, spec)
    });
    admin(result.map(|()| json!({})), StatusCode::OK)
}

async fn patch_instance(
    State(app): State<Arc<App>>,
    Path((sub, rg, vmss, id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    let r = ScaleSetRef::new(sub, rg, vmss);
    let result = parse_body::<InstanceSpec>(&body)
        .and_then(|patch| app.state.patch_instance(&r, &id, patch));
    admin(result.map(|()| json!({})), StatusCode::OK)
}

async fn delete_instance(
    State(app): State<Arc<App>>,
    Path((sub, rg, vmss, id)): Path<(String, String, String, String)>,
) -> Response {
    let r = ScaleSetRef::new(sub, rg, vmss);
    match app.state.remove_instance(&r, &id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(e),
    }
}

async fn get_faults(
    State(app): State<Arc<App>>,
    Path((sub, rg, vmss)): Path<(String, String, String)>,
) -> Response {
    admin(
        app.state.faults(&ScaleSetRef::new(sub, rg, vmss)),
        StatusCode::OK,
    )
}

/// Takes one fault or a list, replacing whatever was armed.
async fn set_faults(
    State(app): State<Arc<App>>,
    Path((sub, rg, vmss)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Fault>),
        One(Fault),
    }
    let r = ScaleSetRef::new(sub, rg, vmss);
    let result = parse_body::<OneOrMany>(&body).and_then(|f| {
        let faults = match f {
            OneOrMany::Many(v) => v,
            OneOrMany::One(f) => vec![f],
        };
        app.state.set_faults(&r, faults)
    });
    admin(result.map(|()| json!({})), StatusCode::OK)
}

async fn clear_faults(
    State(app): State<Arc<App>>,
    Path((sub, rg, vmss)): Path<(String, String, String)>,
) -> Response {
    match app.state.clear_faults(&ScaleSetRef::new(sub, rg, vmss)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(e),
    }
}
