//! The ARM operations: authentication, ARM's error answers and their order,
//! paging with opaque skiptokens, budgets, and injected faults.
//!
//! ARM matches path segments and resource names case-insensitively, so
//! routing is done here by hand rather than by axum's case-sensitive router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::render::{self, Select, Shape};
use super::scenario::{
    FaultKind, MAX_TIMEOUT_SECONDS, OrchestrationMode, RedirectFault, ThrottleScope,
};
use super::server::App;
use super::state::{RequestKind, ScaleSetState, SimState, World, lock, random_uuid};
use super::tokens::{BearerCheck, check_bearer, object_id};

/// api-versions that define the operations served here (ARM-NOTES).
pub const SUPPORTED_API_VERSIONS: &[&str] = &[
    "2017-03-30",
    "2017-12-01",
    "2018-06-01",
    "2018-10-01",
    "2019-03-01",
    "2019-07-01",
    "2019-12-01",
    "2020-06-01",
    "2020-12-01",
    "2021-03-01",
    "2021-04-01",
    "2021-07-01",
    "2021-11-01",
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2025-11-01",
    "2026-03-01",
];

/// From this api-version a Flexible set's VMSS VM list answers with
/// references to the member VMs.
const FLEX_REFERENCES_SINCE: &str = "2025-11-01";

/// Page size of a resource group's VM list when no scale set narrows it.
const UNFILTERED_VM_PAGE: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    ListVmssVms {
        sub: String,
        rg: String,
        vmss: String,
    },
    GetScaleSet {
        sub: String,
        rg: String,
        vmss: String,
    },
    ListVms {
        sub: String,
        rg: String,
    },
    Unknown,
}

impl Route {
    fn kind(&self) -> RequestKind {
        match self {
            Route::ListVmssVms { .. } => RequestKind::ListVmssVms,
            Route::GetScaleSet { .. } => RequestKind::GetScaleSet,
            Route::ListVms { .. } => RequestKind::ListVms,
            Route::Unknown => RequestKind::Other,
        }
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn route(path: &str) -> Route {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let is = |i: usize, word: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(word));
    let prefix = is(0, "subscriptions")
        && is(2, "resourceGroups")
        && is(4, "providers")
        && is(5, "Microsoft.Compute");
    if !prefix {
        return Route::Unknown;
    }
    let (sub, rg) = (segs[1].clone(), segs[3].clone());
    match segs.len() {
        7 if is(6, "virtualMachines") => Route::ListVms { sub, rg },
        8 if is(6, "virtualMachineScaleSets") => Route::GetScaleSet {
            sub,
            rg,
            vmss: segs[7].clone(),
        },
        9 if is(6, "virtualMachineScaleSets") && is(8, "virtualMachines") => Route::ListVmssVms {
            sub,
            rg,
            vmss: segs[7].clone(),
        },
        _ => Route::Unknown,
    }
}

/// An answer being built: status, JSON (or deliberately broken) body, headers.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: StatusCode, v: &Value) -> Self {
        Self {
            status,
            body: to_bytes(v),
            headers: Vec::new(),
        }
    }

    fn error(status: StatusCode, code: &str, message: &str) -> Self {
        Self::json(status, &render::arm_error(code, message))
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// serde_json's maps sort their keys, but ARM writes a page's `value`
/// before its `nextLink`, and a cut-off page should lose the link, not the
/// items.
fn to_bytes(v: &Value) -> Vec<u8> {
    let Some(map) = v.as_object().filter(|m| m.contains_key("value")) else {
        return serde_json::to_vec(v).unwrap_or_default();
    };
    let mut out = b"{\"value\":".to_vec();
    out.extend(serde_json::to_vec(&map["value"]).unwrap_or_default());
    for (k, v) in map.iter().filter(|(k, _)| *k != "value") {
        out.push(b',');
        out.extend(serde_json::to_vec(k).unwrap_or_default());
        out.push(b':');
        out.extend(serde_json::to_vec(v).unwrap_or_default());
    }
    out.push(b'}');
    out
}

/// What to do once the world lock is released.
enum Plan {
    Now(Reply),
    /// A `timeout` fault: hang, then answer 504 like ARM's gateway.
    Hang(Duration),
}

/// Opaque to clients; says where the next page starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SkipToken {
    #[serde(rename = "a")]
    after: String,
    #[serde(rename = "p")]
    page: u32,
    /// Makes every link distinct, as ARM's are, so that a client cannot
    /// detect loops by comparing links alone.
    #[serde(rename = "n")]
    nonce: u32,
}

impl SkipToken {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

struct Query {
    raw: String,
    params: Vec<(String, String)>,
}

impl Query {
    fn parse(raw: &str) -> Self {
        Self {
            raw: raw.to_owned(),
            params: url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query without `$skiptoken`, the other parameters kept byte for
    /// byte as the client sent them.
    fn without_skiptoken(&self) -> String {
        self.raw
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let key = percent_decode(p.split('=').next().unwrap_or_default());
                !key.eq_ignore_ascii_case("$skiptoken")
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn with_skiptoken(&self, token: &SkipToken) -> String {
        let rest = self.without_skiptoken();
        let sep = if rest.is_empty() { "" } else { "&" };
        format!("{rest}{sep}$skiptoken={}", token.encode())
    }
}

/// Where paging links point: the host the client used, so that a client
/// which checks nextLink's host against its ARM endpoint is satisfied.
fn base_for(req_headers: &HeaderMap, uri_authority: Option<&str>, fallback: &str) -> String {
    uri_authority
        .map(str::to_owned)
        .or_else(|| {
            req_headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .map_or_else(|| fallback.to_owned(), |host| format!("https://{host}"))
}

/// The axum fallback: everything that is neither the token endpoint nor
/// the admin API is an ARM request.
pub(crate) async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let query = Query::parse(req.uri().query().unwrap_or_default());
    let route = route(&path);
    let kind = route.kind();

    let stats_key = match &route {
        Route::ListVmssVms { sub, rg, vmss } | Route::GetScaleSet { sub, rg, vmss } => {
            scale_set_key(&app.state, sub, rg, vmss)
        }
        Route::ListVms { sub, rg } => query
            .get("$filter")
            .and_then(filter_scale_set_id)
            .and_then(|id| parse_scale_set_id(&id))
            .filter(|(s, r, _)| s.eq_ignore_ascii_case(sub) && r.eq_ignore_ascii_case(rg))
            .and_then(|(s, r, v)| scale_set_key(&app.state, &s, &r, &v)),
        Route::Unknown => None,
    };
    let first_page = query.get("$skiptoken").is_none();
    app.state
        .record_arrival(kind, stats_key.as_deref(), first_page);

    let ctx = Ctx {
        app: &app,
        base: base_for(
            req.headers(),
            req.uri().authority().map(|a| a.as_str()),
            &app.base_url,
        ),
        path: &path,
        query: &query,
    };
    let reply = ctx.process(&method, req.headers(), &route).await;
    let status = reply.status;
    app.state
        .record_response(method.as_str(), &path_and_query, kind, status.as_u16());
    tracing::debug!(%method, path = %path_and_query, status = status.as_u16(), "ARM request");
    finish(reply, req.headers())
}

fn scale_set_key(state: &SimState, sub: &str, rg: &str, vmss: &str) -> Option<String> {
    let mut world = lock(&state.world);
    world
        .scale_set_mut(&super::state::ScaleSetRef::new(sub, rg, vmss))
        .map(|ss| ss.key())
}

/// Adds the headers every ARM answer carries.
fn finish(reply: Reply, req_headers: &HeaderMap) -> Response {
    let request_id = random_uuid();
    let correlation = req_headers
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(random_uuid, str::to_owned);
    let mut resp = (reply.status, Body::from(reply.body)).into_response();
    let h = resp.headers_mut();
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::try_from(name),
            HeaderValue::from_str(value),
        ) {
            h.append(n, v);
        }
    };
    put("content-type", "application/json; charset=utf-8");
    put("cache-control", "no-cache");
    put("pragma", "no-cache");
    put("x-content-type-options", "nosniff");
    put(
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    );
    put("x-ms-request-id", &request_id);
    put("x-ms-correlation-request-id", &correlation);
    put(
        "x-ms-routing-request-id",
        &format!(
            "WESTEUROPE:{}:{request_id}",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        ),
    );
    if let Some(client_id) = req_headers
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
    {
        put("x-ms-client-request-id", client_id);
    }
    for (name, value) in &reply.headers {
        put(name, value);
    }
    resp
}

struct Ctx<'a> {
    app: &'a App,
    base: String,
    path: &'a str,
    query: &'a Query,
}

/// The principal a valid token speaks for.
struct Caller {
    tenant_id: String,
    client_id: String,
    object_id: String,
}

impl Ctx<'_> {
    fn state(&self) -> &SimState {
        &self.app.state
    }

    async fn process(&self, method: &Method, headers: &HeaderMap, route: &Route) -> Reply {
        // ARM authenticates before it looks at anything else.
        let caller = match self.authenticate(headers) {
            Ok(c) => c,
            Err(reply) => return reply,
        };
        if *route == Route::Unknown {
            return Reply::error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("The ARM simulator serves no operation at '{}'.", self.path),
            );
        }
        if method != Method::GET {
            return Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("The ARM simulator serves only GET at '{}'.", self.path),
            );
        }
        let api_version = match self.query.get("api-version") {
            None | Some("") => {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                );
            }
            Some(v) if !SUPPORTED_API_VERSIONS.contains(&v) => {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidApiVersionParameter",
                    &format!(
                        "The api-version '{v}' is invalid. The supported versions are '{}'.",
                        SUPPORTED_API_VERSIONS.join(",")
                    ),
                );
            }
            Some(v) => v.to_owned(),
        };

        // Latency is served outside the lock so that a slow scale set does
        // not slow the others.
        let latency = self.latency(route);
        if !latency.is_zero() {
            self.sleep_or_shutdown(latency).await;
        }

        let plan = {
            let mut world = lock(&self.state().world);
            match route {
                Route::ListVmssVms { sub, rg, vmss } => {
                    self.list_vmss_vms(&mut world, &caller, sub, rg, vmss, &api_version)
                }
                Route::GetScaleSet { sub, rg, vmss } => {
                    self.get_scale_set(&mut world, &caller, sub, rg, vmss)
                }
                Route::ListVms { sub, rg } => self.list_vms(&mut world, &caller, sub, rg),
                Route::Unknown => Plan::Now(Reply::error(StatusCode::NOT_FOUND, "NotFound", "")),
            }
        };
        match plan {
            Plan::Now(reply) => reply,
            Plan::Hang(d) => {
                self.sleep_or_shutdown(d).await;
                Reply::error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "GatewayTimeout",
                    "The gateway did not receive a response from 'Microsoft.Compute' within the specified time period.",
                )
            }
        }
    }

    async fn sleep_or_shutdown(&self, d: Duration) {
        let mut stop = self.app.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = super::tls::stopped(&mut stop) => {}
        }
    }

    fn latency(&self, route: &Route) -> Duration {
        let mut world = lock(&self.state().world);
        let ms = match route {
            Route::ListVmssVms { sub, rg, vmss } | Route::GetScaleSet { sub, rg, vmss } => world
                .scale_set_mut(&super::state::ScaleSetRef::new(sub, rg, vmss))
                .map(|ss| ss.spec.latency_ms),
            Route::ListVms { sub, rg } => self
                .query
                .get("$filter")
                .and_then(filter_scale_set_id)
                .and_then(|id| parse_scale_set_id(&id))
                .filter(|(s, r, _)| s.eq_ignore_ascii_case(sub) && r.eq_ignore_ascii_case(rg))
                .and_then(|(s, r, v)| {
                    world
                        .scale_set_mut(&super::state::ScaleSetRef::new(s, r, v))
                        .map(|ss| ss.spec.latency_ms)
                }),
            Route::Unknown => None,
        };
        Duration::from_millis(ms.unwrap_or(0))
    }

    fn www_authenticate(&self, description: &str) -> String {
        format!(
            "Bearer authorization_uri=\"{}/\", error=\"invalid_token\", error_description=\"{description}\"",
            self.app.base_url
        )
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Reply> {
        let authz = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = match check_bearer(self.state(), authz) {
            BearerCheck::Valid(t) => t,
            BearerCheck::Missing => {
                return Err(Reply::error(
                    StatusCode::UNAUTHORIZED,
                    "AuthenticationFailed",
                    "Authentication failed. The 'Authorization' header is missing.",
                )
                .header(
                    "www-authenticate",
                    self.www_authenticate(
                        "The authentication failed because of missing 'Authorization' header.",
                    ),
                ));
            }
            BearerCheck::Invalid => {
                return Err(Reply::error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "The access token is invalid.",
                )
                .header(
                    "www-authenticate",
                    self.www_authenticate("The access token is invalid."),
                ));
            }
            BearerCheck::Expired(t) => {
                return Err(Reply::error(
                    StatusCode::UNAUTHORIZED,
                    "ExpiredAuthenticationToken",
                    &format!(
                        "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                        t.expires_at_utc.strftime("%-m/%-d/%Y %-I:%M:%S %p"),
                        jiff::Timestamp::now().strftime("%-m/%-d/%Y %-I:%M:%S %p")
                    ),
                )
                .header("www-authenticate", self.www_authenticate("The access token has expired.")));
            }
        };
        Ok(Caller {
            tenant_id: token.tenant_id,
            client_id: token.client_id,
            object_id: token.object_id,
        })
    }

    /// Subscription, tenant, RBAC, then resource group: ARM's order.
    fn authorize(
        &self,
        world: &World,
        caller: &Caller,
        sub: &str,
        rg: &str,
        action: &str,
        scope: &str,
    ) -> Result<(), Reply> {
        let Some(subscription) = world.subscriptions.get(&sub.to_lowercase()) else {
            return Err(Reply::error(
                StatusCode::NOT_FOUND,
                "SubscriptionNotFound",
                &format!("The subscription '{sub}' could not be found."),
            ));
        };
        if let Some(tenant) = &subscription.tenant_id
            && !tenant.eq_ignore_ascii_case(&caller.tenant_id)
        {
            return Err(Reply::error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationTokenTenant",
                &format!(
                    "The access token is from the wrong issuer 'https://sts.windows.net/{}/'. It must match the tenant 'https://sts.windows.net/{tenant}/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/{tenant}' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later.",
                    caller.tenant_id
                ),
            )
            .header("www-authenticate", self.www_authenticate("The access token is from the wrong issuer.")));
        }
        let granted = world
            .principal(&caller.tenant_id, &caller.client_id)
            .is_some_and(|p| p.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(sub)));
        if !granted {
            let object_id = world
                .principal(&caller.tenant_id, &caller.client_id)
                .map_or_else(|| caller.object_id.clone(), object_id);
            return Err(Reply::error(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                &format!(
                    "The client '{}' with object id '{object_id}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                    caller.client_id
                ),
            ));
        }
        if !subscription
            .resource_groups
            .contains_key(&rg.to_lowercase())
        {
            return Err(Reply::error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                &format!("Resource group '{rg}' could not be found."),
            ));
        }
        Ok(())
    }

    fn scale_set<'w>(
        &self,
        world: &'w mut World,
        caller: &Caller,
        sub: &str,
        rg: &str,
        vmss: &str,
        action: &str,
    ) -> Result<&'w mut ScaleSetState, Reply> {
        let scope = format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}"
        );
        self.authorize(world, caller, sub, rg, action, &scope)?;
        world
            .scale_set_mut(&super::state::ScaleSetRef::new(sub, rg, vmss))
            .ok_or_else(|| {
                Reply::error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!(
                        "The Resource 'Microsoft.Compute/virtualMachineScaleSets/{vmss}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
                    ),
                )
            })
    }

    /// ARM's subscription read budget; `Err` when enforced and spent.
    fn subscription_budget(
        &self,
        world: &mut World,
        caller: &Caller,
        sub: &str,
    ) -> Result<u32, Reply> {
        let now = Instant::now();
        match world.take_subscription_read(sub, &caller.object_id, now) {
            Some(left) => Ok(left),
            None if !world.rate_limits.enforce => Ok(0),
            None => {
                let wait = (1.0 / f64::from(world.rate_limits.subscription_reads_per_second.max(1)))
                    .ceil()
                    .max(1.0) as u64;
                Err(subscription_throttled(
                    sub,
                    &caller.object_id,
                    wait,
                    wait.to_string(),
                ))
            }
        }
    }

    fn list_vmss_vms(
        &self,
        world: &mut World,
        caller: &Caller,
        sub: &str,
        rg: &str,
        vmss: &str,
        api_version: &str,
    ) -> Plan {
        let sub_left = match self.subscription_budget(world, caller, sub) {
            Ok(n) => n,
            Err(r) => return Plan::Now(r),
        };
        let limits = world.rate_limits.clone();
        let ss = match self.scale_set(
            world,
            caller,
            sub,
            rg,
            vmss,
            "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        ) {
            Ok(ss) => ss,
            Err(r) => return Plan::Now(r),
        };
        let flexible = ss.spec.orchestration_mode == OrchestrationMode::Flexible;
        if flexible && api_version < FLEX_REFERENCES_SINCE {
            return Plan::Now(Reply::error(
                StatusCode::BAD_REQUEST,
                "OperationNotAllowed",
                &format!(
                    "Operation 'List VMs in a Virtual Machine Scale Set' is not allowed on Virtual Machine Scale Set '{}' since it uses Flexible orchestration mode before api-version {FLEX_REFERENCES_SINCE}. List the resource group's virtual machines instead.",
                    ss.spec.name
                ),
            ));
        }
        let token = match self.skiptoken() {
            Ok(t) => t,
            Err(r) => return Plan::Now(r),
        };
        let shape = match self.vmss_shape() {
            Ok(s) => s,
            Err(r) => return Plan::Now(r),
        };
        let latest_filter = match self.latest_model_filter() {
            Ok(f) => f,
            Err(r) => return Plan::Now(r),
        };

        let now = Instant::now();
        let policies = ("GetVMScaleSetVM3Min", "GetVMScaleSetVM30Min");
        let (r3, r30) = ss.remaining_reads(now, &limits);
        if limits.enforce && (r3 == 0 || r30 == 0) {
            let wait = ss.three_minute_window_frees_in(now).as_secs().max(1);
            let policy = if r3 == 0 { policies.0 } else { policies.1 };
            self.state().record_fault(&ss.key(), true);
            return Plan::Now(throttled(
                policy,
                (wait, wait.to_string()),
                policies,
                (r3, r30),
            ));
        }
        let (r3, r30) = ss.count_read(now, &limits);

        let after = token.as_ref().map(|t| t.after.clone()).unwrap_or_default();
        let number = token.as_ref().map_or(1, |t| t.page);
        let entries = ss
            .instances
            .iter()
            .filter(|(_, rec)| {
                latest_filter.is_none_or(|want| {
                    rec.spec
                        .merged_over(&ss.spec.defaults)
                        .latest_model_applied
                        .unwrap_or(true)
                        == want
                })
            })
            .map(|(k, _)| k.clone());
        let (keys, more) = take_page(entries, &after, ss.spec.page_size);
        let page = PageInfo { number, more };

        let fault = pick_fault(ss, Some(page), now);
        if let Some(f) = &fault {
            self.state()
                .record_fault(&ss.key(), matches!(f, Applied::Throttle { .. }));
        }
        let items: Vec<Value> = keys
            .iter()
            .chain(&duplicate(&fault, &keys, &after))
            .filter_map(|k| ss.instances.get(k))
            .map(|rec| {
                if flexible {
                    render::vmss_vm_reference(ss, rec)
                } else {
                    render::vmss_vm(ss, rec, shape)
                }
            })
            .collect();
        let body = Listing::page(items, &keys, after, more, number);
        let resource_header = format!(
            "Microsoft.Compute/{};{r3},Microsoft.Compute/{};{r30}",
            policies.0, policies.1
        );
        self.answer_listing(body, fault, (sub, &caller.object_id), policies, (r3, r30))
            .map_reply(|r| {
                r.header(
                    "x-ms-ratelimit-remaining-subscription-reads",
                    sub_left.to_string(),
                )
                .header(
                    "x-ms-ratelimit-remaining-subscription-global-reads",
                    sub_left.to_string(),
                )
                .header_unless_present("x-ms-ratelimit-remaining-resource", resource_header)
            })
    }

    fn get_scale_set(
        &self,
        world: &mut World,
        caller: &Caller,
        sub: &str,
        rg: &str,
        vmss: &str,
    ) -> Plan {
        let sub_left = match self.subscription_budget(world, caller, sub) {
            Ok(n) => n,
            Err(r) => return Plan::Now(r),
        };
        let ss = match self.scale_set(
            world,
            caller,
            sub,
            rg,
            vmss,
            "Microsoft.Compute/virtualMachineScaleSets/read",
        ) {
            Ok(ss) => ss,
            Err(r) => return Plan::Now(r),
        };
        let now = Instant::now();
        let fault = pick_fault(ss, None, now);
        if let Some(f) = &fault {
            self.state()
                .record_fault(&ss.key(), matches!(f, Applied::Throttle { .. }));
        }
        let policies = ("GetVMScaleSet3Min", "GetVMScaleSet30Min");
        let body = render::scale_set(ss);
        let plan = match fault {
            None => Plan::Now(Reply::json(StatusCode::OK, &body)),
            Some(f) => apply_to_body(f, body, (sub, &caller.object_id), policies, (0, 0)),
        };
        plan.map_reply(|r| {
            r.header(
                "x-ms-ratelimit-remaining-subscription-reads",
                sub_left.to_string(),
            )
            // The scale set GET has its own Compute budget, which the
            // simulator does not model; it reports a comfortable one.
            .header_unless_present(
                "x-ms-ratelimit-remaining-resource",
                "Microsoft.Compute/GetVMScaleSet3Min;197,Microsoft.Compute/GetVMScaleSet30Min;1297"
                    .to_owned(),
            )
        })
    }

    fn list_vms(&self, world: &mut World, caller: &Caller, sub: &str, rg: &str) -> Plan {
        let sub_left = match self.subscription_budget(world, caller, sub) {
            Ok(n) => n,
            Err(r) => return Plan::Now(r),
        };
        let scope = format!("/subscriptions/{sub}/resourceGroups/{rg}");
        if let Err(r) = self.authorize(
            world,
            caller,
            sub,
            rg,
            "Microsoft.Compute/virtualMachines/read",
            &scope,
        ) {
            return Plan::Now(r);
        }
        let filter = self.query.get("$filter");
        let expand = match self.query.get("$expand") {
            None => false,
            Some(e) if e.eq_ignore_ascii_case("instanceView") => true,
            Some(e) => {
                return Plan::Now(Reply::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    &format!("The value '{e}' of parameter '$expand' is not supported."),
                ));
            }
        };
        let filtered_id = match filter {
            None => None,
            Some(f) => match filter_scale_set_id(f) {
                Some(id) => Some(id),
                None => {
                    return Plan::Now(Reply::error(
                        StatusCode::BAD_REQUEST,
                        "InvalidParameter",
                        &format!(
                            "The value '{f}' of parameter '$filter' is not supported. Only 'virtualMachineScaleSet/id' eq '<id>' is."
                        ),
                    ));
                }
            },
        };
        if expand && filtered_id.is_none() {
            return Plan::Now(Reply::error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "The $expand=instanceView query parameter is only supported together with a $filter on 'virtualMachineScaleSet/id'.",
            ));
        }
        let token = match self.skiptoken() {
            Ok(t) => t,
            Err(r) => return Plan::Now(r),
        };
        let after = token.as_ref().map(|t| t.after.clone()).unwrap_or_default();
        let number = token.as_ref().map_or(1, |t| t.page);
        let limits = world.rate_limits.clone();
        let now = Instant::now();
        let Some(group) = world
            .subscriptions
            .get_mut(&sub.to_lowercase())
            .and_then(|s| s.resource_groups.get_mut(&rg.to_lowercase()))
        else {
            return Plan::Now(Reply::error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                "",
            ));
        };
        let policies = ("LowCostGet3Min", "LowCostGet30Min");

        // With a filter on one Flexible set, that set's faults and budgets
        // apply; a Uniform set's instances are not VMs of the group.
        let mut target = None;
        if let Some(id) = &filtered_id {
            target = group.scale_sets.values_mut().find(|ss| {
                ss.spec.orchestration_mode == OrchestrationMode::Flexible
                    && render::scale_set_id(ss).eq_ignore_ascii_case(id)
            });
            if target.is_none() {
                let r = Reply::json(StatusCode::OK, &json!({"value": []}));
                return Plan::Now(r.header(
                    "x-ms-ratelimit-remaining-subscription-reads",
                    sub_left.to_string(),
                ));
            }
        }
        let (body, fault, budget) = match target {
            Some(ss) => {
                let (r3, r30) = ss.remaining_reads(now, &limits);
                if limits.enforce && (r3 == 0 || r30 == 0) {
                    let wait = ss.three_minute_window_frees_in(now).as_secs().max(1);
                    self.state().record_fault(&ss.key(), true);
                    let policy = if r3 == 0 { policies.0 } else { policies.1 };
                    return Plan::Now(throttled(
                        policy,
                        (wait, wait.to_string()),
                        policies,
                        (r3, r30),
                    ));
                }
                let budget = ss.count_read(now, &limits);
                let entries = ss.instances.keys().cloned();
                let (keys, more) = take_page(entries, &after, ss.spec.page_size);
                let fault = pick_fault(ss, Some(PageInfo { number, more }), now);
                if let Some(f) = &fault {
                    self.state()
                        .record_fault(&ss.key(), matches!(f, Applied::Throttle { .. }));
                }
                let items = keys
                    .iter()
                    .chain(&duplicate(&fault, &keys, &after))
                    .filter_map(|k| ss.instances.get(k))
                    .map(|rec| render::flex_vm(ss, rec, expand))
                    .collect();
                let listing = Listing::page(items, &keys, after, more, number);
                (listing, fault, budget)
            }
            None => {
                // A separator below every printable character keeps the
                // composite keys in the same order as the nested maps.
                let entries = group
                    .scale_sets
                    .iter()
                    .filter(|(_, ss)| ss.spec.orchestration_mode == OrchestrationMode::Flexible)
                    .flat_map(|(set, ss)| {
                        ss.instances.keys().map(move |k| format!("{set}\u{1}{k}"))
                    });
                let (keys, more) = take_page(entries, &after, UNFILTERED_VM_PAGE);
                let items = keys
                    .iter()
                    .filter_map(|k| {
                        let (set, inst) = k.split_once('\u{1}')?;
                        let ss = group.scale_sets.get(set)?;
                        Some(render::flex_vm(ss, ss.instances.get(inst)?, false))
                    })
                    .collect();
                let listing = Listing::page(items, &keys, after, more, number);
                (
                    listing,
                    None,
                    (limits.scale_set_vm_3min, limits.scale_set_vm_30min),
                )
            }
        };
        let resource_header = format!(
            "Microsoft.Compute/{};{},Microsoft.Compute/{};{}",
            policies.0, budget.0, policies.1, budget.1
        );
        self.answer_listing(body, fault, (sub, &caller.object_id), policies, budget)
            .map_reply(|r| {
                r.header(
                    "x-ms-ratelimit-remaining-subscription-reads",
                    sub_left.to_string(),
                )
                .header_unless_present("x-ms-ratelimit-remaining-resource", resource_header)
            })
    }

    fn skiptoken(&self) -> Result<Option<SkipToken>, Reply> {
        match self.query.get("$skiptoken") {
            None => Ok(None),
            Some(t) => SkipToken::decode(t).map(Some).ok_or_else(|| {
                Reply::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    &format!("The value '{t}' of parameter '$skiptoken' is invalid."),
                )
            }),
        }
    }

    fn vmss_shape(&self) -> Result<Shape, Reply> {
        let expand = match self.query.get("$expand") {
            None => false,
            Some(e) if e.eq_ignore_ascii_case("instanceView") => true,
            Some(e) => {
                return Err(Reply::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    &format!("The value '{e}' of parameter '$expand' is not supported."),
                ));
            }
        };
        let select = match self.query.get("$select") {
            None => Select::All,
            Some(s) if s.eq_ignore_ascii_case("instanceView") => Select::InstanceView,
            Some(s) if s.eq_ignore_ascii_case("instanceView/statuses") => Select::Statuses,
            Some(s) => {
                return Err(Reply::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    &format!("The value '{s}' of parameter '$select' is not supported."),
                ));
            }
        };
        let power_state_only = self.query.get("$filter").is_some_and(|f| {
            let f: String = f.chars().filter(|c| !c.is_whitespace()).collect();
            f.eq_ignore_ascii_case("startswith(instanceView/statuses/code,'PowerState')eqtrue")
        });
        Ok(Shape {
            expand_instance_view: expand,
            select,
            power_state_only,
        })
    }

    /// `$filter=properties/latestModelApplied eq true|false`; the PowerState
    /// filter is handled by the shape; anything else is refused as ARM does.
    fn latest_model_filter(&self) -> Result<Option<bool>, Reply> {
        let Some(f) = self.query.get("$filter") else {
            return Ok(None);
        };
        let compact: String = f
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        match compact.as_str() {
            "properties/latestmodelappliedeqtrue" => Ok(Some(true)),
            "properties/latestmodelappliedeqfalse" => Ok(Some(false)),
            "startswith(instanceview/statuses/code,'powerstate')eqtrue" => Ok(None),
            _ => Err(Reply::error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                &format!("The value '{f}' of parameter '$filter' is not supported."),
            )),
        }
    }

    fn link(&self, host_base: &str, token: &SkipToken) -> String {
        format!(
            "{host_base}{}?{}",
            self.path,
            self.query.with_skiptoken(token)
        )
    }

    fn answer_listing(
        &self,
        listing: Listing,
        fault: Option<Applied>,
        who: (&str, &str),
        policies: (&str, &str),
        budget: (u32, u32),
    ) -> Plan {
        let mut next = listing.next.as_ref().map(|t| self.link(&self.base, t));
        // A link even from the last page, where the fault needs one.
        let forced = || {
            listing.next.clone().unwrap_or(SkipToken {
                after: listing.last.clone(),
                page: listing.number.saturating_add(1),
                nonce: rand::random(),
            })
        };
        let fault = match fault {
            Some(Applied::ForeignNextLink(host)) => {
                next = Some(self.link(&format!("https://{host}"), &forced()));
                None
            }
            Some(Applied::NextLinkUserinfo(userinfo)) => {
                let host = self.base.strip_prefix("https://").unwrap_or(&self.base);
                next = Some(self.link(&format!("https://{userinfo}@{host}"), &forced()));
                None
            }
            Some(Applied::EndlessPages) => {
                next = Some(self.link(&self.base, &forced()));
                None
            }
            Some(Applied::Redirect(r)) => {
                let location = r.location(&format!("{}?{}", self.path, self.query.raw));
                return Plan::Now(Reply {
                    status: StatusCode::from_u16(r.status)
                        .unwrap_or(StatusCode::TEMPORARY_REDIRECT),
                    body: Vec::new(),
                    headers: vec![("location", location)],
                });
            }
            Some(Applied::NextLinkLoop { exact: true }) => {
                next = Some(format!(
                    "{}{}?{}",
                    self.base,
                    self.path,
                    self.query.without_skiptoken()
                ));
                None
            }
            Some(Applied::NextLinkLoop { exact: false }) => {
                let token = SkipToken {
                    after: String::new(),
                    page: 1,
                    nonce: rand::random(),
                };
                next = Some(self.link(&self.base, &token));
                None
            }
            other => other,
        };
        let mut body = json!({"value": listing.items});
        if let Some(n) = next {
            body["nextLink"] = n.into();
        }
        match fault {
            None => Plan::Now(Reply::json(StatusCode::OK, &body)),
            Some(f) => apply_to_body(f, body, who, policies, budget),
        }
    }
}

struct Listing {
    items: Vec<Value>,
    next: Option<SkipToken>,
    /// Key of the last item served (or where this page started).
    last: String,
    number: u32,
}

impl Listing {
    /// Page `number` of `items` (whose keys are `keys`, served after `after`), with a skip
    /// token for the next page when `more` remain.
    fn page(items: Vec<Value>, keys: &[String], after: String, more: bool, number: u32) -> Self {
        let last = keys.last().cloned().unwrap_or(after);
        Self {
            items,
            next: more.then(|| SkipToken {
                after: last.clone(),
                page: number.saturating_add(1),
                nonce: rand::random(),
            }),
            last,
            number,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PageInfo {
    number: u32,
    more: bool,
}

/// The key a `duplicateInstance` fault serves again on this page: the last
/// one of the page before, or on page 1 the page's own first.
fn duplicate(fault: &Option<Applied>, keys: &[String], after: &str) -> Option<String> {
    if !matches!(fault, Some(Applied::DuplicateInstance)) {
        return None;
    }
    Some(after)
        .filter(|a| !a.is_empty())
        .or(keys.first().map(String::as_str))
        .map(str::to_owned)
}

fn take_page(
    entries: impl Iterator<Item = String>,
    after: &str,
    size: usize,
) -> (Vec<String>, bool) {
    let mut rest = entries.filter(|k| after.is_empty() || k.as_str() > after);
    let page: Vec<String> = rest.by_ref().take(size).collect();
    let more = rest.next().is_some();
    (page, more)
}

/// A fault as it fires on one request.
#[derive(Debug, Clone)]
enum Applied {
    Throttle {
        retry_after: u64,
        /// Sent instead of `retry_after` when set.
        header: Option<String>,
        policy: String,
        scope: ThrottleScope,
    },
    ServerError {
        status: u16,
        retry_after: Option<u64>,
    },
    Timeout(u64),
    Malformed,
    Truncated(u8),
    ForeignNextLink(String),
    NextLinkLoop {
        exact: bool,
    },
    Oversized(u32),
    Redirect(RedirectFault),
    NextLinkUserinfo(String),
    EndlessPages,
    DuplicateInstance,
}

/// The first armed fault that matches this request, its count spent; a
/// running Retry-After window throttles before any fault is consulted.
fn pick_fault(ss: &mut ScaleSetState, page: Option<PageInfo>, now: Instant) -> Option<Applied> {
    if let Some(w) = &ss.throttled {
        if w.until > now {
            let left = w.until.duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Some(Applied::Throttle {
                retry_after: secs.max(1),
                header: None,
                policy: w.policy.clone(),
                scope: ThrottleScope::ScaleSet,
            });
        }
        ss.throttled = None;
    }
    let index = ss.faults.iter().position(|f| {
        if f.count == Some(0) {
            return false;
        }
        // Faults that only a listing can show.
        let listing_only = matches!(
            f.kind,
            FaultKind::ForeignNextLink(_)
                | FaultKind::NextLinkLoop(_)
                | FaultKind::NextLinkUserinfo(_)
                | FaultKind::EndlessPages(_)
                | FaultKind::Redirect(_)
                | FaultKind::DuplicateInstance(_)
        );
        match (page, f.page) {
            (None, Some(_)) => false,
            (None, None) => !listing_only,
            (Some(p), Some(want)) => p.number == want,
            // A loop needs a page to loop from: page 2 onwards, or page 1
            // when the listing has only one.
            (Some(p), None) if matches!(f.kind, FaultKind::NextLinkLoop(_)) => {
                p.number >= 2 || !p.more
            }
            (Some(_), None) => true,
        }
    })?;
    let fault = &mut ss.faults[index];
    let applied = match &fault.kind {
        FaultKind::Throttle(t) => {
            if t.scope == ThrottleScope::ScaleSet {
                // Retry-After may be anything up to u64::MAX: the window ends within a
                // year, while the header still says what the fault asked.
                let window = Duration::from_secs(t.retry_after_seconds.min(365 * 86_400));
                ss.throttled = now
                    .checked_add(window)
                    .map(|until| super::state::ThrottleWindow {
                        until,
                        policy: t.policy.clone(),
                    });
            }
            Applied::Throttle {
                retry_after: t.retry_after_seconds,
                header: t.retry_after_header.clone(),
                policy: t.policy.clone(),
                scope: t.scope,
            }
        }
        FaultKind::ServerError(e) => Applied::ServerError {
            status: e.status,
            retry_after: e.retry_after_seconds,
        },
        FaultKind::Timeout(t) => Applied::Timeout(t.seconds.min(MAX_TIMEOUT_SECONDS)),
        FaultKind::MalformedJson(_) => Applied::Malformed,
        FaultKind::TruncatedJson(t) => Applied::Truncated(t.percent),
        FaultKind::ForeignNextLink(f) => Applied::ForeignNextLink(f.host.clone()),
        FaultKind::NextLinkLoop(l) => Applied::NextLinkLoop { exact: l.exact },
        FaultKind::OversizedBody(o) => Applied::Oversized(o.megabytes),
        FaultKind::Redirect(r) => Applied::Redirect(r.clone()),
        FaultKind::NextLinkUserinfo(u) => Applied::NextLinkUserinfo(u.userinfo.clone()),
        FaultKind::EndlessPages(_) => Applied::EndlessPages,
        FaultKind::DuplicateInstance(_) => Applied::DuplicateInstance,
    };
    if let Some(c) = &mut fault.count {
        *c -= 1;
        if *c == 0 {
            ss.faults.remove(index);
        }
    }
    Some(applied)
}

/// Compute's 429: `OperationNotAllowed` with the throttling policy in the
/// details and at 0 in `x-ms-ratelimit-remaining-resource`.
fn throttled(
    policy: &str,
    (retry_after, header): (u64, String),
    policies: (&str, &str),
    budget: (u32, u32),
) -> Reply {
    let now = jiff::Timestamp::now();
    let detail = json!({
        "operationGroup": policy,
        "startTime": now.to_string(),
        "endTime": i64::try_from(retry_after).ok().and_then(|s| now.checked_add(jiff::SignedDuration::from_secs(s)).ok()).unwrap_or(now).to_string(),
        "allowedRequestCount": 0,
        "measuredRequestCount": 1,
    });
    let body = json!({"error": {
        "code": "OperationNotAllowed",
        "message": "The server rejected the request because too many requests have been received for this subscription.",
        "details": [{
            "code": "TooManyRequests",
            "target": policy,
            "message": detail.to_string(),
        }],
    }});
    let mut entries = vec![(policies.0, budget.0), (policies.1, budget.1)];
    match entries.iter_mut().find(|(p, _)| *p == policy) {
        Some(e) => e.1 = 0,
        None => entries.insert(0, (policy, 0)),
    }
    let entries_header: Vec<String> = entries
        .iter()
        .map(|(p, n)| format!("Microsoft.Compute/{p};{n}"))
        .collect();
    Reply::json(StatusCode::TOO_MANY_REQUESTS, &body)
        .header("retry-after", header)
        .header(
            "x-ms-ratelimit-remaining-resource",
            entries_header.join(","),
        )
}

/// ARM's own 429 for a principal that spent the subscription's read budget.
fn subscription_throttled(sub: &str, actor: &str, wait: u64, header: String) -> Reply {
    Reply::error(
        StatusCode::TOO_MANY_REQUESTS,
        "SubscriptionRequestsThrottled",
        &format!(
            "Number of 'read' requests for subscription '{sub}' actor '{actor}' exceeded. Please try again after '{wait}' seconds after the additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information."
        ),
    )
    .header("retry-after", header)
    .header("x-ms-ratelimit-remaining-subscription-reads", "0")
}

/// Applies a status or body fault to an answer that would have been `body`.
fn apply_to_body(
    f: Applied,
    body: Value,
    (sub, actor): (&str, &str),
    policies: (&str, &str),
    budget: (u32, u32),
) -> Plan {
    match f {
        Applied::Throttle {
            retry_after,
            header,
            policy,
            scope,
        } => {
            let header = header.unwrap_or_else(|| retry_after.to_string());
            Plan::Now(match scope {
                ThrottleScope::ScaleSet => {
                    throttled(&policy, (retry_after, header), policies, budget)
                }
                ThrottleScope::Subscription => {
                    subscription_throttled(sub, actor, retry_after, header)
                }
            })
        }
        Applied::ServerError {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let (name, message) = match status {
                502 => ("BadGateway", "The gateway received an invalid response from 'Microsoft.Compute'.".to_owned()),
                503 => ("ServiceUnavailable", "The service is currently unavailable. Please retry the request later.".to_owned()),
                504 => ("GatewayTimeout", "The gateway did not receive a response from 'Microsoft.Compute' within the specified time period.".to_owned()),
                _ => (
                    "InternalServerError",
                    format!(
                        "Encountered internal server error. Diagnostic information: timestamp '{}', subscription id '{sub}', tracking id '{}', request correlation id '{}'.",
                        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
                        random_uuid(),
                        random_uuid()
                    ),
                ),
            };
            let mut r = Reply::error(code, name, &message);
            if let Some(s) = retry_after {
                r = r.header("retry-after", s.to_string());
            }
            Plan::Now(r)
        }
        Applied::Timeout(secs) => Plan::Hang(Duration::from_secs(secs)),
        Applied::Malformed => {
            // Valid-looking JSON with one stray comma: a parser must fail.
            let text = String::from_utf8_lossy(&to_bytes(&body)).into_owned();
            let broken = text.replacen(',', ",,", 1);
            let broken = if broken == text {
                format!("{text}}}")
            } else {
                broken
            };
            Plan::Now(Reply {
                status: StatusCode::OK,
                body: broken.into_bytes(),
                headers: Vec::new(),
            })
        }
        Applied::Truncated(pct) => {
            let mut bytes = to_bytes(&body);
            let cut = (bytes.len() * usize::from(pct) / 100).max(1);
            bytes.truncate(cut);
            Plan::Now(Reply {
                status: StatusCode::OK,
                body: bytes,
                headers: Vec::new(),
            })
        }
        Applied::Oversized(mb) => {
            // The padding is spliced into the serialized page rather than serialized itself:
            // escaping tens of MiB char by char takes seconds in a debug build, longer than
            // the clients under test wait for an answer's headers.
            const MARKER: &str = "__simulator_padding__";
            let mut body = body;
            let status = json!({"code": "OSState/Padding", "level": "Info", "displayStatus": "Padding", "message": MARKER});
            match body
                .pointer_mut("/value/0/properties/instanceView/statuses")
                .and_then(Value::as_array_mut)
            {
                Some(statuses) => statuses.push(status),
                None => body["padding"] = status,
            }
            let page = to_bytes(&body);
            let padding = mb as usize * 1024 * 1024;
            let at = page
                .windows(MARKER.len())
                .position(|w| w == MARKER.as_bytes())
                .unwrap_or(page.len());
            let mut bytes = Vec::with_capacity(page.len() + padding);
            bytes.extend_from_slice(&page[..at]);
            bytes.resize(bytes.len() + padding, b'x');
            bytes.extend_from_slice(page.get(at + MARKER.len()..).unwrap_or_default());
            Plan::Now(Reply {
                status: StatusCode::OK,
                body: bytes,
                headers: Vec::new(),
            })
        }
        // Link faults are applied by the listing itself.
        Applied::ForeignNextLink(_)
        | Applied::NextLinkLoop { .. }
        | Applied::NextLinkUserinfo(_)
        | Applied::EndlessPages
        | Applied::Redirect(_)
        | Applied::DuplicateInstance => Plan::Now(Reply::json(StatusCode::OK, &body)),
    }
}

impl Plan {
    fn map_reply(self, f: impl FnOnce(Reply) -> Reply) -> Plan {
        match self {
            Plan::Now(r) => Plan::Now(f(r)),
            hang => hang,
        }
    }
}

impl Reply {
    fn header_unless_present(self, name: &'static str, value: String) -> Self {
        if self.headers.iter().any(|(n, _)| *n == name) {
            self
        } else {
            self.header(name, value)
        }
    }
}

/// The scale set id in `'virtualMachineScaleSet/id' eq '<id>'` (quotes
/// around the property optional, as clients differ).
fn filter_scale_set_id(filter: &str) -> Option<String> {
    let lower = filter.to_lowercase();
    let at = lower.find(" eq ")?;
    let property = filter[..at].trim().trim_matches('\'');
    if !property.eq_ignore_ascii_case("virtualMachineScaleSet/id") {
        return None;
    }
    let value = filter[at + 4..].trim();
    let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(value.to_owned())
}

fn parse_scale_set_id(id: &str) -> Option<(String, String, String)> {
    match route(&format!("{id}/virtualMachines")) {
        Route::ListVmssVms { sub, rg, vmss } => Some((sub, rg, vmss)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_ignore_case() {
        assert_eq!(
            route(
                "/subscriptions/S/resourcegroups/RG/providers/microsoft.compute/virtualmachinescalesets/web/VIRTUALMACHINES"
            ),
            Route::ListVmssVms {
                sub: "S".into(),
                rg: "RG".into(),
                vmss: "web".into()
            }
        );
        assert!(matches!(
            route(
                "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/"
            ),
            Route::ListVms { .. }
        ));
        assert!(matches!(
            route(
                "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/x"
            ),
            Route::GetScaleSet { .. }
        ));
        assert_eq!(route("/subscriptions/S/resourceGroups/RG"), Route::Unknown);
        assert_eq!(route("/foo"), Route::Unknown);
    }

    #[test]
    fn skiptokens_round_trip_and_reject_garbage() {
        let t = SkipToken {
            after: "0000".into(),
            page: 3,
            nonce: 9,
        };
        let back = SkipToken::decode(&t.encode()).unwrap();
        assert_eq!((back.after.as_str(), back.page), ("0000", 3));
        assert!(SkipToken::decode("not-a-token").is_none());
    }

    #[test]
    fn next_link_keeps_the_query() {
        let q = Query::parse(
            "$expand=instanceView&$select=instanceView&api-version=2024-07-01&$skiptoken=old",
        );
        let link = q.with_skiptoken(&SkipToken {
            after: "a".into(),
            page: 2,
            nonce: 1,
        });
        assert!(link.starts_with(
            "$expand=instanceView&$select=instanceView&api-version=2024-07-01&$skiptoken="
        ));
        assert!(!link.contains("old"));
    }

    #[test]
    fn scale_set_filters_parse() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/flex";
        assert_eq!(
            filter_scale_set_id(&format!("'virtualMachineScaleSet/id' eq '{id}'")).as_deref(),
            Some(id)
        );
        assert_eq!(
            filter_scale_set_id(&format!("virtualMachineScaleSet/id eq '{id}'")).as_deref(),
            Some(id)
        );
        assert!(filter_scale_set_id("name eq 'x'").is_none());
        assert_eq!(
            parse_scale_set_id(id),
            Some(("s".into(), "rg".into(), "flex".into()))
        );
    }

    #[test]
    fn pages_follow_keys() {
        let keys = (0..12).map(|i| format!("{i:02}"));
        let (p1, more) = take_page(keys.clone(), "", 5);
        assert_eq!(p1.len(), 5);
        assert!(more);
        let (p3, more) = take_page(keys, "09", 5);
        assert_eq!(p3, ["10", "11"]);
        assert!(!more);
    }
}
