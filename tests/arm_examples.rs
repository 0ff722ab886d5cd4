//! Every official example response parses, and aggregates to what a person reading it expects.

use scaleset_watch::api::{ApplicationHealthCounts, DomainHealth, HealthPolicy, InstanceCounts};
use scaleset_watch::azure::arm::model::{Page, parse_page};
use scaleset_watch::azure::arm::snapshot::{PowerState, Provisioning, ScaleSetSnapshot, View};
use scaleset_watch::health::{FleetHealth, assess};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arm-examples")
}

fn body(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).expect("fixture exists")
}

fn page(name: &str) -> Page {
    parse_page(&body(name)).expect("example parses")
}

fn fleet(name: &str) -> FleetHealth {
    let snapshot = ScaleSetSnapshot::from_pages([body(name)]).expect("example parses");
    assess(&snapshot, &HealthPolicy::default())
}

fn view(page: &Page) -> &View {
    page.instances[0].view.as_ref().expect("instance view")
}

/// Every fixture, each with its expectations below.
const FIXTURES: [&str; 5] = [
    "VirtualMachineScaleSetVM_List_MaximumSet_Gen.json",
    "VirtualMachineScaleSetVM_List_MinimumSet_Gen.json",
    "VirtualMachineScaleSetVM_List_WithVirtualMachineResourceId.json",
    "cloud-provider-azure_AZURECLOUD_VirtualMachineScaleSetVMs_GetInstanceView.json",
    "seed-2017-03-30-list-instance-views.json",
];

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("readable dir")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_is_there_and_tested() {
    // Exactly the listed files: a missing fixture, an empty folder or a new file without
    // expectations fails here rather than passing by finding nothing.
    assert_eq!(names_in(&fixtures()), FIXTURES);
    for name in FIXTURES {
        let json: serde_json::Value =
            serde_json::from_slice(&body(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            json.as_object().is_some_and(|o| !o.is_empty()),
            "{name} holds no ARM answer"
        );
    }
}

#[test]
fn fixtures_cover_every_shared_example() {
    // The shared folder sits beside the checkout in CI and beside the worktrees here; a new
    // example there must be copied to tests/fixtures/arm-examples and given expectations.
    let Some(shared) = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|d| d.join("shared/arm-examples"))
        .find(|d| d.is_dir())
    else {
        // Another machine: the fixtures are the copy, checked by the test above.
        eprintln!("no shared/arm-examples beside this checkout");
        return;
    };
    let shared_names = names_in(&shared);
    assert!(!shared_names.is_empty(), "{} is empty", shared.display());
    for name in &shared_names {
        assert!(
            FIXTURES.contains(&name.as_str()),
            "{name:?} is in {} but not in tests/fixtures/arm-examples",
            shared.display()
        );
        assert_eq!(
            std::fs::read(shared.join(name)).expect("shared example"),
            body(name),
            "{name}: the fixture differs from the shared example"
        );
    }
}

#[test]
fn seed_2017_instance_has_failed_provisioning_and_extension() {
    let p = page("seed-2017-03-30-list-instance-views.json");
    assert_eq!(p.next_link, None);
    let view = view(&p);
    assert_eq!(
        view.update_domain,
        Some(5),
        "string platformUpgradeDomain is read"
    );
    assert_eq!(view.fault_domain, Some(2));

    let f = fleet("seed-2017-03-30-list-instance-views.json");
    assert_eq!(
        f.counts,
        InstanceCounts {
            total: 1,
            unhealthy: 1,
            running: 1,
            provisioning_failed: 1,
            extensions_failed: 1,
            application_health: not_reported(1),
            ..Default::default()
        }
    );
    assert_eq!(f.healthy_percent, 0);
    assert!(!f.policy_met);
    assert_eq!(f.unhealthy[0].instance_id, "1");
    assert_eq!(
        f.unhealthy[0].reasons,
        vec![
            "provisioning failed: VM Agent provisioning failed".to_string(),
            "extension mydomainjoinscript failed: Script exited with code -1".to_string(),
        ]
    );
    assert_eq!(
        f.fault_domains,
        vec![DomainHealth {
            domain: 2,
            total: 1,
            unhealthy: 1
        }]
    );
    assert_eq!(
        f.update_domains,
        vec![DomainHealth {
            domain: 5,
            total: 1,
            unhealthy: 1
        }]
    );
}

#[test]
fn maximum_set_filler_values_parse_and_count_as_unknown_power_state() {
    let p = page("VirtualMachineScaleSetVM_List_MaximumSet_Gen.json");
    assert_eq!(
        p.next_link.as_deref(),
        Some("a://example.com/aaaaaaaaaaaaaa")
    );
    assert_eq!(&*p.instances[0].id, "aaaaaaaaaaaa");
    let view = view(&p);
    assert_eq!(view.provisioning, Provisioning::Succeeded);
    assert_eq!(view.update_domain, Some(23));
    assert_eq!(view.fault_domain, Some(14));
    assert_eq!(view.power_state, PowerState::Unknown);
    // Its one extension and one disk report filler codes at level Info: no failure.
    assert!(view.failures.is_empty(), "{:?}", view.failures);

    // No PowerState status at all: the filler codes say nothing, so the instance cannot be
    // called running, and nothing else is held against it.
    let f = fleet("VirtualMachineScaleSetVM_List_MaximumSet_Gen.json");
    assert_eq!(
        f.counts,
        InstanceCounts {
            total: 1,
            unhealthy: 1,
            power_state_unknown: 1,
            // Its vmHealth code is filler: no state this model knows, so unknown.
            application_health: ApplicationHealthCounts {
                unknown: 1,
                ..Default::default()
            },
            // The full item carries the model view.
            outdated_model: Some(0),
            protected_from_scale_in: Some(1),
            protected_from_scale_set_actions: Some(1),
            ..Default::default()
        }
    );
    assert_eq!(
        f.unhealthy[0].reasons,
        vec!["power state unknown (expected running)".to_string()]
    );
}

#[test]
fn minimum_set_has_no_instance_view_and_takes_its_id_from_the_resource_id() {
    let f = fleet("VirtualMachineScaleSetVM_List_MinimumSet_Gen.json");
    assert_eq!(
        f.counts,
        InstanceCounts {
            total: 1,
            unhealthy: 1,
            power_state_unknown: 1,
            no_instance_view: 1,
            application_health: not_reported(1),
            ..Default::default()
        }
    );
    assert_eq!(f.unhealthy[0].instance_id, "0");
    assert!(f.fault_domains.is_empty());
}

#[test]
fn flexible_list_items_are_counted_without_instance_view_and_say_why() {
    let f = fleet("VirtualMachineScaleSetVM_List_WithVirtualMachineResourceId.json");
    assert_eq!(f.counts.total, 2);
    assert_eq!(f.counts.no_instance_view, 2);
    assert_eq!(f.unhealthy[0].instance_id, "{vmss-flex-vm-name}_1");
    assert!(
        f.unhealthy[0].reasons[0].contains("Flexible orchestration"),
        "{:?}",
        f.unhealthy[0]
    );
}

#[test]
fn recorded_real_instance_view_is_healthy() {
    let body =
        body("cloud-provider-azure_AZURECLOUD_VirtualMachineScaleSetVMs_GetInstanceView.json");
    // One VM's instance view: read as the instance view of a one-VM list page.
    let mut page = br#"{"value": [{"instanceId": "0", "properties": {"instanceView": "#.to_vec();
    page.extend_from_slice(&body);
    page.extend_from_slice(b"}}]}");
    let snapshot = ScaleSetSnapshot::from_pages([page]).expect("instance view parses");
    assert!(snapshot.instances()[0].view.is_some());
    let f = assess(&snapshot, &HealthPolicy::default());
    assert_eq!(
        f.counts,
        InstanceCounts {
            total: 1,
            healthy: 1,
            running: 1,
            application_health: not_reported(1),
            ..Default::default()
        }
    );
    assert!(f.policy_met);
    assert_eq!(f.healthy_percent, 100);
    assert_eq!(
        f.fault_domains,
        vec![DomainHealth {
            domain: 0,
            total: 1,
            unhealthy: 0
        }]
    );
}

/// Every list example, read as one page and as the same page served twice (an instance on two
/// pages): each instance counts once, and both judge alike.
#[test]
fn every_example_read_twice_counts_each_instance_once() {
    let mut tried = 0;
    for entry in std::fs::read_dir(fixtures()).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().contains("GetInstanceView") {
            continue; // one VM's instance view, not a list response
        }
        let body = std::fs::read(&path).expect("readable");
        let once = ScaleSetSnapshot::from_pages([&body]).expect("parses");
        assert!(!once.instances().is_empty(), "{}", path.display());
        let twice = ScaleSetSnapshot::from_pages([&body, &body]).expect("parses");
        assert_eq!(twice, once, "{}", path.display());
        assert_eq!(
            assess(&twice, &HealthPolicy::default()),
            assess(&once, &HealthPolicy::default()),
            "{}",
            path.display()
        );
        tried += 1;
    }
    assert!(tried >= 4, "only {tried} list examples found");
}

/// Every value of every example, replaced in turn by a value of each other JSON type: the page
/// must still parse (the poll goes on) and be judged without panicking.
#[test]
fn any_value_of_an_unexpected_type_costs_that_value_not_the_poll() {
    use serde_json::{Value, json};
    fn paths(v: &Value, here: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(here.clone());
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    here.push(k.clone());
                    paths(child, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    here.push(i.to_string());
                    paths(child, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
        path.iter().fold(v, |v, key| match v {
            Value::Array(items) => &mut items[key.parse::<usize>().expect("index")],
            other => &mut other[key.as_str()],
        })
    }
    let replacements = [
        json!(null),
        json!(7),
        json!("x"),
        json!([1]),
        json!({"a": 1}),
        json!(true),
    ];
    let mut tried = 0;
    for name in [
        "seed-2017-03-30-list-instance-views.json",
        "VirtualMachineScaleSetVM_List_MaximumSet_Gen.json",
    ] {
        let original: Value =
            serde_json::from_slice(&std::fs::read(fixtures().join(name)).expect("read"))
                .expect("json");
        let mut all = Vec::new();
        paths(&original, &mut Vec::new(), &mut all);
        for path in all.iter().filter(|p| !p.is_empty()) {
            for replacement in &replacements {
                let mut doc = original.clone();
                *at(&mut doc, path) = replacement.clone();
                let body = serde_json::to_vec(&doc).expect("serializes");
                // The skeleton (the `value` list and its VM objects) is strict: breaking it
                // breaks the page rather than hiding instances.
                let skeleton = path[0] == "value" && path.len() <= 2;
                let still_skeleton_shaped = match path.len() {
                    1 => replacement
                        .as_array()
                        .is_some_and(|items| items.iter().all(|i| i.is_object())),
                    _ => replacement.is_object(),
                };
                if skeleton && !still_skeleton_shaped {
                    assert!(
                        parse_page(&body).is_err(),
                        "{name}: {path:?} = {replacement} parsed"
                    );
                    continue;
                }
                let snapshot = ScaleSetSnapshot::from_pages([&body])
                    .unwrap_or_else(|e| panic!("{name}: {path:?} = {replacement}: {e}"));
                let _ = assess(&snapshot, &HealthPolicy::default());
                tried += 1;
            }
        }
    }
    assert!(tried > 1000, "only {tried} variants");
}

/// A body cut anywhere is an error, never a panic and never a silently shorter fleet.
#[test]
fn a_truncated_page_is_an_error() {
    let body =
        std::fs::read(fixtures().join("seed-2017-03-30-list-instance-views.json")).expect("read");
    let end = body
        .iter()
        .rposition(|b| *b == b'}')
        .expect("closing brace");
    for cut in 1..end {
        assert!(parse_page(&body[..cut]).is_err(), "cut at {cut} parsed");
    }
}

fn not_reported(n: u32) -> ApplicationHealthCounts {
    ApplicationHealthCounts {
        not_reported: n,
        ..Default::default()
    }
}
