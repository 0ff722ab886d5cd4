//! `scaleset-watch check` as a user runs it: the real binary, saved pages or the simulator.
//! Every run is started with `spawn_tied`/`output_tied`, so that none outlives the test.

mod support;

use ssw_simulator::{Scenario, Simulator};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::TiedCommand;
use support::controller::SimEnv;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scaleset-watch"));
    cmd.arg("check")
        .env_remove("SSW_ARM_ENDPOINT")
        .env_remove("AZURE_AUTHORITY_HOST")
        .env_remove("SSW_CA_FILE");
    cmd
}

/// `check` with no Azure credentials in its environment, pointed at the simulator.
fn bin_without_credentials(sim: &SimEnv) -> Command {
    let mut cmd = bin();
    for var in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["--arm-endpoint", &sim.url(), "--authority-host", &sim.url()])
        .arg("--ca-file")
        .arg(sim.ca_file());
    cmd
}

/// A stand-in for the Azure CLI, in a directory of its own to put first on PATH. Like a CLI
/// signed in with `az login --service-principal`, it gets its token from the sign-in service
/// (the simulator's, which alone issues the tokens its ARM accepts) and prints it as
/// `az account get-access-token -o json` does. Each call's arguments go to `calls`.
struct FakeAz {
    dir: tempfile::TempDir,
}

impl FakeAz {
    fn new(sim: &SimEnv) -> FakeAz {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let calls = dir.path().join("calls");
        let script = format!(
            r#"#!/bin/sh
printf '%s\n' "$*" >> '{calls}'
[ "$1 $2" = "account get-access-token" ] || {{ echo "ERROR: unexpected command: $*" >&2; exit 2; }}
scope=
while [ $# -gt 0 ]; do
  [ "$1" = --scope ] && scope=$2
  shift
done
body=$(curl -sS --fail-with-body --max-time 20 --cacert '{ca}' \
  --data-urlencode grant_type=client_credentials --data-urlencode client_id={client} \
  --data-urlencode client_secret={secret} --data-urlencode "scope=$scope" \
  '{url}/{tenant}/oauth2/v2.0/token') || {{ echo "ERROR: $body" >&2; exit 1; }}
token=$(printf '%s' "$body" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || {{ echo "ERROR: no token in $body" >&2; exit 1; }}
expires_on=$(( $(date +%s) + 3600 ))
printf '{{"accessToken":"%s","expiresOn":"2099-01-01 00:00:00.000000","expires_on":%s,"subscription":"{sub}","tenant":"{tenant}","tokenType":"Bearer"}}\n' "$token" "$expires_on"
"#,
            calls = calls.display(),
            ca = sim.ca_file().display(),
            url = sim.url().trim_end_matches('/'),
            tenant = support::controller::TENANT,
            client = support::controller::CLIENT,
            secret = support::controller::SECRET,
            sub = support::controller::SUB,
        );
        let az = dir.path().join("az");
        std::fs::write(&az, script).expect("write az");
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        FakeAz { dir }
    }

    /// PATH with this `az` first.
    fn path(&self) -> std::ffi::OsString {
        let mut dirs = vec![self.dir.path().to_owned()];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        std::env::join_paths(dirs).expect("PATH")
    }

    /// The argument lists `az` was called with, in order.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/arm-examples")
        .join(name)
}

/// `check` on the 2017 seed example, with `args` before `--from-file`.
fn check_seed(args: &[&str]) -> Output {
    bin()
        .args(args)
        .arg("--from-file")
        .arg(example("seed-2017-03-30-list-instance-views.json"))
        .output_tied()
        .expect("runs")
}

/// Runs `cmd` with `input` on its stdin.
fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_tied()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child.wait_with_output().expect("exits")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn saved_page_prints_a_table_and_exits_1_when_unhealthy() {
    let out = check_seed(&[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("0/1 (0%)"), "{stdout}");
    assert!(stdout.contains("False (BelowMinHealthy)"), "{stdout}");
    assert!(
        stdout.contains("extension mydomainjoinscript failed: Script exited with code -1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nFAULT DOMAINS 2: 1/1 unhealthy\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nUPDATE DOMAINS 5: 1/1 unhealthy\n"),
        "{stdout}"
    );
}

#[test]
fn json_and_yaml_are_the_status_the_controller_would_write() {
    let out = check_seed(&["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["instances"]["provisioningFailed"], 1);
    assert_eq!(status["unhealthyInstances"][0]["instanceId"], "1");
    assert_eq!(status["updateDomains"][0]["domain"], 5);

    let out = check_seed(&["-o", "yaml"]);
    let status: serde_json::Value = yaml_serde::from_slice(&out.stdout).expect("YAML");
    assert_eq!(status["summary"], "0/1");
}

#[test]
fn pages_from_stdin_and_files_add_up_and_the_policy_flags_apply() {
    let page = std::fs::read(example("seed-2017-03-30-list-instance-views.json")).expect("fixture");
    let mut cmd = bin();
    cmd.args([
        "-o",
        "json",
        "--min-healthy-percent",
        "0",
        "--from-file",
        "-",
    ])
    .arg(example("VirtualMachineScaleSetVM_List_MinimumSet_Gen.json"));
    let out = with_stdin(cmd, &page);
    assert_eq!(out.status.code(), Some(0), "0% required is always met");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["instances"]["total"], 2);
    assert_eq!(status["instances"]["noInstanceView"], 1);
}

#[test]
fn unreadable_input_exits_2_with_the_error_on_stderr() {
    let out = bin()
        .args(["--from-file", "/nonexistent/page.json"])
        .output_tied()
        .expect("runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("cannot read /nonexistent/page.json"),
        "{stderr}"
    );

    let mut cmd = bin();
    cmd.args(["--from-file", "-"]);
    let out = with_stdin(cmd, b"{\"value\": [");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a list response"));
}

#[test]
fn live_check_against_the_simulator() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let scenario = Scenario::from_yaml(
        r#"
servicePrincipals:
  - {tenantId: 0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b, clientId: 8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e, clientSecret: s3cret, subscriptions: [00000000-0000-0000-0000-0000000000aa]}
subscriptions:
  - id: 00000000-0000-0000-0000-0000000000aa
    tenantId: 0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b
    resourceGroups:
      - name: rg
        scaleSets:
          - {name: web, pageSize: 2, generate: {count: 5}}
"#,
    )
    .expect("scenario");
    let sim = rt
        .block_on(Simulator::start(
            scenario,
            "127.0.0.1:0".parse().expect("addr"),
        ))
        .expect("simulator");
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem()).expect("CA");
    let run = |scale_set: &str, secret: &str| {
        bin()
            .args([
                "--subscription",
                "00000000-0000-0000-0000-0000000000aa",
                "--resource-group",
                "rg",
                "--scale-set",
                scale_set,
                "--arm-endpoint",
                sim.base_url(),
                "--authority-host",
                sim.base_url(),
                "--ca-file",
            ])
            .arg(&ca)
            .env("AZURE_TENANT_ID", "0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b")
            .env("AZURE_CLIENT_ID", "8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e")
            .env("AZURE_CLIENT_SECRET", secret)
            .env_remove("AZURE_FEDERATED_TOKEN_FILE")
            .output_tied()
            .expect("runs")
    };
    let out = run("web", "s3cret");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("5/5 (100%)"), "{stdout}");
    assert_eq!(
        sim.request_stats().kind("listVmssVms"),
        3,
        "5 instances at 2 a page"
    );

    let out = run("nope", "s3cret");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("ScaleSetNotFound"), "{stderr}");

    let out = run("web", "not-the-secret-4711");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("AuthenticationFailed"), "{stderr}");
    assert!(
        !stderr.contains("not-the-secret-4711"),
        "the secret must not be printed: {stderr}"
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn flags_spell_clouds_and_power_states_like_the_crd() {
    let out = check_seed(&["--cloud", "AzureMars"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("expected AzurePublic, AzureChina or AzureUSGovernment")
    );

    // The example's only instance runs; expecting only deallocated instances makes it unhealthy
    // for its power state too.
    let out = check_seed(&["-o", "json", "--expected-power-state", "deallocated"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let reasons = status["unhealthyInstances"][0]["reasons"].to_string();
    assert!(
        reasons.contains("power state running (expected deallocated)"),
        "{reasons}"
    );
}

#[test]
fn http_endpoints_are_refused_at_startup_by_check_and_run() {
    // Should either be accepted, requests would go only to loopback: a client secret in the
    // environment (the ambient credential then signs in at the authority, not at an IMDS) and
    // nothing listening on port 1.
    let with_env = |mut cmd: Command| {
        cmd.env("AZURE_TENANT_ID", "0d3f2a1b-5c6e-4f70-8a9b-1c2d3e4f5a6b")
            .env("AZURE_CLIENT_ID", "8e1b2c3d-4a5f-4b6c-9d7e-0f1a2b3c4d5e")
            .env("AZURE_CLIENT_SECRET", "s3cret")
            .env_remove("AZURE_FEDERATED_TOKEN_FILE")
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output_tied()
            .expect("runs")
    };
    let target = [
        "--subscription",
        "00000000-0000-0000-0000-0000000000aa",
        "--resource-group",
        "rg",
        "--scale-set",
        "web",
    ];
    for (flags, named) in [
        (
            [
                "--arm-endpoint",
                "http://127.0.0.1:1/",
                "--authority-host",
                "https://127.0.0.1:1/",
            ],
            "--arm-endpoint",
        ),
        (
            [
                "--arm-endpoint",
                "https://127.0.0.1:1/",
                "--authority-host",
                "http://127.0.0.1:1/",
            ],
            "--authority-host",
        ),
    ] {
        let mut check = bin();
        check.args(target).args(flags);
        let out = with_env(check);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("must be an https:// URL"),
            "{stderr}"
        );

        let mut run = Command::new(env!("CARGO_BIN_EXE_scaleset-watch"));
        run.args(["run", "--http-addr", "127.0.0.1:0"]).args(flags);
        let out = with_env(run);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("must be an https:// URL"),
            "refused before anything else is tried: {stderr}"
        );
    }
}

/// The simulator with the demo service principal and scale set `web` of resource group `rg`:
/// five instances at two a page, instance 2 failing its Application Health probe.
fn five_instances_one_unhealthy() -> SimEnv {
    let sim = SimEnv::start(&support::controller::scenario(
        "rg",
        "          - {name: web, pageSize: 2, generate: {count: 5}}\n",
    ));
    sim.put_instance(&sim.scale_set("rg", "web"), "{id: 2, appHealth: unhealthy}");
    sim
}

const TARGET: [&str; 6] = [
    "--subscription",
    support::controller::SUB,
    "--resource-group",
    "rg",
    "--scale-set",
    "web",
];

#[test]
fn without_credentials_in_the_environment_check_signs_in_as_the_azure_cli_user() {
    let sim = five_instances_one_unhealthy();
    let az = FakeAz::new(&sim);
    let out = bin_without_credentials(&sim)
        .args(TARGET)
        .env("PATH", az.path())
        .output_tied()
        .expect("runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("4/5 (80%)"), "{stdout}");
    assert_eq!(
        sim.list_pages(&sim.scale_set("rg", "web")),
        3,
        "every page was read with the CLI's token"
    );
    // Asked exactly as azure_identity asks, and once for the three pages: the token is kept.
    assert_eq!(
        az.calls(),
        ["account get-access-token -o json --scope https://management.core.windows.net/.default"]
    );

    // A client secret in the environment comes first: az is not asked.
    let out = bin_without_credentials(&sim)
        .args(TARGET)
        .env("PATH", az.path())
        .env("AZURE_TENANT_ID", support::controller::TENANT)
        .env("AZURE_CLIENT_ID", support::controller::CLIENT)
        .env("AZURE_CLIENT_SECRET", support::controller::SECRET)
        .output_tied()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(az.calls().len(), 1, "az was not asked again");
    // So does workload identity (which fails here: its token file does not exist).
    let out = bin_without_credentials(&sim)
        .args(TARGET)
        .env("PATH", az.path())
        .env("AZURE_TENANT_ID", support::controller::TENANT)
        .env("AZURE_CLIENT_ID", support::controller::CLIENT)
        .env("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token")
        .output_tied()
        .expect("runs");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("AuthenticationFailed"), "{stderr}");
    assert_eq!(az.calls().len(), 1, "az was not asked again");
}

#[test]
fn without_any_credentials_check_says_how_to_sign_in() {
    let sim = five_instances_one_unhealthy();
    let empty = tempfile::tempdir().expect("dir");
    let out = bin_without_credentials(&sim)
        .args(TARGET)
        .env("PATH", empty.path())
        .output_tied()
        .expect("runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("AuthenticationFailed"), "{stderr}");
    assert!(stderr.contains("az not found on PATH"), "{stderr}");
    assert!(stderr.contains("run az login"), "{stderr}");
    assert_eq!(sim.stats().kind("listVmssVms"), 0, "nothing reached ARM");
}

#[test]
fn from_cluster_takes_target_policy_and_credentials_from_the_watch() {
    let cluster = support::Cluster::shared();
    cluster.apply_crd();
    let sim = five_instances_one_unhealthy();
    let az = FakeAz::new(&sim);
    let ns = cluster.create_namespace("check");
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "sp",
        "-n",
        &ns,
        &format!("--from-literal=tenantId={}", support::controller::TENANT),
        &format!("--from-literal=clientId={}", support::controller::CLIENT),
        &format!(
            "--from-literal=clientSecret={}",
            support::controller::SECRET
        ),
    ]);
    let watch = |name: &str, extra: &str| {
        support::controller::watch_yaml(&ns, name, &[], "rg", "web", extra)
    };
    cluster.kubectl_apply_stdin(&watch(
        "lax",
        "  credentials: {secretRef: {name: sp}}\n  health: {minHealthyPercent: 80}",
    ));
    cluster.kubectl_apply_stdin(&watch("strict-china", "  cloud: AzureChina"));
    cluster.kubectl_apply_stdin(&watch(
        "no-secret",
        "  credentials: {secretRef: {name: absent}}",
    ));
    let check = |reference: &str| {
        let out = bin_without_credentials(&sim)
            .args(["--from-cluster", reference])
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("PATH", az.path())
            .output_tied()
            .expect("runs");
        let (stdout, stderr) = text(&out);
        (out.status.code(), stdout, stderr)
    };

    // The watch's Secret and policy: 80% is enough.
    let (code, stdout, stderr) = check(&format!("{ns}/lax"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("SCALE SET   web"), "{stdout}");
    assert!(stdout.contains("4/5 (80%)"), "{stdout}");
    assert!(stdout.contains("True (MinHealthyMet)"), "{stdout}");
    assert!(az.calls().is_empty(), "the Secret's principal signed in");
    assert!(
        !stdout.contains(support::controller::SECRET)
            && !stderr.contains(support::controller::SECRET),
        "the Secret's value is not printed"
    );

    // No credentials in the watch: the person's own login, for the watch's cloud; its policy
    // is the default 100%.
    let (code, stdout, stderr) = check(&format!("{ns}/strict-china"));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("False (BelowMinHealthy)"), "{stdout}");
    assert_eq!(
        az.calls(),
        [
            "account get-access-token -o json --scope https://management.core.chinacloudapi.cn/.default"
        ]
    );

    let (code, stdout, stderr) = check(&format!("{ns}/absent"));
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!("ScaleSetWatch {ns}/absent not found")),
        "{stderr}"
    );
    let (code, _, stderr) = check(&format!("{ns}/no-secret"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Secret {ns}/absent (the watch's credentials.secretRef) not found"
        )),
        "{stderr}"
    );

    // Flags that the watch decides are refused beside --from-cluster.
    let out = bin_without_credentials(&sim)
        .args([
            "--from-cluster",
            &format!("{ns}/lax"),
            "--min-healthy-percent",
            "50",
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .output_tied()
        .expect("runs");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn from_cluster_wants_namespace_and_name() {
    for reference in ["web", "/web", "ns/", "a/b/c"] {
        let out = bin()
            .args(["--from-cluster", reference])
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .output_tied()
            .expect("runs");
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{reference}: {stderr}");
        assert!(
            stderr.contains("--from-cluster takes NAMESPACE/NAME of a ScaleSetWatch"),
            "{reference}: {stderr}"
        );
    }
}

/// A saved page listed without `$select` (the model view too): the table reports Application
/// Health per state, the outdated and protected instances and the zones, and the policy flags
/// for them apply.
#[test]
fn a_saved_page_with_the_model_view_reports_app_health_rollout_and_zones() {
    let vm = |id: u32, zone: &str, health: &str, latest: bool, protect: bool| {
        serde_json::json!({
            "instanceId": id.to_string(),
            "zones": [zone],
            "properties": {
                "latestModelApplied": latest,
                "timeCreated": "2020-01-01T00:00:00+00:00",
                "protectionPolicy": {"protectFromScaleIn": protect, "protectFromScaleSetActions": false},
                "instanceView": {
                    "vmAgent": {"statuses": [{"code": "ProvisioningState/succeeded"}]},
                    "vmHealth": {"status": {"code": format!("HealthState/{health}")}},
                    "statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/running"}]
                }
            }
        })
    };
    let page = serde_json::json!({"value": [
        vm(0, "1", "healthy", true, true),
        vm(1, "1", "healthy", false, false),
        vm(2, "2", "initializing", true, false),
        vm(3, "2", "unknown", false, false),
    ]});
    let body = serde_json::to_vec(&page).expect("serializes");
    let mut cmd = bin();
    cmd.args(["--min-healthy-percent", "50", "--from-file", "-"]);
    let out = with_stdin(cmd, &body);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for line in [
        "APP HEALTH  healthy 2, unhealthy 0, unknown 1, initializing 1, not reported 0; unknown or initializing past the grace period 2",
        "MODEL       outdated 2, protected from scale-in 1, protected from scale set actions 0",
        "ZONES       1: 0/2 unhealthy, 2: 2/2 unhealthy",
        "OUTDATED    1, 3",
        "all in zone 2 (2 of its 2 instances)",
        "application health initializing for longer than the 10m grace period after creation",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    // A rollout may be made to count, and the grace period to cover those instances.
    let mut cmd = bin();
    cmd.args([
        "-o",
        "json",
        "--outdated-model",
        "Unhealthy",
        "--app-health-grace-period",
        "100000h",
        "--from-file",
        "-",
    ]);
    let out = with_stdin(cmd, &body);
    assert_eq!(out.status.code(), Some(1));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["summary"], "2/4");
    assert_eq!(status["instances"]["applicationHealthPending"], 0);
    assert_eq!(status["unhealthyInstances"][0]["instanceId"], "1");
}
