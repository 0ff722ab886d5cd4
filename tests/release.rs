//! The release workflow (.github/workflows/release.yaml) cannot run on the project's machines
//! (no registry, no Docker): it is linted with actionlint (built by hack/control-plane.sh,
//! with shellcheck on PATH for its `run:` scripts), and its names agree with the chart's.

mod support;

use std::process::Command;
use support::{describe, repo_root, run_command, tools};

fn workflow() -> String {
    std::fs::read_to_string(repo_root().join(".github/workflows/release.yaml"))
        .expect("the release workflow")
}

#[test]
fn the_release_workflow_passes_actionlint() {
    let bin = tools()
        .env
        .iter()
        .find(|(k, _)| k == "ACTIONLINT_BIN")
        .map(|(_, v)| v.clone())
        .expect("control-plane.sh env prints ACTIONLINT_BIN");
    let mut cmd = Command::new(bin);
    cmd.arg("-no-color")
        .arg(".github/workflows/release.yaml")
        .current_dir(repo_root());
    let out = run_command(cmd, None, support::COMMAND_TIMEOUT);
    assert!(out.status.success(), "{}", describe("actionlint", &out));
}

#[test]
fn the_release_workflow_pushes_what_the_chart_installs() {
    let wf = workflow();
    let values: yaml_serde::Value = yaml_serde::from_str(
        &std::fs::read_to_string(repo_root().join("charts/scaleset-watch/values.yaml"))
            .expect("values.yaml"),
    )
    .expect("values.yaml parses");
    let repo = values["image"]["repository"]
        .as_str()
        .expect("image.repository");
    let name = repo.rsplit('/').next().expect("image name");
    assert!(repo.starts_with("ghcr.io/"), "{repo}");
    assert!(wf.contains(&format!("ghcr.io/${{GITHUB_REPOSITORY_OWNER,,}}/{name}")));
    // Both architectures, from the one Dockerfile, and the chart as an OCI artifact.
    assert!(wf.contains("platforms: linux/amd64,linux/arm64"));
    assert!(wf.contains("helm push"));
    assert!(wf.contains("oci://"));
}
