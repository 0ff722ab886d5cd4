//! The ARM client and the shared poller against the simulator: real HTTPS on loopback, real
//! Entra-style tokens through azure_identity, real ARM error bodies and faults.

use scaleset_watch::api::{Cloud, HealthPolicy};
use scaleset_watch::azure::arm::client::{ArmClient, Limits, ScaleSetRef};
use scaleset_watch::azure::poller::{CredentialSource, PollError, Poller};
use scaleset_watch::azure::{self, ClientSecret, EndpointOverrides};
use scaleset_watch::health::assess;
use ssw_simulator::{
    Fault, OutageBody, RedirectFault, Scenario, Simulator, SimulatorHandle, TokenFaultKind,
    TokenOutage,
};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The Ready condition reason a failed poll gets.
fn reason(e: &scaleset_watch::azure::poller::PollError) -> &'static str {
    scaleset_watch::health::Reason::of_poll_error(e).as_str()
}

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
const TENANT: &str = "0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b";
const CLIENT: &str = "8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e";
const OUTSIDER: &str = "11111111-2222-4333-8444-555555555555";
/// Another principal that may read the subscription.
const PEER: &str = "22222222-3333-4444-8555-666666666666";

fn scenario() -> String {
    format!(
        r#"
servicePrincipals:
  - {{tenantId: {TENANT}, clientId: {CLIENT}, clientSecret: right, subscriptions: [{SUB}]}}
  - {{tenantId: {TENANT}, clientId: {OUTSIDER}, clientSecret: outsider, subscriptions: []}}
  - {{tenantId: {TENANT}, clientId: {PEER}, clientSecret: peer, subscriptions: [{SUB}]}}
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
          - name: twin-uniform
            generate: {{count: 6, zones: ["1", "2"]}}
            instances: &twins
              - {{id: 0, appHealth: healthy}}
              - {{id: 1, appHealth: unhealthy}}
              - {{id: 2, appHealth: unknown, timeCreated: "2020-01-01T00:00:00Z"}}
              - {{id: 3, appHealth: initializing}}
              - {{id: 4, appHealth: healthy, latestModelApplied: false, protectFromScaleIn: true}}
              - {{id: 5, appHealth: healthy, powerState: stopped}}
          - name: twin-flex
            orchestrationMode: Flexible
            generate: {{count: 6, zones: ["1", "2"]}}
            instances: *twins
      - name: rg-b
        scaleSets:
          - name: faulty
            pageSize: 2
            generate: {{count: 3}}
"#
    )
}

struct Env {
    sim: SimulatorHandle,
    _ca: tempfile::NamedTempFile,
    http: reqwest::Client,
    overrides: EndpointOverrides,
}

/// A simulator serving this file's scenario on a port of its own.
async fn simulator() -> SimulatorHandle {
    let scenario = Scenario::from_yaml(&scenario()).expect("scenario parses");
    Simulator::start(scenario, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts")
}

/// A plain-HTTP listener on loopback that counts the connections it is offered (and drops
/// them): where a request sent in clear would arrive.
async fn plain_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, connections)
}

impl Env {
    async fn start() -> Self {
        Self::start_trusting(&[]).await
    }

    /// The client also trusts `other_cas`, so that a request to another simulator (a decoy
    /// a redirect points to) would get through TLS and show in that simulator's log.
    async fn start_trusting(other_cas: &[&str]) -> Self {
        let sim = simulator().await;
        let mut ca = tempfile::NamedTempFile::new().expect("temp file");
        ca.write_all(sim.ca_pem().as_bytes()).expect("write CA");
        for other in other_cas {
            ca.write_all(other.as_bytes()).expect("write CA");
        }
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

    fn sim_ref(&self, vmss: &str) -> ssw_simulator::ScaleSetRef {
        self.sim_ref_in("rg", vmss)
    }

    fn sim_ref_in(&self, rg: &str, vmss: &str) -> ssw_simulator::ScaleSetRef {
        ssw_simulator::ScaleSetRef::new(SUB, rg, vmss)
    }

    fn list_requests(&self, vmss: &str) -> u64 {
        self.list_requests_in("rg", vmss)
    }

    fn list_requests_in(&self, rg: &str, vmss: &str) -> u64 {
        self.sim
            .request_stats()
            .scale_set(&self.sim_ref_in(rg, vmss))
            .list_pages
            .count
    }

    fn set_faults(&self, vmss: &str, faults: &[&str]) {
        self.sim
            .set_faults(
                &self.sim_ref(vmss),
                faults.iter().map(|f| fault(f)).collect(),
            )
            .expect("fault set");
    }
}

fn target(vmss: &str) -> ScaleSetRef {
    target_in("rg", vmss)
}

fn target_in(rg: &str, vmss: &str) -> ScaleSetRef {
    ScaleSetRef {
        subscription_id: SUB.into(),
        resource_group: rg.into(),
        scale_set_name: vmss.into(),
        api_version: "2024-11-01".into(),
        model_view: false,
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
    yaml_serde::from_str(yaml).expect("fault parses")
}

type Polled = Result<scaleset_watch::azure::arm::snapshot::ScaleSetSnapshot, PollError>;

async fn poll(poller: &Poller, vmss: &str) -> Polled {
    poll_as(poller, vmss, CLIENT, "right").await
}

async fn poll_as(poller: &Poller, vmss: &str, client: &str, secret: &str) -> Polled {
    poll_in(poller, "rg", vmss, client, secret).await
}

async fn poll_in(poller: &Poller, rg: &str, vmss: &str, client: &str, secret: &str) -> Polled {
    poller
        .fetch_once(
            Cloud::AzurePublic,
            &target_in(rg, vmss),
            &principal(client, secret),
        )
        .await
}

#[tokio::test]
async fn lists_every_page_and_judges_the_fleet() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let snapshot = poll(&poller, "workers").await.expect("poll succeeds");
    assert_eq!(snapshot.instances().len(), 12);
    assert_eq!(
        env.list_requests("workers"),
        3,
        "12 instances at 5 a page are 3 pages"
    );
    let fleet = assess(&snapshot, &HealthPolicy::default());
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
async fn an_instance_listed_on_two_pages_counts_once() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    // Every page repeats one instance: page 1 its own first, later pages the one before's last.
    env.sim
        .set_faults(
            &env.sim_ref("workers"),
            vec![fault("{duplicateInstance: {}}")],
        )
        .expect("fault set");
    let snapshot = poll(&poller, "workers").await.expect("poll succeeds");
    assert_eq!(snapshot.instances().len(), 12);
    let fleet = assess(&snapshot, &HealthPolicy::default());
    assert_eq!(fleet.counts.total, 12);
    assert_eq!(fleet.counts.healthy, 10);
    assert_eq!(fleet.counts.disks_failed, 1);
    assert_eq!(env.list_requests("workers"), 3);
}

#[tokio::test]
async fn arm_errors_map_to_ready_reasons() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let wrong_secret = poll_as(&poller, "workers", CLIENT, "wrong")
        .await
        .expect_err("wrong secret fails");
    assert_eq!(
        reason(&wrong_secret),
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
    assert_eq!(reason(&outsider), "Forbidden", "{outsider}");
    assert!(
        outsider.to_string().contains("AuthorizationFailed"),
        "{outsider}"
    );

    let missing = poll(&poller, "nope").await.expect_err("unknown scale set");
    assert_eq!(reason(&missing), "ScaleSetNotFound", "{missing}");
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
    assert_eq!(reason(&bad), "InvalidRequest", "{bad}");
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
    let snapshot = poll(&poller, "faulty").await.expect("retries get through");
    assert_eq!(snapshot.instances().len(), 5);
    assert_eq!(env.list_requests("faulty"), 5, "2 failed + 3 pages");

    env.sim
        .set_faults(
            &env.sim_ref("faulty"),
            vec![fault("{serverError: {status: 500}}")],
        )
        .expect("fault set");
    let before = env.list_requests("faulty");
    let err = poll(&poller, "faulty").await.expect_err("persistent 500");
    assert_eq!(reason(&err), "AzureUnavailable");
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
    assert_eq!(reason(&err), "Throttled");
    let after = err.retry_after().expect("retry-after known");
    assert!(
        after > Duration::from_secs(25) && after <= Duration::from_secs(30),
        "{after:?}"
    );
    let sent = env.list_requests("faulty");
    let again = poll(&poller, "faulty")
        .await
        .expect_err("the throttled scale set is gated");
    assert_eq!(reason(&again), "Throttled");
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
        assert_eq!(reason(&err), "InvalidResponse", "{yaml}: {err}");
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
    assert_eq!(reason(&err), "AzureUnavailable", "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn watches_of_the_same_scale_set_share_its_scheduled_fetch() {
    use futures::StreamExt;
    use scaleset_watch::azure::poller::WatchId;
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
    let snapshot = ours.result.expect("listed");
    assert_eq!(snapshot.instances().len(), 12);
    let seen_by_b = poller
        .subscribe(&b, Cloud::AzurePublic, &upper, &creds, interval)
        .expect("fetched");
    assert_eq!(seen_by_b.seq, ours.seq, "the same fetch");
    let refused = poller
        .subscribe(&outsider, Cloud::AzurePublic, &lower, &theirs, interval)
        .expect("fetched")
        .result
        .expect_err("the outsider has no access");
    assert_eq!(reason(&refused), "Forbidden");
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
    assert_eq!(reason(&err), "AzureUnavailable", "{err}");
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
        let outage = TokenOutage {
            status,
            body,
            retry_after: None,
        };
        env.sim.set_token_outage(Some(outage)).expect("outage set");
        let err = poll(&poller, "workers").await.expect_err("no token");
        assert_eq!(reason(&err), "AzureUnavailable", "{status} {body:?}: {err}");
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
    assert_eq!(reason(&err), "AzureUnavailable", "{err}");

    env.sim.set_token_outage(None).expect("outage over");
    poll(&poller, "workers").await.expect("signs in again");
    // A refused secret during all this is still the user's to fix.
    let wrong = poll_as(&poller, "workers", CLIENT, "wrong")
        .await
        .expect_err("wrong secret");
    assert_eq!(reason(&wrong), "AuthenticationFailed", "{wrong}");
}

#[tokio::test]
async fn flexible_scale_sets_are_listed_through_their_vms() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for api_version in ["2025-11-01", "2024-11-01"] {
        let mut flex = target("flex");
        flex.api_version = api_version.into();
        let snapshot = poller
            .fetch_once(Cloud::AzurePublic, &flex, &principal(CLIENT, "right"))
            .await
            .unwrap_or_else(|e| panic!("{api_version}: {e}"));
        assert_eq!(snapshot.instances().len(), 3, "{api_version}");
        let fleet = assess(&snapshot, &HealthPolicy::default());
        assert_eq!(
            fleet.counts.no_instance_view, 0,
            "{api_version}: instance views were fetched"
        );
        assert_eq!(fleet.counts.healthy, 2, "{api_version}");
        assert_eq!(
            fleet.orchestration_mode,
            scaleset_watch::api::OrchestrationMode::Flexible,
            "{api_version}"
        );
        assert_eq!(fleet.counts.vm_agent_not_ready, 1, "{api_version}");
        assert_eq!(
            fleet.unhealthy[0].instance_id, "flex_1",
            "{api_version}: the VM's name"
        );
    }
}

#[tokio::test]
async fn arm_traffic_is_observed_for_metrics() {
    use scaleset_watch::azure::arm::client::RequestObserver;
    use scaleset_watch::controller::metrics::Metrics;
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

#[tokio::test]
async fn any_retry_after_is_survived_and_honoured_for_at_most_ten_minutes() {
    let env = Env::start().await;
    let ten_minutes = Duration::from_secs(600);
    assert_eq!(Limits::default().max_retry_after, ten_minutes);
    for header in [
        "18446744073709551615",
        "99999999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "31536000",
    ] {
        // A fresh client: no gate left closed by the previous case.
        let poller = env.poller(fast_limits());
        env.set_faults(
            "faulty",
            &[&format!(
                "{{throttle: {{retryAfterSeconds: 31536000, retryAfterHeader: '{header}'}}}}"
            )],
        );
        let err = poll(&poller, "faulty").await.expect_err(header);
        assert_eq!(reason(&err), "Throttled", "{header}: {err}");
        assert_eq!(err.retry_after(), Some(ten_minutes), "{header}: {err}");
        let sent = env.list_requests("faulty");
        let again = poll(&poller, "faulty").await.expect_err("gated");
        assert!(
            again.to_string().contains("ThrottledLocally"),
            "{header}: {again}"
        );
        let left = again.retry_after().expect("known");
        assert!(
            left <= ten_minutes && left > Duration::from_secs(590),
            "{header}: {left:?}"
        );
        assert_eq!(env.list_requests("faulty"), sent, "{header}");
    }
}

#[tokio::test]
async fn a_throttle_stops_only_what_azure_throttles() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    // Compute throttles reads of one scale set: rg/faulty, not rg-b/faulty.
    env.set_faults("faulty", &["{throttle: {retryAfterSeconds: 30}}"]);
    let err = poll(&poller, "faulty").await.expect_err("throttled");
    assert!(err.to_string().contains("OperationNotAllowed"), "{err}");
    let pages = poll_in(&poller, "rg-b", "faulty", CLIENT, "right")
        .await
        .expect("a scale set of the same name in another resource group is not throttled");
    assert_eq!(pages.instances().len(), 3);
    assert_eq!(env.list_requests_in("rg-b", "faulty"), 2);

    // ARM throttles one principal's reads of the whole subscription, not another's.
    env.set_faults(
        "workers",
        &["{throttle: {retryAfterSeconds: 30, scope: subscription}, count: 1}"],
    );
    let err = poll(&poller, "workers").await.expect_err("throttled");
    assert!(
        err.to_string().contains("SubscriptionRequestsThrottled"),
        "{err}"
    );
    let sent = env.sim.request_stats().total;
    let gated = poll_in(&poller, "rg-b", "faulty", CLIENT, "right")
        .await
        .expect_err("the whole subscription is throttled for this principal");
    assert!(gated.to_string().contains("ThrottledLocally"), "{gated}");
    assert_eq!(env.sim.request_stats().total, sent, "nothing was sent");
    let pages = poll_as(&poller, "workers", PEER, "peer")
        .await
        .expect("another principal has a budget of its own");
    assert_eq!(pages.instances().len(), 12);
}

#[tokio::test]
async fn redirects_from_arm_are_refused_and_nothing_reaches_the_other_host() {
    // The other host serves the same fleet over TLS the client trusts: a redirect followed
    // there would be listed and judged as the scale set.
    let decoy = simulator().await;
    let env = Env::start_trusting(&[decoy.ca_pem()]).await;
    let (plain_port, plain_connections) = plain_listener().await;
    let poller = env.poller(fast_limits());
    let elsewhere = decoy.base_url().to_owned();
    let in_clear = format!("http://127.0.0.1:{plain_port}");
    let cases = [
        (301, &elsewhere, ""),
        (302, &elsewhere, ""),
        (307, &elsewhere, ""),
        (308, &elsewhere, ""),
        (301, &in_clear, ""),
        (308, &in_clear, ""),
        (307, &elsewhere, ", page: 2"),
    ];
    for (status, to, page) in cases {
        env.set_faults(
            "faulty",
            &[&format!(
                "{{redirect: {{status: {status}, to: '{to}'}}{page}}}"
            )],
        );
        let err = poll(&poller, "faulty").await.expect_err("redirected");
        assert_eq!(reason(&err), "InvalidResponse", "{status} {to}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("HTTP {status}"))
                && message.contains("redirects are refused"),
            "{message}"
        );
    }
    assert_eq!(
        decoy.request_stats().total,
        0,
        "nothing reached the other host"
    );
    assert_eq!(
        plain_connections.load(Ordering::SeqCst),
        0,
        "nothing was sent in clear"
    );
    let redirected = env
        .sim
        .request_stats()
        .recent
        .iter()
        .filter(|r| (300..400).contains(&r.status))
        .count();
    assert_eq!(redirected, cases.len(), "one redirect answered per poll");
}

#[tokio::test]
async fn a_redirecting_token_endpoint_never_gets_the_secret_again() {
    let decoy = simulator().await;
    let env = Env::start_trusting(&[decoy.ca_pem()]).await;
    let poller = env.poller(fast_limits());
    for status in [307, 308, 302] {
        env.sim
            .set_token_fault(Some(
                TokenFaultKind::Redirect(RedirectFault {
                    status,
                    to: decoy.base_url().to_owned(),
                })
                .into(),
            ))
            .expect("fault set");
        let err = poll(&poller, "workers").await.expect_err("no token");
        assert_eq!(reason(&err), "AuthenticationFailed", "{status}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("HTTP {status}"))
                && message.contains("redirects are refused"),
            "{message}"
        );
    }
    assert_eq!(
        decoy.request_stats().total,
        0,
        "the form with the client secret went nowhere else"
    );
    assert_eq!(env.sim.request_stats().tokens.count, 3, "one POST per poll");
    assert_eq!(
        env.list_requests("workers"),
        0,
        "no ARM call without a token"
    );
    env.sim.set_token_fault(None).expect("fault over");
    poll(&poller, "workers").await.expect("signs in again");
}

#[tokio::test]
async fn a_token_answer_without_a_usable_token_is_refused_before_arm() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    for answer in [
        serde_json::json!({}),
        serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": ""}),
        // azure_identity adds this to the clock unchecked.
        serde_json::json!({"token_type": "Bearer", "expires_in": i64::MAX, "access_token": "t"}),
    ] {
        env.sim
            .set_token_fault(Some(TokenFaultKind::Answer(answer.clone()).into()))
            .expect("fault set");
        let err = poll(&poller, "workers").await.expect_err("no usable token");
        assert_eq!(reason(&err), "AuthenticationFailed", "{answer}: {err}");
        assert!(
            err.to_string().contains("the sign-in service answered"),
            "{answer}: {err}"
        );
    }
    let stats = env.sim.request_stats();
    assert_eq!(stats.total, stats.tokens.count, "ARM saw no request at all");
    // Nothing unusable was cached: once the sign-in service behaves, polls work.
    env.sim.set_token_fault(None).expect("fault over");
    poll(&poller, "workers").await.expect("signs in again");
}

#[tokio::test]
async fn a_next_link_with_user_info_is_not_followed() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    env.set_faults(
        "faulty",
        &["{nextLinkUserinfo: {userinfo: 'admin:hunter2'}, page: 1}"],
    );
    let err = poll(&poller, "faulty").await.expect_err("refused");
    assert_eq!(reason(&err), "InvalidResponse", "{err}");
    assert!(err.to_string().contains("user info"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert_eq!(env.list_requests("faulty"), 1, "page 2 was never asked for");
}

#[tokio::test]
async fn a_server_minting_skiptokens_for_ever_is_stopped_at_the_page_bound() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    env.set_faults("faulty", &["{endlessPages: {}}"]);
    let err = poll(&poller, "faulty").await.expect_err("endless");
    assert_eq!(reason(&err), "InvalidResponse", "{err}");
    assert!(err.to_string().contains("more than 200 pages"), "{err}");
    assert_eq!(
        env.list_requests("faulty"),
        200,
        "stopped at the documented bound"
    );
}

#[tokio::test]
async fn bytes_per_listing_are_capped() {
    let env = Env::start().await;
    // Each of the 3 pages carries 2 MiB more: every page fits a page's cap, all three do not
    // fit 5 MiB.
    env.set_faults("faulty", &["{oversizedBody: {megabytes: 2}}"]);
    let capped = env.poller(Limits {
        max_page_bytes: 3 << 20,
        max_poll_bytes: 5 << 20,
        ..fast_limits()
    });
    let err = poll(&capped, "faulty").await.expect_err("too much in all");
    assert_eq!(reason(&err), "InvalidResponse", "{err}");
    assert!(
        err.to_string().contains("larger than 5 MiB in all"),
        "{err}"
    );
    assert_eq!(env.list_requests("faulty"), 3);
    let roomy = env.poller(Limits {
        max_page_bytes: 3 << 20,
        max_poll_bytes: 8 << 20,
        ..fast_limits()
    });
    let pages = poll(&roomy, "faulty").await.expect("fits");
    assert_eq!(pages.instances().len(), 5);
}

#[tokio::test]
async fn a_sign_in_outage_asking_to_wait_a_day_does_not_hold_the_poll() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    env.sim
        .set_token_outage(Some(TokenOutage {
            status: 503,
            body: OutageBody::Entra,
            retry_after: Some("86400".into()),
        }))
        .expect("outage set");
    // The SDK's retry policy would sleep for a day before its next attempt; the poll must
    // end with the outage, not hang (the bound only guards against that hang).
    let err = tokio::time::timeout(Duration::from_secs(120), poll(&poller, "workers"))
        .await
        .expect("the poll ends")
        .expect_err("no token");
    assert_eq!(reason(&err), "AzureUnavailable", "{err}");
    let tokens = env.sim.request_stats().tokens.count;
    assert!(
        (2..=4).contains(&tokens),
        "the SDK's few quick retries, no more: {tokens}"
    );
}

/// The same instance states in a Uniform and a Flexible set judge alike, from the model view
/// each lists (the Flexible one through its VMs); only what Flexible VMs do not have
/// (latestModelApplied, protection policies) differs. A watch without the model view gets a
/// fetch of its own, trimmed by `$select`.
#[tokio::test]
async fn uniform_and_flexible_twins_judge_alike_with_the_model_view() {
    let env = Env::start().await;
    let poller = env.poller(fast_limits());
    let mut judged = Vec::new();
    for vmss in ["twin-uniform", "twin-flex"] {
        let mut t = target(vmss);
        t.api_version = "2025-11-01".into();
        t.model_view = true;
        let snapshot = poller
            .fetch_once(Cloud::AzurePublic, &t, &principal(CLIENT, "right"))
            .await
            .unwrap_or_else(|e| panic!("{vmss}: {e}"));
        judged.push(assess(&snapshot, &HealthPolicy::default()));
    }
    let (uniform, flex) = (&judged[0], &judged[1]);
    let a = &uniform.counts.application_health;
    assert_eq!(
        (a.healthy, a.unhealthy, a.unknown, a.initializing),
        (3, 1, 1, 1),
        "the stopped VM still reports its last application health"
    );
    assert_eq!(a.not_reported, 0);
    // Unhealthy: the unhealthy app, the unknown one created long ago, the stopped VM; the
    // initializing one was created just now, within the grace period.
    assert_eq!(uniform.counts.unhealthy, 3);
    assert_eq!(uniform.counts.application_health_pending, 1);
    assert_eq!(uniform.counts.outdated_model, Some(1));
    assert_eq!(uniform.outdated, vec!["4"]);
    assert_eq!(uniform.counts.protected_from_scale_in, Some(1));
    let zones: Vec<(&str, u32)> = uniform
        .zones
        .iter()
        .map(|z| (z.zone.as_str(), z.total))
        .collect();
    assert_eq!(zones, vec![("1", 3), ("2", 3)]);

    let same = |f: &scaleset_watch::health::FleetHealth| {
        let c = &f.counts;
        (
            c.total,
            c.healthy,
            c.unhealthy,
            c.application_health.clone(),
            c.application_health_pending,
            f.zones.clone(),
            f.healthy_percent,
        )
    };
    assert_eq!(same(uniform), same(flex));
    use scaleset_watch::api::OrchestrationMode;
    assert_eq!(uniform.orchestration_mode, OrchestrationMode::Uniform);
    assert_eq!(flex.orchestration_mode, OrchestrationMode::Flexible);
    assert_eq!(
        flex.counts.outdated_model, None,
        "Flexible VMs have no scale set model"
    );
    assert_eq!(
        flex.counts.protected_from_scale_in, None,
        "nor protection policies: not 0, unknown"
    );

    // A watch of the same set without the model view cannot be served the full pages' fetch
    // (nor the other way round): the two are scheduled as two sets, and its fetch is trimmed.
    let mut full = target("twin-uniform");
    full.api_version = "2025-11-01".into();
    full.model_view = true;
    let mut trimmed = full.clone();
    trimmed.model_view = false;
    let watch = |name: &str| scaleset_watch::azure::poller::WatchId {
        namespace: "ns".into(),
        name: name.into(),
    };
    let creds = principal(CLIENT, "right");
    let interval = Duration::from_secs(600);
    poller.subscribe(&watch("full"), Cloud::AzurePublic, &full, &creds, interval);
    poller.subscribe(
        &watch("trimmed"),
        Cloud::AzurePublic,
        &trimmed,
        &creds,
        interval,
    );
    assert_eq!(poller.scheduled_sets(), 2, "one set per view");
    poller.stop();
    let before = env.list_requests("twin-uniform");
    let snapshot = poller
        .fetch_once(Cloud::AzurePublic, &trimmed, &creds)
        .await
        .expect("poll succeeds");
    assert_eq!(env.list_requests("twin-uniform"), before + 1);
    let f = assess(&snapshot, &HealthPolicy::default());
    assert_eq!(f.counts.outdated_model, None);
    assert!(f.zones.is_empty());
    assert_eq!(
        f.counts.application_health_pending, 2,
        "without timeCreated, unknown and initializing get no grace"
    );
}
