//! The product image's recipe: the Docker build context, exactly what `.dockerignore` lets in,
//! compiles the release binary with the same script the Dockerfile runs, and that binary is
//! static (it runs on the image's empty base). tests/node.rs runs the image itself.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{describe, repo_root, run_command};

/// Whether the ELF file has a PT_INTERP program header (asks for a dynamic loader, which an
/// empty base image does not have).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&elf[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]) == 3
    })
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir");
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_docker_build_context_compiles_a_static_release_binary() {
    let mut cmd = Command::new(repo_root().join("hack/image.sh"));
    cmd.arg("binary");
    // The first release build compiles every dependency for the musl target.
    let out = run_command(cmd, None, Duration::from_secs(3600));
    assert!(
        out.status.success(),
        "{}",
        describe("hack/image.sh binary", &out)
    );

    let ctx = repo_root().join("target/docker-context");
    let files = files_under(&ctx);
    // What the allow-list lets in, and nothing the build does not need.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        "benches/parse.rs",
        "simulator/Cargo.toml",
        "hack/build-static.sh",
    ] {
        assert!(
            files.iter().any(|f| f == needed),
            "{needed} missing: {files:?}"
        );
    }
    for f in &files {
        assert!(
            [
                "Cargo.toml",
                "Cargo.lock",
                "src/",
                "benches/",
                "simulator/Cargo.toml"
            ]
            .iter()
            .chain(&["hack/build-static.sh", "prebuilt/"])
            .any(|allowed| f == allowed || (allowed.ends_with('/') && f.starts_with(allowed))),
            "{f} is in the build context"
        );
    }

    let bin = ctx.join("prebuilt/scaleset-watch");
    let elf = std::fs::read(&bin).expect("the binary");
    assert!(
        !has_interpreter(&elf),
        "{} is dynamically linked",
        bin.display()
    );
    // It runs with nothing from this machine: an empty environment and no loader.
    let mut cmd = Command::new(&bin);
    cmd.arg("crd").env_clear();
    let out = run_command(cmd, None, support::COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "{}",
        describe("scaleset-watch crd", &out)
    );
    let committed = std::fs::read(repo_root().join("crds/scalesetwatches.yaml")).expect("CRD");
    assert!(
        out.stdout == committed,
        "the image's binary prints another CRD"
    );

    // No simulator inside: no command for it, and none of its code (its admin API's routes
    // and the crate's own name are strings no product code holds).
    let mut cmd = Command::new(&bin);
    cmd.arg("--help").env_clear();
    let out = run_command(cmd, None, support::COMMAND_TIMEOUT);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && help.contains("check"), "{help}");
    assert!(!help.contains("simulat"), "{help}");
    for needle in [&b"/_sim/"[..], b"ssw_simulator"] {
        assert!(
            !elf.windows(needle.len()).any(|w| w == needle),
            "the image's binary holds {:?}",
            String::from_utf8_lossy(needle)
        );
    }
}
