//! The ARM client and the shared poller against the simulator: real HTTPS on loopback, real
//! Entra-style tokens through azure_identity, real ARM error bodies and faults.
//!
//! One test binary; one module per topic: `listing`, `errors`, `throttling`, `hostile`
//! (responses not to be trusted) and `sign_in`.

mod errors;
mod hostile;
mod listing;
mod sign_in;
mod throttling;

use scaleset_watch::api::Cloud;
use scaleset_watch::azure::arm::client::{ArmClient, Limits, ScaleSetRef};
use scaleset_watch::azure::poller::{CredentialSource, PollError, Poller};
use scaleset_watch::azure::{self, ClientSecret, EndpointOverrides};
use ssw_simulator::{Fault, Scenario, Simulator, SimulatorHandle};
use std::io::Write;
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
