//! The ARM client and the shared poller against the simulator: real HTTPS on loopback, real
//! Entra-style tokens through azure_identity, real ARM error bodies and faults.

use scaleset_watch::arm::client::{ArmClient, Limits, ScaleSetRef};
use scaleset_watch::azure::{self, ClientSecret, EndpointOverrides};
use scaleset_watch::crd::{Cloud, HealthPolicy};
use scaleset_watch::health::assess;
use scaleset_watch::poller::{CredentialSource, PollError, Poller};
use scaleset_watch::simulator::{
    Fault, OutageBody, Scenario, Simulator, SimulatorHandle, TokenOutage,
};
use std::io::Write;
use std::time::Duration;

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
const TENANT: &str = "0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b";
const CLIENT: &str = "8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e";
const OUTSIDER: &str = "11111111-2222-4333-8444-555555555555";

fn scenario() -> String {
    format!(
        r#"
servicePrincipals:
  - {{tenantId: {TENANT}, clientId: {CLIENT}, clientSecret: right, subscriptions: [{SUB}]}}
  - {{tenantId: {TENANT}, clientId: {OUTSIDER}, clientSecret: outsider, subscriptions: []}}
subscriptions:
  - id: {SUB}
    tenantId: {TENANT}
    resourceGroups:
      - name: rg
        scaleSets:
          - name: workers
            pageSize: 5
            generate: {{count: 12}}
            instances:
              - {{id: 3, disks: [{{name: os, state: failed, message: "disk gone"}}]}}
              - {{id: 7, powerState: deallocated}}
          - name: faulty
            pageSize: 2
            generate: {{count: 5}}
          - name: flex
            orchestrationMode: Flexible
            pageSize: 2
            generate: {{count: 3}}
            instances:
              - {{id: 1, vmAgent: notReady}}
"#
    )
}

struct Env {
    sim: SimulatorHandle,
    _ca: tempfile::NamedTempFile,
    http: reqwest::Client,
    overrides: EndpointOverrides,
}

impl Env {
    async fn start() -> Self {
        let scenario = Scenario::from_yaml(&scenario()).expect("scenario parses");
        let sim = Simulator::start(scenario, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator starts");
        let mut ca = tempfile::NamedTempFile::new().expect("temp file");
        ca.write_all(sim.ca_pem().as_bytes()).expect("write CA");
        let http = azure::http_client(Some(ca.path())).expect("client trusts the simulator CA");
        let url = url::Url::parse(sim.base_url()).expect("url");
        Self {
            sim,
            _ca: ca,
            http,
            overrides: EndpointOverrides {
                arm: Some(url.clone()),
                authority: Some(url),
            },
        }
    }

    fn poller(&self, limits: Limits) -> Poller {
        Poller::new(
            ArmClient::new(self.http.clone(), limits),
            self.http.clone(),
            self.overrides.clone(),
        )
    }

    fn sim_ref(&self, vmss: &str) -> scaleset_watch::simulator::ScaleSetRef {
        scaleset_watch::simulator::ScaleSetRef::new(SUB, "rg", vmss)
    }

    fn list_requests(&self, vmss: &str) -> u64 {
        self.sim
            .request_stats()
            .scale_set(&self.sim_ref(vmss))
            .list_pages
            .count
    }
}

fn target(vmss: &str) -> ScaleSetRef {
    ScaleSetRef {
        subscription_id: SUB.into(),
        resource_group: "rg".into(),
        scale_set_name: vmss.into(),
        api_version: "2024-11-01".into(),
    }
}

fn principal(client: &str, secret: &str) -> CredentialSource {
    CredentialSource::ServicePrincipal(ClientSecret {
        tenant_id: TENANT.into(),
        client_id: client.into(),
        client_secret: secret.into(),
    })
}

fn fast_limits() -> Limits {
    Limits {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        max_inline_throttle_wait: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn fault(yaml: &str) -> Fault {
    serde_yaml::from_str(yaml).expect("fault parses")
}

type Polled = Result<scaleset_watch::poller::Fetched, PollError>;

async fn poll(poller: &Poller, vmss: &str) -> Polled {
    poll_as(poller, vmss, CLIENT, "right").await
}

async fn poll_as(poller: &Poller, vmss: &str, client: &str, secret: &str) -> Polled {
    poller
        .fetch_once(
            Cloud::AzurePublic,
            &target(vmss),
            &principal(client, secret),
        )
        .await
}

#[tokio::test]
async fn lists_every_page_and_judges_the_fleet() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let pages = poll(&poller, "workers").await.expect("poll succeeds");
    let vms = pages.vms().expect("pages parse");
    assert_eq!(vms.len(), 12);
    assert_eq!(
        env.list_requests("workers"),
        3,
        "12 instances at 5 a page are 3 pages"
    );
    let fleet = assess(&vms, &HealthPolicy::default());
    assert_eq!(fleet.counts.total, 12);
    assert_eq!(fleet.counts.healthy, 10);
    assert_eq!(fleet.counts.disks_failed, 1);
    assert_eq!(fleet.counts.deallocated, 1);
    let ids: Vec<&str> = fleet
        .unhealthy
        .iter()
        .map(|u| u.instance_id.as_str())
        .collect();
    assert_eq!(ids, vec!["3", "7"]);
    assert_eq!(
        fleet.unhealthy[0].reasons,
        vec!["disk os failed: disk gone".to_string()]
    );
}

#[tokio::test]
async fn arm_errors_map_to_ready_reasons() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let wrong_secret = poll_as(&poller, "workers", CLIENT, "wrong")
        .await
        .expect_err("wrong secret fails");
    assert_eq!(
        wrong_secret.reason(),
        "AuthenticationFailed",
        "{wrong_secret}"
    );
    assert!(
        !wrong_secret.to_string().contains("wrong"),
        "the secret must not leak: {wrong_secret}"
    );
    // Entra's own words, although its error_description has CRLF line breaks (as the
    // simulator's has, like Entra's) that azure_identity cannot read on its own.
    let message = wrong_secret.to_string();
    assert!(
        message.contains("AADSTS7000215: Invalid client secret provided.")
            && message.contains(" Trace ID: ")
            && !message.contains("invalid type"),
        "{message}"
    );

    let outsider = poll_as(&poller, "workers", OUTSIDER, "outsider")
        .await
        .expect_err("no access");
    assert_eq!(outsider.reason(), "Forbidden", "{outsider}");
    assert!(
        outsider.to_string().contains("AuthorizationFailed"),
        "{outsider}"
    );

    let missing = poll(&poller, "nope").await.expect_err("unknown scale set");
    assert_eq!(missing.reason(), "ScaleSetNotFound", "{missing}");
    assert!(
        missing.to_string().contains("ResourceNotFound"),
        "{missing}"
    );

    let mut bad_version = target("workers");
    bad_version.api_version = "1999-01-01".into();
    let bad = poller
        .fetch_once(
            Cloud::AzurePublic,
            &bad_version,
            &principal(CLIENT, "right"),
        )
        .await
        .expect_err("bad api-version");
    assert_eq!(bad.reason(), "InvalidRequest", "{bad}");
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{serverError: {status: 503}, count: 2}")],
        )
        .expect("fault set");
    let pages = poll(&poller, "faulty").await.expect("retries get through");
    assert_eq!(pages.vms().expect("parse").len(), 5);
    assert_eq!(env.list_requests("faulty"), 5, "2 failed + 3 pages");

    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{serverError: {status: 500}}")],
        )
        .expect("fault set");
    let before = env.list_requests("faulty");
    let err = poll(&poller, "faulty").await.expect_err("persistent 500");
    assert_eq!(err.reason(), "AzureUnavailable");
    assert_eq!(
        env.list_requests("faulty") - before,
        u64::from(Limits::default().attempts)
    );

    // A 404 is final: one request, no retry.
    let sent = env.sim.request_stats().total;
    let _ = poll(&poller, "nope").await.expect_err("404");
    let tokens = 0; // the credential's token is cached, so only the list call is sent
    assert_eq!(env.sim.request_stats().total - sent, 1 + tokens);
}

#[tokio::test]
async fn throttling_honours_retry_after_and_fails_fast_until_it_passes() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    // Short enough to wait out inside the call.
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{throttle: {retryAfterSeconds: 1}, count: 1}")],
        )
        .expect("fault set");
    let started = std::time::Instant::now();
    poll(&poller, "faulty")
        .await
        .expect("waits out a 1s throttle");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "did not wait for Retry-After"
    );

    // Too long to wait: the poll fails with the delay, and the next poll is not even sent.
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{throttle: {retryAfterSeconds: 30}}")],
        )
        .expect("fault set");
    let err = poll(&poller, "faulty").await.expect_err("throttled");
    assert_eq!(err.reason(), "Throttled");
    let after = err.retry_after().expect("retry-after known");
    assert!(
        after > Duration::from_secs(25) && after <= Duration::from_secs(30),
        "{after:?}"
    );
    let sent = env.list_requests("faulty");
    let again = poll(&poller, "faulty")
        .await
        .expect_err("the throttled scale set is gated");
    assert_eq!(again.reason(), "Throttled");
    assert_eq!(
        env.list_requests("faulty"),
        sent,
        "nothing sent while the gate is closed"
    );
    // Compute throttled that scale set's reads, not the whole subscription: others go on.
    poll(&poller, "workers")
        .await
        .expect("another scale set is not gated");
}

#[tokio::test]
async fn bad_responses_are_invalid_not_fatal() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for (yaml, expect) in [
        ("{malformedJson: {}}", "invalid JSON"),
        (
            "{truncatedJson: {percent: 50}}",
            "invalid JSON: unexpected end of input",
        ),
        (
            "{foreignNextLink: {host: evil.example.com}, page: 1}",
            "refusing to send the token",
        ),
        ("{nextLinkLoop: {exact: true}, page: 2}", "loops back"),
        ("{oversizedBody: {megabytes: 40}}", "larger than"),
    ] {
        env.sim
            .set_faults(&env.sim_ref("faulty"), vec![fault(yaml)])
            .expect("fault set");
        let err = poll(&poller, "faulty").await.expect_err(yaml);
        assert_eq!(err.reason(), "InvalidResponse", "{yaml}: {err}");
        assert!(err.to_string().contains(expect), "{yaml}: {err}");
    }
}

#[tokio::test]
async fn a_hanging_arm_times_out_as_unavailable() {
    let env = Env::start().await;
    let limits = Limits {
        attempts: 2,
        request_timeout: Duration::from_millis(500),
        ..fast_limits()
    };
    let poller = env.poller(limits);
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{timeout: {seconds: 5}}")],
        )
        .expect("fault set");
    let err = poll(&poller, "faulty").await.expect_err("times out");
    assert_eq!(err.reason(), "AzureUnavailable", "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn watches_of_the_same_scale_set_share_its_scheduled_fetch() {
    use futures::StreamExt;
    use scaleset_watch::poller::WatchId;
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let mut triggers = poller.take_triggers().expect("triggers");
    // The CRD's shortest interval, so that the first fetch comes within 5s.
    let interval = Duration::from_secs(10);
    let creds = principal(CLIENT, "right");
    let watch = |name: &str| WatchId {
        namespace: "ns".into(),
        name: name.into(),
    };
    let (a, b, outsider) = (watch("a"), watch("b"), watch("outsider"));
    let (lower, upper) = (target("workers"), target("WORKERS"));
    assert!(
        poller
            .subscribe(&a, Cloud::AzurePublic, &lower, &creds, interval)
            .is_none()
    );
    assert!(
        poller
            .subscribe(&b, Cloud::AzurePublic, &upper, &creds, interval)
            .is_none()
    );
    // Other credentials never see a result fetched with someone else's.
    let theirs = principal(OUTSIDER, "outsider");
    assert!(
        poller
            .subscribe(&outsider, Cloud::AzurePublic, &lower, &theirs, interval)
            .is_none()
    );
    assert_eq!(poller.scheduled_sets(), 2, "one set per credentials");
    let mut told = Vec::new();
    while told.len() < 3 {
        let w = tokio::time::timeout(Duration::from_secs(20), triggers.next())
            .await
            .expect("each watch is told within its first interval")
            .expect("open");
        told.push(w.name);
    }
    told.sort();
    assert_eq!(told, ["a", "b", "outsider"]);
    assert_eq!(
        env.list_requests("workers"),
        3 + 1,
        "one fetch of 3 pages for both, one refused page for the outsider"
    );
    let ours = poller
        .subscribe(&a, Cloud::AzurePublic, &lower, &creds, interval)
        .expect("fetched");
    let pages = ours.result.expect("listed");
    assert_eq!(pages.vms().expect("parse").len(), 12);
    let seen_by_b = poller
        .subscribe(&b, Cloud::AzurePublic, &upper, &creds, interval)
        .expect("fetched");
    assert_eq!(seen_by_b.seq, ours.seq, "the same fetch");
    let refused = poller
        .subscribe(&outsider, Cloud::AzurePublic, &lower, &theirs, interval)
        .expect("fetched")
        .result
        .expect_err("the outsider has no access");
    assert_eq!(refused.reason(), "Forbidden");
    assert_eq!(
        env.list_requests("workers"),
        4,
        "reading a result fetches nothing"
    );
    poller.stop();
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let env = Env::start().await;
    let http = azure::http_client(None).expect("client");
    let poller = Poller::new(
        ArmClient::new(http.clone(), fast_limits()),
        http,
        env.overrides.clone(),
    );
    let err = poll(&poller, "workers")
        .await
        .expect_err("self-signed CA is not trusted by default");
    // The token request fails first, in the transport: nothing was said of the credentials.
    assert_eq!(err.reason(), "AzureUnavailable", "{err}");
    assert!(err.to_string().contains("sign-in service"), "{err}");
    assert_eq!(env.list_requests("workers"), 0);
}

#[tokio::test]
async fn a_sign_in_outage_is_azure_unavailable_not_an_authentication_failure() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for (status, body) in [
        (503, OutageBody::Entra),
        (429, OutageBody::Entra),
        (502, OutageBody::Html),
    ] {
        let outage = TokenOutage { status, body };
        env.sim.set_token_outage(Some(outage)).expect("outage set");
        let err = poll(&poller, "workers").await.expect_err("no token");
        assert_eq!(err.reason(), "AzureUnavailable", "{status} {body:?}: {err}");
        assert!(err.to_string().contains("sign-in service"), "{err}");
    }
    assert_eq!(
        env.list_requests("workers"),
        0,
        "no ARM call without a token"
    );

    // Nothing listens here: the sign-in service cannot be reached at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let unreachable = Poller::new(
        ArmClient::new(env.http.clone(), fast_limits()),
        env.http.clone(),
        EndpointOverrides {
            authority: Some(url::Url::parse(&format!("https://127.0.0.1:{port}")).expect("url")),
            ..env.overrides.clone()
        },
    );
    let err = poll(&unreachable, "workers").await.expect_err("no token");
    assert_eq!(err.reason(), "AzureUnavailable", "{err}");

    env.sim.set_token_outage(None).expect("outage over");
    poll(&poller, "workers").await.expect("signs in again");
    // A refused secret during all this is still the user's to fix.
    let wrong = poll_as(&poller, "workers", CLIENT, "wrong")
        .await
        .expect_err("wrong secret");
    assert_eq!(wrong.reason(), "AuthenticationFailed", "{wrong}");
}

#[tokio::test]
async fn flexible_scale_sets_are_listed_through_their_vms() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for api_version in ["2025-11-01", "2024-11-01"] {
        let mut flex = target("flex");
        flex.api_version = api_version.into();
        let pages = poller
            .fetch_once(Cloud::AzurePublic, &flex, &principal(CLIENT, "right"))
            .await
            .unwrap_or_else(|e| panic!("{api_version}: {e}"));
        let vms = pages.vms().expect("parse");
        assert_eq!(vms.len(), 3, "{api_version}");
        let fleet = assess(&vms, &HealthPolicy::default());
        assert_eq!(
            fleet.counts.no_instance_view, 0,
            "{api_version}: instance views were fetched"
        );
        assert_eq!(fleet.counts.healthy, 2, "{api_version}");
        assert_eq!(fleet.counts.vm_agent_not_ready, 1, "{api_version}");
        assert_eq!(
            fleet.unhealthy[0].instance_id, "flex_1",
            "{api_version}: the VM's name"
        );
    }
}

#[tokio::test]
async fn arm_traffic_is_observed_for_metrics() {
    use scaleset_watch::arm::client::RequestObserver;
    use scaleset_watch::metrics::Metrics;
    let env = Env::start().await;
    let metrics = std::sync::Arc::new(Metrics::default());
    let poller = Poller::new(
        ArmClient::new(env.http.clone(), fast_limits())
            .with_observer(metrics.clone() as std::sync::Arc<dyn RequestObserver>),
        env.http.clone(),
        env.overrides.clone(),
    );
    poll(&poller, "workers").await.expect("poll");
    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{throttle: {retryAfterSeconds: 30}}")],
        )
        .expect("fault set");
    let _ = poll(&poller, "faulty").await.expect_err("throttled");
    let text = metrics.encode().expect("encodes");
    assert!(
        text.contains(r#"scaleset_watch_arm_requests_total{code="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"scaleset_watch_arm_requests_total{code="429"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("scaleset_watch_arm_throttled_total 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"scaleset_watch_arm_remaining_subscription_reads{{subscription="{SUB}"}}"#
        )),
        "{text}"
    );
    // Compute's per-scale-set budgets (the simulator's defaults: 400 per 3 and 2500 per 30
    // minutes), less the list requests made for the scale set.
    let listed = env.list_requests("workers");
    assert_eq!(listed, 3);
    for (policy, budget) in [("GetVMScaleSetVM3Min", 400), ("GetVMScaleSetVM30Min", 2500)] {
        let line = format!(
            r#"scaleset_watch_arm_remaining_resource_reads{{subscription="{SUB}",resource_group="rg",scale_set="workers",policy="Microsoft.Compute/{policy}"}} {}"#,
            budget - listed
        );
        assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
    }
}
