//! What an operator sees: `/healthz`, `/readyz` and `/metrics` (OpenMetrics), and JSON logs
//! that name the watch and leak no secret.

use crate::support::controller::{Controller, SECRET, SimEnv, TENANT, wait_condition, watch_yaml};
use crate::support::prometheus::{Sample, parse_samples, sample, sum};
use crate::support::{Cluster, assert_eventually};
use crate::{controller_kubeconfig, http_get, metrics, ops_scenario, support};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn metrics_and_probes() {
    let cluster = Cluster::shared();
    let kubeconfig = controller_kubeconfig(cluster);
    let sim = SimEnv::start(&ops_scenario());
    let ns = cluster.create_namespace("metrics");
    cluster.kubectl_apply_stdin(&watch_yaml(&ns, "m", &[], "rg-ops", "metrics", ""));
    let c = Controller::start(cluster, &kubeconfig, &sim, &[("SSW_NAMESPACE", &ns)], &[]);

    let health = http_get(&c, "/healthz");
    assert_eq!((health.code, health.body.as_str()), (200, "ok"));
    assert_eventually(Duration::from_secs(20), "/readyz 200", || {
        http_get(&c, "/readyz").code == 200
    });
    assert_eq!(http_get(&c, "/nothing-here").code, 404);

    wait_condition(
        cluster,
        &ns,
        "m",
        "Ready",
        "True",
        Some("PollSucceeded"),
        Duration::from_secs(30),
    );
    let w = [("namespace", ns.as_str()), ("name", "m")];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = w.to_vec();
        l.push(extra);
        l
    };
    // The status is written inside the reconcile and the reconcile is counted when it returns,
    // so the condition can be seen a moment before the counter moves.
    assert_eventually(
        Duration::from_secs(10),
        "a finished reconcile is counted",
        || sample(&metrics(&c).1, "scaleset_watch_reconciles_total", &[]).is_some_and(|n| n >= 1.0),
    );
    let r = http_get(&c, "/metrics");
    assert_eq!(r.code, 200);
    assert!(
        r.content_type.starts_with("application/openmetrics-text"),
        "{}",
        r.content_type
    );
    let text = r.body;
    let s = parse_samples(&text);

    for (family, kind) in [
        ("scaleset_watch_instances", "gauge"),
        ("scaleset_watch_healthy_percent", "gauge"),
        ("scaleset_watch_condition", "gauge"),
        ("scaleset_watch_arm_requests", "counter"),
        ("scaleset_watch_arm_request_duration_seconds", "histogram"),
        ("scaleset_watch_arm_throttled", "counter"),
        ("scaleset_watch_arm_remaining_resource_reads", "gauge"),
        ("scaleset_watch_reconciles", "counter"),
        // (scaleset_watch_reconcile_errors has no series yet: the encoder omits empty
        // labelled families.)
        ("scaleset_watch_reconcile_duration_seconds", "histogram"),
    ] {
        let type_line = format!("# TYPE {family} {kind}");
        assert!(
            text.lines().any(|l| l == type_line),
            "no {type_line:?} in:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# HELP {family} "))),
            "no HELP for {family}:\n{text}"
        );
    }
    assert_eq!(
        text.lines().last(),
        Some("# EOF"),
        "OpenMetrics ends with # EOF"
    );

    let gauge = |name: &str, labels: &[(&str, &str)]| {
        sample(&s, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };
    assert_eq!(
        gauge("scaleset_watch_instances", &with(("state", "total"))),
        4.0
    );
    assert_eq!(
        gauge("scaleset_watch_instances", &with(("state", "healthy"))),
        3.0
    );
    assert_eq!(
        gauge("scaleset_watch_instances", &with(("state", "unhealthy"))),
        1.0
    );
    assert_eq!(
        gauge(
            "scaleset_watch_instances",
            &with(("state", "application_unhealthy"))
        ),
        1.0
    );
    assert_eq!(gauge("scaleset_watch_healthy_percent", &w), 75.0);
    // One series per condition and status, the current status at 1 (Unknown is not 0).
    let condition = |c: &'static str, status: &'static str| {
        let mut l = with(("condition", c));
        l.push(("status", status));
        l
    };
    for (c, current) in [
        ("Ready", "true"),
        ("Healthy", "false"),
        ("Degraded", "true"),
    ] {
        for status in ["true", "false", "unknown"] {
            assert_eq!(
                gauge("scaleset_watch_condition", &condition(c, status)),
                f64::from(u8::from(status == current)),
                "{c} {status}"
            );
        }
    }
    assert_eq!(gauge("scaleset_watch_suspended", &w), 0.0);

    let ok = gauge("scaleset_watch_arm_requests_total", &[("code", "200")]);
    // Four instances on pages of three: two pages per fetch.
    assert!(ok >= 2.0, "{ok} ARM requests answered 200");
    let count = gauge("scaleset_watch_arm_request_duration_seconds_count", &[]);
    assert_eq!(count, sum(&s, "scaleset_watch_arm_requests_total"));
    let inf = gauge(
        "scaleset_watch_arm_request_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(inf, count, "the +Inf bucket holds every request");
    let buckets = s
        .iter()
        .filter(|x| x.name == "scaleset_watch_arm_request_duration_seconds_bucket")
        .count();
    assert!(buckets > 2, "{buckets} buckets");
    assert!(gauge("scaleset_watch_reconciles_total", &[]) >= 1.0);
    assert!(gauge("scaleset_watch_reconcile_duration_seconds_count", &[]) >= 1.0);

    // The gauges follow the fleet.
    let r = sim.scale_set("rg-ops", "metrics");
    sim.put_instance(&r, "{id: 2, appHealth: healthy}");
    // Counts are recorded when polled and conditions when judged: wait for a scrape after both.
    let healed = |s: &[Sample]| {
        sample(s, "scaleset_watch_instances", &with(("state", "healthy"))) == Some(4.0)
            && sample(s, "scaleset_watch_condition", &condition("Healthy", "true")) == Some(1.0)
            && sample(
                s,
                "scaleset_watch_condition",
                &condition("Degraded", "false"),
            ) == Some(1.0)
    };
    assert_eventually(
        Duration::from_secs(10 + 10),
        "healthy gauge at 4, Healthy true, Degraded false",
        || healed(&metrics(&c).1),
    );
    let (text, s) = metrics(&c);
    assert_eq!(
        sample(&s, "scaleset_watch_healthy_percent", &w),
        Some(100.0),
        "{text}"
    );
}

#[test]
fn json_logs_carry_the_watch_and_no_secret() {
    let cluster = Cluster::shared();
    let kubeconfig = controller_kubeconfig(cluster);
    let sim = SimEnv::start(&ops_scenario());
    let ns = cluster.create_namespace("logs");
    // A healthy poll, a failing one (no such scale set), and one with a Secret's credentials.
    cluster.kubectl_apply_stdin(&watch_yaml(&ns, "good", &[], "rg-ops", "logs", ""));
    cluster.kubectl_apply_stdin(&watch_yaml(
        &ns,
        "missing",
        &[],
        "rg-ops",
        "no-such-scale-set",
        "",
    ));
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "azure-sp",
        "-n",
        &ns,
        &format!("--from-literal=tenantId={TENANT}"),
        &format!("--from-literal=clientId={}", support::controller::CLIENT),
        &format!("--from-literal=clientSecret={SECRET}"),
    ]);
    let sp = format!(
        "{}  credentials:\n    secretRef:\n      name: azure-sp\n",
        watch_yaml(&ns, "sp", &[], "rg-ops", "logs", "")
    );
    cluster.kubectl_apply_stdin(&sp);
    let mut c = Controller::start(
        cluster,
        &kubeconfig,
        &sim,
        &[
            ("SSW_NAMESPACE", &ns),
            ("SSW_LOG_FORMAT", "json"),
            // Every crate at debug: the HTTP and Azure clients too.
            ("SSW_LOG_LEVEL", "debug"),
        ],
        &[],
    );
    for name in ["good", "sp"] {
        wait_condition(
            cluster,
            &ns,
            name,
            "Ready",
            "True",
            Some("PollSucceeded"),
            Duration::from_secs(30),
        );
    }
    wait_condition(
        cluster,
        &ns,
        "missing",
        "Ready",
        "False",
        Some("ScaleSetNotFound"),
        Duration::from_secs(30),
    );
    // Shutting down flushes nothing (stderr is unbuffered) but ends the log for sure.
    let status = c.terminate(Duration::from_secs(25)).expect("exits");
    assert!(status.success(), "{status}");
    let logs = c.logs();

    let mut lines = Vec::new();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        for field in ["timestamp", "level", "target"] {
            assert!(v[field].is_string(), "no {field} in {line}");
        }
        lines.push((line, v));
    }
    assert!(lines.len() > 10, "only {} lines:\n{logs}", lines.len());

    // Every line of a reconcile (inside kube-runtime's "reconciling object" span) carries the
    // watch it is about in its span fields, and so does what a reconcile reports.
    let watches = ["good", "missing", "sp"];
    let mut seen = BTreeMap::<String, Vec<String>>::new();
    for (line, v) in &lines {
        let message = v["message"].as_str().unwrap_or_default();
        let object_ref = v["spans"].as_array().and_then(|spans| {
            spans
                .iter()
                .find(|s| s["name"] == "reconciling object")
                .and_then(|s| s["object.ref"].as_str())
        });
        let reports = matches!(message, "condition changed" | "poll failed");
        if object_ref.is_none() && !reports {
            continue;
        }
        // The innermost span may be a client's (kube's "HTTP"); the reconcile span is in the
        // list of every span the line is in.
        let span = v["spans"]
            .as_array()
            .and_then(|spans| spans.iter().rev().find(|s| s["name"] == "reconcile"))
            .unwrap_or_else(|| panic!("not in a reconcile span: {line}"));
        if reports {
            assert_eq!(&v["span"], span, "{line}");
        }
        assert_eq!(span["namespace"], ns.as_str(), "{line}");
        let name = span["scalesetwatch"].as_str().unwrap_or_default();
        assert!(watches.contains(&name), "no watch name in the span: {line}");
        if let Some(r) = object_ref {
            assert!(
                r.ends_with(&format!("/{name}.{ns}")),
                "the span names {name}, kube-runtime {r}: {line}"
            );
        }
        seen.entry(name.to_owned())
            .or_default()
            .push(message.to_owned());
    }
    for name in watches {
        assert!(
            seen.get(name)
                .is_some_and(|m| m.iter().any(|m| m == "condition changed")),
            "no 'condition changed' line for {name}: {seen:?}\n{logs}"
        );
    }
    assert!(
        seen["missing"].iter().any(|m| m == "poll failed"),
        "{seen:?}"
    );
    // The ARM client's own debug lines are among them.
    let in_reconcile = seen.values().map(Vec::len).sum::<usize>();
    assert!(
        in_reconcile > 6,
        "only {in_reconcile} lines inside reconciles: {seen:?}"
    );

    // No secret and no bearer token, in any line.
    let sa_token = std::fs::read_to_string(&kubeconfig)
        .expect("kubeconfig")
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:").map(|t| t.trim().to_owned()))
        .expect("token in kubeconfig");
    for (line, _) in &lines {
        assert!(!line.contains(SECRET), "the client secret leaked: {line}");
        assert!(
            !line.contains(&sa_token),
            "the Kubernetes token leaked: {line}"
        );
        // Every token here (Kubernetes' and the simulated Entra ID's) is a JWT.
        assert!(!line.contains("eyJ"), "a JWT leaked: {line}");
        assert!(
            !line.to_ascii_lowercase().contains("bearer "),
            "an Authorization header leaked: {line}"
        );
    }
}
