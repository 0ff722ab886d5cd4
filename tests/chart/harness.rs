//! The harness itself (tests/support): the control-plane script's exports, unique names, and
//! a private control plane's tokens and teardown.

use crate::support::{Cluster, describe, unique_name, wait_for};
use crate::{stderr, stdout, support};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Decodes the (unverified) claims of a JWT.
fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT has a payload");
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut bytes = Vec::new();
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((bits >> nbits) as u8);
        }
    }
    serde_json::from_slice(&bytes).expect("JWT payload is JSON")
}

#[test]
fn harness_parses_control_plane_exports() {
    let vars = support::parse_exports(
        "export A='x y' B='z'\nexport PATH='/opt/bin':\"$HOME\"\n# comment\nexport EMPTY=''\n",
    );
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        vars,
        [
            ("A".to_owned(), "x y".to_owned()),
            ("B".to_owned(), "z".to_owned()),
            ("PATH".to_owned(), format!("/opt/bin:{home}")),
            ("EMPTY".to_owned(), String::new()),
        ]
    );
    let name = unique_name("Some_Prefix.With.Dots");
    assert!(name.starts_with("some-prefix-with-dots-"), "{name}");
    assert_ne!(unique_name("x"), unique_name("x"));
    assert!(unique_name(&"a".repeat(100)).len() <= 63);
}

#[test]
fn harness_private_cluster_tokens_and_teardown() {
    let cluster = Cluster::start();
    let dir = cluster.dir().to_path_buf();
    let pids: Vec<u32> = ["etcd.pid", "kube-apiserver.pid"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(cluster.api_url().starts_with("https://127.0.0.1:"));
    assert!(cluster.ca_file().is_file());
    let whoami = cluster.kubectl_ok(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(whoami, "ssw-admin");

    let ns = cluster.create_namespace("harness");
    cluster.create_service_account(&ns, "robot");
    let token = cluster.service_account_token(
        &ns,
        "robot",
        Some("api://AzureADTokenExchange"),
        Duration::from_secs(3600),
    );
    let claims = jwt_claims(&token);
    assert_eq!(
        claims["aud"],
        serde_json::json!(["api://AzureADTokenExchange"])
    );
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{ns}:robot").as_str()
    );
    assert_eq!(claims["iss"], cluster.api_url());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);

    let kc = cluster.service_account_kubeconfig(&ns, "robot", None);
    let out = cluster.kubectl_as(
        &kc,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        stdout(&out),
        format!("system:serviceaccount:{ns}:robot"),
        "{}",
        describe("whoami", &out)
    );
    let out = cluster.kubectl_as(&kc, &["get", "namespaces"]);
    assert!(
        stderr(&out).contains("Forbidden"),
        "{}",
        describe("get namespaces as robot", &out)
    );

    drop(cluster);
    let alive = |pid: &u32| Path::new(&format!("/proc/{pid}")).exists();
    assert!(
        wait_for(Duration::from_secs(10), || !pids.iter().any(alive)),
        "control plane still running"
    );
    assert!(
        wait_for(Duration::from_secs(10), || !dir.exists()),
        "{} not removed",
        dir.display()
    );
}
