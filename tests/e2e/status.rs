//! What the status says and `kubectl get` shows: counts, reasons, conditions and events,
//! bounded for huge fleets, outdated models during a rollout, and Uniform and Flexible sets
//! alike.

use crate::support::assert_eventually;
use crate::support::controller::{condition, watch_yaml};
use crate::{env, events, get, ready_watch, support, wait_condition};
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn status_reports_counts_reasons_and_conditions() {
    let e = env();
    let ns = e.cluster.create_namespace("counts");
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "workers", &[], "rg-e2e", "worker", ""));
    let obj = wait_condition(
        &ns,
        "workers",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(40),
    );
    let s = &obj["status"];
    let i = &s["instances"];
    assert_eq!(i["total"], 12, "{s:#}");
    assert_eq!(i["healthy"], 9);
    assert_eq!(i["unhealthy"], 3);
    assert_eq!(i["running"], 11);
    assert_eq!(i["deallocated"], 1);
    assert_eq!(i["extensionsFailed"], 1);
    assert_eq!(i["applicationUnhealthy"], 1);
    assert_eq!(i["noInstanceView"], 0);
    assert_eq!(s["summary"], "9/12");
    assert_eq!(s["healthyPercent"], 75);
    assert_eq!(s["observedGeneration"], obj["metadata"]["generation"]);
    let unhealthy: Vec<(String, Vec<String>)> = s["unhealthyInstances"]
        .as_array()
        .expect("list")
        .iter()
        .map(|u| {
            (
                u["instanceId"].as_str().unwrap_or_default().to_owned(),
                u["reasons"]
                    .as_array()
                    .expect("reasons")
                    .iter()
                    .map(|r| r.as_str().unwrap_or_default().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        unhealthy,
        vec![
            (
                "3".to_string(),
                vec!["extension bootstrap failed: Enable failed: exit status=1".to_string()]
            ),
            (
                "7".to_string(),
                vec!["power state deallocated (expected running)".to_string()]
            ),
            (
                "9".to_string(),
                vec!["application health unhealthy".to_string()]
            ),
        ],
        "{s:#}"
    );
    let fds = s["faultDomains"].as_array().expect("fault domains");
    assert_eq!(fds.len(), 3);
    assert_eq!(
        fds.iter()
            .map(|d| d["total"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        12
    );
    assert_eq!(
        s["updateDomains"].as_array().expect("update domains").len(),
        4
    );
    let healthy = condition(&obj, "Healthy").expect("Healthy");
    assert_eq!(healthy["status"], "False");
    assert_eq!(healthy["reason"], "BelowMinHealthy");
    assert_eq!(
        condition(&obj, "Degraded").expect("Degraded")["status"],
        "True"
    );

    // What a person sees.
    let table = e.cluster.kubectl_ok(&["get", "ssw", "-n", &ns]);
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "NAME",
        "SCALE SET",
        "HEALTHY",
        "READY",
        "STATUS",
        "LAST POLL",
        "AGE",
    ] {
        assert!(header.contains(column), "column {column} missing:\n{table}");
    }
    let row = table.lines().nth(1).unwrap_or_default();
    for cell in ["workers", "worker", "9/12", "True", "BelowMinHealthy"] {
        assert!(row.contains(cell), "{cell} missing:\n{table}");
    }

    // A laxer policy on the same fleet.
    e.cluster.kubectl_apply_stdin(&watch_yaml(
        &ns,
        "workers-lax",
        &[],
        "rg-e2e",
        "worker",
        "  health:\n    minHealthyPercent: 70\n    expectedPowerStates: [running, deallocated]",
    ));
    let lax = wait_condition(
        &ns,
        "workers-lax",
        "Healthy",
        "True",
        Some("MinHealthyMet"),
        Duration::from_secs(40),
    );
    assert_eq!(
        lax["status"]["summary"], "10/12",
        "deallocated is expected here"
    );
}

#[test]
fn an_instance_turning_unhealthy_and_back_is_seen_within_an_interval_with_events() {
    let e = env();
    let ns = e.cluster.create_namespace("flip");
    let flip = e.sim.scale_set("rg-e2e", "flip");
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "flip", &[], "rg-e2e", "flip", ""));
    wait_condition(
        &ns,
        "flip",
        "Healthy",
        "True",
        Some("AllInstancesHealthy"),
        Duration::from_secs(40),
    );

    e.sim.put_instance(
        &flip,
        "{id: 1, disks: [{name: osdisk, state: failed, message: 'disk detached'}]}",
    );
    let broke = Instant::now();
    let obj = wait_condition(
        &ns,
        "flip",
        "Healthy",
        "False",
        Some("BelowMinHealthy"),
        Duration::from_secs(10 + 8),
    );
    eprintln!("unhealthy seen after {:?}", broke.elapsed());
    assert_eq!(obj["status"]["unhealthyInstances"][0]["instanceId"], "1");
    assert_eq!(
        obj["status"]["unhealthyInstances"][0]["reasons"][0],
        "disk osdisk failed: disk detached"
    );
    assert_eq!(obj["status"]["instances"]["disksFailed"], 1);
    assert_eventually(Duration::from_secs(10), "an Unhealthy event", || {
        events(&ns, "flip")
            .iter()
            .any(|ev| ev["reason"] == "Unhealthy" && ev["type"] == "Warning")
    });

    e.sim.put_instance(&flip, "{id: 1}");
    let obj = wait_condition(
        &ns,
        "flip",
        "Healthy",
        "True",
        Some("AllInstancesHealthy"),
        Duration::from_secs(10 + 8),
    );
    assert!(
        obj["status"]["unhealthyInstances"].is_null(),
        "{:#}",
        obj["status"]
    );
    assert_eventually(Duration::from_secs(10), "a Healthy event", || {
        events(&ns, "flip")
            .iter()
            .any(|ev| ev["reason"] == "Healthy" && ev["type"] == "Normal")
    });
    // One event per transition, not one per poll.
    let unhealthy_events = events(&ns, "flip")
        .iter()
        .filter(|ev| ev["reason"] == "Unhealthy")
        .count();
    assert_eq!(unhealthy_events, 1);
}

#[test]
fn a_fleet_with_huge_extension_messages_still_gets_a_bounded_status() {
    let e = env();
    let ns = e.cluster.create_namespace("huge");
    e.cluster
        .kubectl_apply_stdin(&watch_yaml(&ns, "huge", &[], "rg-e2e", "huge", ""));
    // 60 instances x 3 extensions x 20 KB: unbounded, the status is megabytes, which the API
    // server and etcd refuse, and Ready never turns True.
    let obj = wait_condition(
        &ns,
        "huge",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(60),
    );
    let s = &obj["status"];
    assert_eq!(s["instances"]["unhealthy"], 60, "{}", s["instances"]);
    assert_eq!(s["instances"]["extensionsFailed"], 60);
    let listed = s["unhealthyInstances"].as_array().expect("listed");
    let omitted = s["unhealthyInstancesOmitted"].as_u64().unwrap_or(0);
    assert_eq!(listed.len() as u64 + omitted, 60);
    assert_eq!(listed.len(), 50);
    for u in listed {
        let reasons = u["reasons"].as_array().expect("reasons");
        assert_eq!(reasons.len(), 3, "{u}");
        for r in reasons {
            let r = r.as_str().unwrap_or_default();
            assert!(r.len() <= 512, "{} bytes", r.len());
            assert!(
                r.starts_with("extension ") && r.contains(" failed: Enable failed: xxx"),
                "{r}"
            );
            assert!(r.ends_with('…'), "a cut reason says so: {r}");
        }
    }
    let size = serde_json::to_vec(s).expect("json").len();
    assert!(size <= 128 * 1024, "status of {size} bytes");
    for c in s["conditions"].as_array().expect("conditions") {
        assert!(c["message"].as_str().unwrap_or_default().len() <= 4096);
    }
}

#[test]
fn kubectl_get_wide_shows_the_resource_group_and_the_condition_messages() {
    let e = env();
    let (ns, _) = ready_watch("wide", "w", "worker");
    let obj = wait_condition(&ns, "w", "Degraded", "True", None, Duration::from_secs(30));
    let degraded = condition(&obj, "Degraded").expect("Degraded")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        degraded.starts_with("3 unhealthy: 3 (extension bootstrap failed"),
        "{degraded}"
    );
    let wide = e
        .cluster
        .kubectl_ok(&["get", "ssw", "w", "-n", &ns, "-o", "wide"]);
    let mut lines = wide.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    for column in [
        "RESOURCE GROUP",
        "MODE",
        "OUTDATED",
        "READY MESSAGE",
        "DEGRADED MESSAGE",
    ] {
        assert!(header.contains(column), "{column} missing:\n{wide}");
    }
    for value in [
        " rg-e2e ",
        " Uniform ",
        "Listed 12 instances of scale set worker",
        degraded.as_str(),
    ] {
        assert!(row.contains(value), "{value:?} missing:\n{wide}");
    }
    let narrow = e.cluster.kubectl_ok(&["get", "ssw", "w", "-n", &ns]);
    assert!(
        !narrow.contains("RESOURCE GROUP") && !narrow.contains("Listed 12"),
        "the default view is unchanged:\n{narrow}"
    );
}

/// A rolling upgrade as the simulator plays it: instances move to the latest model one by
/// one, and `outdatedModel` counts down to 0 while the watch stays healthy (Report).
#[test]
fn a_rolling_upgrade_shows_outdated_model_counting_down() {
    let (ns, rollout) = ready_watch("rollout", "rollout", "rollout");
    let outdated = |expected: u64| {
        let mut last = Value::Null;
        let seen = support::wait_for(Duration::from_secs(10 + 8), || {
            last = get(&ns, "rollout");
            last["status"]["instances"]["outdatedModel"] == expected
        });
        assert!(seen, "outdatedModel {expected}: {:#}", last["status"]);
        last
    };
    let obj = outdated(3);
    assert_eq!(
        obj["status"]["outdatedInstances"],
        serde_json::json!(["0", "1", "2"])
    );
    assert_eq!(
        obj["status"]["summary"], "3/3",
        "Report: outdated is not unhealthy"
    );
    for (id, left) in [("0", 2), ("1", 1), ("2", 0)] {
        env()
            .sim
            .put_instance(&rollout, &format!("{{id: {id}, latestModelApplied: true}}"));
        let obj = outdated(left);
        assert_eq!(obj["status"]["summary"], "3/3");
    }
    let obj = get(&ns, "rollout");
    assert!(
        obj["status"]["outdatedInstances"].is_null(),
        "{:#}",
        obj["status"]
    );
}

/// The same instance states in a Uniform and a Flexible set give the same health, counts,
/// zones and reasons; only what Flexible VMs do not have (latestModelApplied, protection
/// policies) is absent there.
#[test]
fn uniform_and_flexible_sets_with_the_same_instances_report_the_same_health() {
    let (ns_u, _) = ready_watch("twin-u", "twin", "twin-uniform");
    let (ns_f, _) = ready_watch("twin-f", "twin", "twin-flex");
    let (u, f) = (get(&ns_u, "twin"), get(&ns_f, "twin"));
    let (su, sf) = (&u["status"], &f["status"]);
    let i = &su["instances"];
    assert_eq!(su["summary"], "3/6", "{su:#}");
    assert_eq!(
        i["applicationHealth"],
        serde_json::json!({"healthy": 3, "unhealthy": 1, "unknown": 1, "initializing": 1, "notReported": 0})
    );
    assert_eq!(
        i["applicationHealthPending"], 1,
        "the unknown one, created in 2020"
    );
    assert_eq!(i["outdatedModel"], 0);
    assert_eq!(i["protectedFromScaleIn"], 1);
    assert_eq!(
        su["zones"],
        serde_json::json!([
            {"zone": "1", "total": 2, "unhealthy": 0},
            {"zone": "2", "total": 2, "unhealthy": 2},
            {"zone": "3", "total": 2, "unhealthy": 1}
        ])
    );
    for field in ["summary", "healthyPercent", "zones"] {
        assert_eq!(su[field], sf[field], "{field}");
    }
    assert_eq!(
        (&su["orchestrationMode"], &sf["orchestrationMode"]),
        (
            &serde_json::json!("Uniform"),
            &serde_json::json!("Flexible")
        )
    );
    let mut without_model = i.clone();
    for key in [
        "outdatedModel",
        "protectedFromScaleIn",
        "protectedFromScaleSetActions",
    ] {
        without_model.as_object_mut().map(|o| o.remove(key));
        assert!(sf["instances"][key].is_null(), "Flexible: no {key}");
    }
    assert_eq!(without_model, sf["instances"]);
    // Reasons alike; Flexible instances are named by VM name.
    let reasons = |s: &Value| -> Vec<Value> {
        s["unhealthyInstances"]
            .as_array()
            .expect("listed")
            .iter()
            .map(|u| u["reasons"].clone())
            .collect()
    };
    assert_eq!(reasons(su), reasons(sf));
    assert_eq!(sf["unhealthyInstances"][0]["instanceId"], "twin-flex_1");
    for s in [su, sf] {
        let degraded = s["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .find(|c| c["type"] == "Degraded")
            .expect("Degraded");
        assert_eq!(degraded["status"], "True");
    }
}
