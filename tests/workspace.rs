//! The product is only the product: the ARM simulator is a workspace member of its own, so the
//! binary has no command for it and links none of its dependencies.

mod support;

use std::process::Command;
use support::{describe, repo_root, run_command};

/// Crates that only the simulator uses (its certificates and token signing).
const SIMULATOR_ONLY: [&str; 5] = [
    "ssw-simulator",
    "rcgen",
    "jsonwebtoken",
    "yasna",
    "simple_asn1",
];

/// The crate names in `cargo tree -e normal -p PACKAGE`.
fn normal_dependencies(package: &str) -> Vec<String> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "tree",
        "--offline",
        "--locked",
        "-e",
        "normal",
        "--prefix",
        "none",
        "-p",
    ])
    .arg(package)
    .current_dir(repo_root());
    let out = run_command(cmd, None, support::COMMAND_TIMEOUT);
    assert!(out.status.success(), "{}", describe("cargo tree", &out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_product_links_no_simulator_only_crate() {
    let product = normal_dependencies("scaleset-watch");
    assert!(product.iter().any(|c| c == "kube"), "{product:?}");
    for c in SIMULATOR_ONLY {
        assert!(!product.iter().any(|p| p == c), "the product links {c}");
    }
    // The names are real: the simulator does link them.
    let simulator = normal_dependencies("ssw-simulator");
    for c in &SIMULATOR_ONLY[1..] {
        assert!(simulator.iter().any(|p| p == c), "{c} not in {simulator:?}");
    }
    // And the deprecated serde_yaml is gone from the whole workspace.
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).expect("Cargo.lock");
    assert!(!lock.contains("name = \"serde_yaml\""));
    assert!(lock.contains("name = \"yaml_serde\""));
}

#[test]
fn the_product_binary_has_no_simulate_command() {
    let bin = env!("CARGO_BIN_EXE_scaleset-watch");
    let mut cmd = Command::new(bin);
    cmd.arg("--help");
    let out = run_command(cmd, None, support::COMMAND_TIMEOUT);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && help.contains("check"), "{help}");
    assert!(!help.contains("simulat"), "{help}");

    let mut cmd = Command::new(bin);
    cmd.args(["simulate", "--help"]);
    let out = run_command(cmd, None, support::COMMAND_TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{}", describe("simulate", &out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand 'simulate'"),
        "{}",
        describe("simulate", &out)
    );
}
