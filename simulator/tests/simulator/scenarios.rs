//! The scenario files: the built-in demo fleet and every example parse and validate.

use crate::common::*;

#[test]
fn the_demo_fleet_parses() {
    let s = Scenario::from_yaml(ssw_simulator::DEMO_SCENARIO).expect("fleet.yaml");
    let sets = &s.subscriptions[0].resource_groups[0].scale_sets;
    assert_eq!(
        sets.iter()
            .map(|s| s.expanded_instances().len())
            .collect::<Vec<_>>(),
        [5, 12]
    );
    assert!(sets.iter().all(|s| s.page_size == 5));
}

#[test]
fn every_example_scenario_parses() {
    // The examples stay at the project's top level, beside the watches they go with.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/simulator");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text =
            ssw_simulator::scenario::expand_env(&text, |name| Some(format!("https://{name}.test")))
                .unwrap();
        let scenario =
            Scenario::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!scenario.subscriptions.is_empty(), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 5, "{seen} examples");
}
