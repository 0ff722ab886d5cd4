//! The chart agrees with what lies beside it: its README documents every value and the CRD
//! upgrade, and the Dockerfile builds the image the chart runs.

use crate::chart_dir;
use crate::support::repo_root;
use serde_json::Value;

#[test]
fn readme_documents_every_value_and_the_crd_upgrade() {
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    let values: Value =
        yaml_serde::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    fn walk(path: &str, v: &Value, schema: &Value, readme: &str, missing: &mut Vec<String>) {
        if !path.is_empty() && readme.contains(&format!("`{path}`")) {
            return;
        }
        match v {
            Value::Object(map) if path.is_empty() || schema["additionalProperties"] == false => {
                for (k, child) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(&p, child, &schema["properties"][k], readme, missing);
                }
            }
            _ => missing.push(path.to_owned()),
        }
    }
    let mut missing = Vec::new();
    walk("", &values, &schema, &readme, &mut missing);
    assert!(
        missing.is_empty(),
        "values missing from the README values table: {missing:?}"
    );
    for text in [
        "helm upgrade",
        "crds.enabled",
        "helm.sh/resource-policy: keep",
        "meta.helm.sh/release-name",
    ] {
        assert!(readme.contains(text), "the CRD section must mention {text}");
    }
}

#[test]
fn dockerfile_matches_the_chart() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let values: Value =
        yaml_serde::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let uid = values["securityContext"]["runAsUser"].as_i64().unwrap();
    assert_eq!(uid, 65532);
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "image must run as the chart's runAsUser"
    );
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/scaleset-watch"]"#));
    assert!(dockerfile.contains(r#"CMD ["run"]"#));
    // One final stage for registry builds and the test bed's buildah builds: an empty base
    // (no registry here to pull one from), so the binary must be static.
    let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(final_stage.starts_with("scratch\n"), "{final_stage}");
    assert!(dockerfile.contains("hack/build-static.sh"));
    let build = std::fs::read_to_string(repo_root().join("hack/build-static.sh")).unwrap();
    assert!(
        build.contains("unknown-linux-musl"),
        "static binary for an empty base"
    );
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    for path in ["Cargo.toml", "Cargo.lock", "src/"] {
        assert!(
            ignore.contains(&format!("!{path}")),
            ".dockerignore must let {path} in"
        );
    }
}
