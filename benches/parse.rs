//! Typed parse + health aggregation of a 1,000-instance list page, against a plain
//! `serde_json` validation pass over the same bytes into `IgnoredAny` (the floor for any JSON
//! consumer). Target: ours costs at most 2x the floor.
//!
//! Run: `cargo bench --bench parse` (criterion prints throughput in MiB/s for both).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scaleset_watch::arm::model::{check_page, for_each_vm, parse_page};
use scaleset_watch::crd::HealthPolicy;
use scaleset_watch::health::{FleetAssessment, assess};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn status(code: &str, level: &str, display: &str, message: Option<&str>) -> Value {
    let mut s = json!({
        "code": code,
        "level": level,
        "displayStatus": display,
        "time": "2026-11-01T04:05:06.1234567+00:00"
    });
    if let Some(m) = message {
        s["message"] = json!(m);
    }
    s
}

/// An instance shaped like the recorded cloud-provider-azure instance view plus the extension,
/// disk and application-health parts of the spec examples; every 10th one has a failed extension.
fn instance(i: usize) -> Value {
    let failed = i % 10 == 3;
    json!({
        "name": format!("vmss-web_{i}"),
        "id": format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web/virtualMachines/{i}"),
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": "westeurope",
        "instanceId": i.to_string(),
        "sku": {"name": "Standard_D4s_v5", "tier": "Standard"},
        "zones": [((i % 3) + 1).to_string()],
        "properties": {
            "latestModelApplied": true,
            "provisioningState": "Succeeded",
            "instanceView": {
                "placementGroupId": "00000000-0000-0000-0000-000000000000",
                "platformUpdateDomain": i % 5,
                "platformFaultDomain": i % 3,
                "computerName": format!("vmss-web{i:06}"),
                "osName": "ubuntu",
                "osVersion": "22.04",
                "hyperVGeneration": "V2",
                "vmAgent": {
                    "vmAgentVersion": "2.9.1.1",
                    "statuses": [status("ProvisioningState/succeeded", "Info", "Ready", Some("Guest Agent is running"))],
                    "extensionHandlers": [{
                        "type": "Microsoft.Azure.Extensions.CustomScript",
                        "typeHandlerVersion": "2.1.10",
                        "status": status("ProvisioningState/succeeded", "Info", "Ready", Some("Plugin enabled"))
                    }]
                },
                "disks": [{
                    "name": format!("vmss-web_vmss-web_{i}_OsDisk_1_0123456789abcdef0123456789abcdef"),
                    "statuses": [status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", None)]
                }],
                "extensions": [{
                    "name": "bootstrap",
                    "type": "Microsoft.Azure.Extensions.CustomScript",
                    "typeHandlerVersion": "2.1.10",
                    "statuses": [if failed {
                        status("ProvisioningState/failed/1", "Error", "Provisioning failed", Some("Enable failed: exit status 1"))
                    } else {
                        status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", Some("Enable succeeded"))
                    }],
                    "substatuses": [status("ComponentStatus/StdOut/succeeded", "Info", "Provisioning succeeded", Some("bootstrap complete"))]
                }],
                "vmHealth": {"status": status("HealthState/healthy", "Info", "The VM is healthy", None)},
                "statuses": [
                    status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", None),
                    json!({"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"})
                ]
            }
        }
    })
}

fn page() -> Vec<u8> {
    let value: Vec<Value> = (0..1000).map(instance).collect();
    serde_json::to_vec(&json!({ "value": value })).expect("serializes")
}

fn bench(c: &mut Criterion) {
    let body = page();
    let policy = HealthPolicy::default();
    // Sanity: the benchmark measures real work on a page the model judges as expected.
    let fleet = assess(&parse_page(&body).expect("parses").value, &policy);
    assert_eq!(fleet.counts.total, 1000);
    assert_eq!(fleet.counts.extensions_failed, 100);
    eprintln!(
        "page: {} bytes, {} instances",
        body.len(),
        fleet.counts.total
    );

    let mut group = c.benchmark_group("list-1000");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("serde_json IgnoredAny (floor)", |b| {
        b.iter(|| {
            let v: serde::de::IgnoredAny = serde_json::from_slice(black_box(&body)).expect("valid");
            black_box(v)
        })
    });
    // The client's pass over each page as it arrives: checks it and finds the next link.
    group.bench_function("fetch-time check (check_page)", |b| {
        b.iter(|| black_box(check_page(black_box(&body)).expect("valid")))
    });
    group.bench_function("typed parse", |b| {
        b.iter(|| black_box(parse_page(black_box(&body)).expect("valid")))
    });
    let parsed = parse_page(&body).expect("valid").value;
    group.bench_function("assess", |b| {
        b.iter(|| black_box(assess(black_box(&parsed), &policy)))
    });
    // What a poll costs: instances are parsed and judged one at a time, as the controller does.
    group.bench_function("typed parse + assess", |b| {
        b.iter(|| {
            let mut fleet = FleetAssessment::new(&policy);
            for_each_vm(black_box(&body), |vm| fleet.add(&vm)).expect("valid");
            black_box(fleet.finish())
        })
    });
    group.finish();
    // `cargo test` runs this binary too, once per row and unoptimised: no figure from that.
    if std::env::args().any(|a| a == "--bench") {
        ratio(&body, &policy);
    }
}

/// The target as one figure. Criterion's rows run minutes apart, and on a shared machine the
/// floor alone drifts by 20% between them; alternating the two passes round by round and
/// comparing medians cancels that drift.
fn ratio(body: &[u8], policy: &HealthPolicy) {
    const ROUNDS: usize = 400;
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let mut floor = Vec::with_capacity(ROUNDS);
    let mut ours = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        floor.push(time(&mut || {
            let v: serde::de::IgnoredAny = serde_json::from_slice(black_box(body)).expect("valid");
            black_box(v);
        }));
        ours.push(time(&mut || {
            let mut fleet = FleetAssessment::new(policy);
            for_each_vm(black_box(body), |vm| fleet.add(&vm)).expect("valid");
            black_box(fleet.finish());
        }));
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (floor, ours) = (median(&mut floor), median(&mut ours));
    eprintln!(
        "typed parse + assess / serde_json IgnoredAny, medians of {ROUNDS} alternating rounds: \
         {ours:?} / {floor:?} = {:.2}x (target: at most 2x)",
        ours.as_secs_f64() / floor.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
