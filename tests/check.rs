//! `scaleset-watch check` as a user runs it: the real binary, saved pages or the simulator.
//! Every run is started with `spawn_tied`/`output_tied`, so that none outlives the test.

mod support;

use scaleset_watch::simulator::{Scenario, Simulator};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::TiedCommand;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scaleset-watch"));
    cmd.arg("check")
        .env_remove("SSW_ARM_ENDPOINT")
        .env_remove("AZURE_AUTHORITY_HOST")
        .env_remove("SSW_CA_FILE");
    cmd
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
    let status: serde_json::Value = serde_yaml::from_slice(&out.stdout).expect("YAML");
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
