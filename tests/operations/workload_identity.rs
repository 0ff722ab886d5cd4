//! Workload identity: the controller signs in with a service-account token that the cluster's
//! own issuer signed, and only the right subject with the right audience gets in.

use crate::support::Cluster;
use crate::support::controller::{
    Controller, SUB, SimEnv, TENANT, condition, install_chart, wait_condition, watch_yaml,
};
use crate::support::prometheus::sample;
use crate::{controller_kubeconfig, metrics, support};
use std::time::Duration;

/// The Azure AD token exchange audience that workload identity tokens carry.
const WI_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The application that only federated credentials sign in (it has no client secret).
const WI_CLIENT: &str = "5b5a2b8e-3f1c-4d7e-9a21-0c8f6b7d4e31";

#[test]
fn workload_identity_signs_in_with_the_service_account_token_and_only_that_one() {
    let cluster = Cluster::shared();
    let (sa_ns, sa) = install_chart(cluster);
    let kubeconfig = controller_kubeconfig(cluster);
    // The same name in another namespace: another subject.
    let other_ns = cluster.create_namespace("wi-other");
    cluster.create_service_account(&other_ns, sa);
    let hour = Duration::from_secs(3600);
    let tokens = [
        (
            "right",
            cluster.service_account_token(sa_ns, sa, Some(WI_AUDIENCE), hour),
        ),
        (
            "other-sa",
            cluster.service_account_token(&other_ns, sa, Some(WI_AUDIENCE), hour),
        ),
        // The right subject, but the API server's own audience.
        (
            "wrong-aud",
            cluster.service_account_token(sa_ns, sa, None, hour),
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");

    let api = cluster.api_url();
    let scenario = format!(
        r#"
servicePrincipals:
  - tenantId: {TENANT}
    clientId: {WI_CLIENT}
    subscriptions: [{SUB}]
federatedIdentities:
  - issuer: {api}
    subject: system:serviceaccount:{sa_ns}:{sa}
    audience: {WI_AUDIENCE}
    tenantId: {TENANT}
    clientId: {WI_CLIENT}
    jwksUrl: {api}/openid/v1/jwks
    jwksCaFile: {ca}
subscriptions:
  - id: {SUB}
    tenantId: {TENANT}
    resourceGroups:
      - name: rg-ops
        scaleSets:
          - name: wi
            pageSize: 2
            defaults: {{appHealth: healthy}}
            generate: {{count: 5}}
            instances:
              - {{id: 4, powerState: stopped}}
"#,
        ca = cluster.ca_file().display(),
    );
    let sim = SimEnv::start(&scenario);

    let mut controllers = Vec::new();
    let mut namespaces = Vec::new();
    for (what, token) in &tokens {
        let file = dir.path().join(format!("{what}.jwt"));
        support::write_private(&file, token.as_bytes());
        let ns = cluster.create_namespace(&format!("wi-{what}"));
        cluster.kubectl_apply_stdin(&watch_yaml(&ns, "wi", &[], "rg-ops", "wi", ""));
        let file = file.to_str().expect("utf-8 path").to_owned();
        let env = [
            ("SSW_NAMESPACE", ns.as_str()),
            ("AZURE_FEDERATED_TOKEN_FILE", file.as_str()),
            ("AZURE_CLIENT_ID", WI_CLIENT),
            ("AZURE_TENANT_ID", TENANT),
            // No client secret: empty counts as unset.
            ("AZURE_CLIENT_SECRET", ""),
        ];
        controllers.push(Controller::start(cluster, &kubeconfig, &sim, &env, &[]));
        namespaces.push(ns);
    }

    let obj = wait_condition(
        cluster,
        &namespaces[0],
        "wi",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(40),
    );
    let s = &obj["status"];
    assert_eq!(s["summary"], "4/5", "{s:#}");
    assert_eq!(s["instances"]["total"], 5);
    assert_eq!(s["instances"]["stopped"], 1);
    assert!(sim.stats().tokens.issued >= 1);

    for (i, (what, _)) in tokens.iter().enumerate().skip(1) {
        let obj = wait_condition(
            cluster,
            &namespaces[i],
            "wi",
            "Ready",
            "False",
            Some("AuthenticationFailed"),
            Duration::from_secs(40),
        );
        let message = condition(&obj, "Ready").expect("Ready")["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains("No matching federated identity record"),
            "{what}: {message}"
        );
        assert!(
            obj["status"]["instances"].is_null(),
            "{what}: counts without a sign-in: {:#}",
            obj["status"]
        );
    }
    let stats = sim.stats();
    assert!(stats.tokens.rejected >= 2, "{:?}", stats.tokens);
    // Every token the simulator issued went to the right identity: only it listed VMs.
    for (i, c) in controllers.iter().enumerate() {
        let (_, s) = metrics(c);
        let ok = sample(&s, "scaleset_watch_arm_requests_total", &[("code", "200")]).unwrap_or(0.0);
        assert_eq!(
            ok > 0.0,
            i == 0,
            "{}: {ok} ARM requests answered 200",
            tokens[i].0
        );
        let logs = c.logs();
        for (what, token) in &tokens {
            assert!(
                !logs.contains(token.as_str()),
                "the {what} token is in the logs"
            );
        }
    }
}
