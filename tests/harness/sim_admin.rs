//! tests/support/sim_admin.rs: the admin client against an in-process simulator serving the
//! demo fleet, each call checked against what the simulator's state then holds.

use crate::support::sim_admin::SimAdmin;
use ssw_simulator::{DEMO_SCENARIO, ScaleSetRef, Scenario, Simulator, SimulatorHandle};

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";

async fn start() -> (SimulatorHandle, SimAdmin) {
    let scenario = Scenario::from_yaml(DEMO_SCENARIO).expect("the demo fleet");
    let sim = Simulator::start(scenario, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts");
    let admin = SimAdmin::new(sim.base_url(), sim.ca_pem());
    (sim, admin)
}

fn web() -> ScaleSetRef {
    ScaleSetRef::new(SUB, "rg-demo", "web")
}

#[tokio::test]
async fn instances_are_changed_added_and_removed() {
    let (sim, admin) = start().await;
    assert!(admin.healthy().await);
    let before = admin.scale_set(&web()).await.ok().json();
    assert_eq!(before["instances"].as_array().map(Vec::len), Some(5));

    let a = admin
        .patch_instance(&web(), "2", "appHealth: unhealthy")
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = admin
        .put_instance(&web(), "9", "{\"powerState\": \"stopped\"}")
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(admin.remove_instance(&web(), "0").await.status, 204);
    assert_eq!(admin.remove_instance(&web(), "0").await.status, 404);
    let bad = admin
        .put_instance(&web(), "3", "powerState: sideways")
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().is_some(), "{}", bad.body);

    let after = admin.scale_set(&web()).await.ok().json();
    let ids: Vec<&str> = after["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "9"]);
    let state = sim.state().instances(&web()).expect("web");
    assert_eq!(state.len(), 5);
    let nowhere = ScaleSetRef::new(SUB, "rg-demo", "nowhere");
    assert_eq!(admin.scale_set(&nowhere).await.status, 404);
}

#[tokio::test]
async fn faults_are_armed_listed_and_cleared() {
    let (sim, admin) = start().await;
    let a = admin
        .set_faults(
            &web(),
            "- serverError: {status: 500}\n  count: 2\n- timeout: {}\n",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(sim.state().faults(&web()).expect("web").len(), 2);
    let listed = admin.faults(&web()).await.ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    // One fault alone, not in a list, replaces the two.
    admin.set_faults(&web(), "malformedJson: {}").await.ok();
    assert_eq!(sim.state().faults(&web()).expect("web").len(), 1);
    assert_eq!(admin.clear_faults(&web()).await.status, 204);
    assert!(sim.state().faults(&web()).expect("web").is_empty());
    assert_eq!(admin.set_faults(&web(), "nonsense: {}").await.status, 400);
}

#[tokio::test]
async fn request_counts_tokens_and_sign_in_faults() {
    let (sim, admin) = start().await;
    assert_eq!(admin.requests().await.total, 0);
    // An ARM request without a token: refused, and counted.
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("client");
    let url = format!(
        "{}/subscriptions/{SUB}/resourceGroups/rg-demo/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines?api-version=2024-07-01",
        sim.base_url()
    );
    assert_eq!(
        http.get(url).send().await.expect("ARM request").status(),
        401
    );
    let stats = admin.requests().await;
    assert_eq!(stats.total, 1, "{stats:?}");
    assert_eq!(stats.total, sim.request_stats().total);
    assert_eq!(admin.reset_requests().await.status, 204);
    assert_eq!(sim.request_stats().total, 0);
    assert_eq!(admin.expire_tokens().await.status, 204);

    let a = admin
        .start_token_outage("{status: 503, body: html, retryAfter: 5}")
        .await;
    assert!((200..300).contains(&a.status), "{}", a.body);
    assert_eq!(admin.end_token_outage().await.status, 204);
    assert_eq!(admin.start_token_outage("{status: 200}").await.status, 400);
    let a = admin.start_token_fault("{answer: {}}").await;
    assert!((200..300).contains(&a.status), "{}", a.body);
    assert_eq!(admin.end_token_fault().await.status, 204);
}
