//! Prometheus metrics: per ScaleSetWatch gauges, ARM traffic, reconcile counts.

use crate::arm::client::{RequestObserver, ScaleSetRef};
use crate::crd::InstanceCounts;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub namespace: String,
    pub name: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub namespace: String,
    pub name: String,
    pub condition: &'static str,
    /// `true`, `false` or `unknown`: every watch has all three series per condition, the
    /// current one at 1, as kube-state-metrics does for pod conditions, so that `Unknown` is
    /// neither 0 nor a gap.
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// HTTP status code, or "error" when no response arrived.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionLabels {
    pub subscription: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceBudgetLabels {
    pub subscription: String,
    pub resource_group: String,
    pub scale_set: String,
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// The conditions that have series, and the `status` label values of each.
const CONDITIONS: [&str; 3] = ["Ready", "Healthy", "Degraded"];
const CONDITION_STATUSES: [&str; 3] = ["true", "false", "unknown"];

/// The `state` label values of `scaleset_watch_instances`, in the order `record_counts` sets them.
const STATES: [&str; 23] = [
    "total",
    "healthy",
    "unhealthy",
    "running",
    "stopped",
    "deallocated",
    "transitioning",
    "power_state_unknown",
    "provisioning_failed",
    "provisioning_in_progress",
    "vm_agent_not_ready",
    "extensions_failed",
    "disks_failed",
    "application_unhealthy",
    "no_instance_view",
    "application_health_pending",
    "app_health_healthy",
    "app_health_unhealthy",
    "app_health_unknown",
    "app_health_initializing",
    // Known only with the model view: no series otherwise, rather than a 0 that is a claim.
    "outdated_model",
    "protected_from_scale_in",
    "protected_from_scale_set_actions",
];

pub struct Metrics {
    registry: Registry,
    instances: Family<InstanceLabels, Gauge>,
    healthy_percent: Family<WatchLabels, Gauge>,
    condition: Family<ConditionLabels, Gauge>,
    suspended: Family<WatchLabels, Gauge>,
    arm_requests: Family<CodeLabels, Counter>,
    arm_duration: Histogram,
    arm_throttled: Counter,
    arm_remaining_reads: Family<SubscriptionLabels, Gauge>,
    arm_remaining_resource_reads: Family<ResourceBudgetLabels, Gauge>,
    reconciles: Counter,
    reconcile_errors: Family<ReasonLabels, Counter>,
    reconcile_duration: Histogram,
    /// Watches that have per-watch series, so the series of deleted ones can be dropped.
    watches: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// Scale sets that have budget series, so the series of unwatched ones can be dropped.
    budgets: std::sync::Mutex<std::collections::HashSet<ResourceBudgetLabels>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("scaleset_watch");
        let instances = Family::<InstanceLabels, Gauge>::default();
        registry.register(
            "instances",
            "Instances of the watched scale set by state, from the last successful poll",
            instances.clone(),
        );
        let healthy_percent = Family::<WatchLabels, Gauge>::default();
        registry.register(
            "healthy_percent",
            "Healthy instances in percent, from the last successful poll",
            healthy_percent.clone(),
        );
        let condition = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "condition",
            "1 for the current status (true, false, unknown) of each condition (Ready, Healthy, \
             Degraded), 0 for the other two",
            condition.clone(),
        );
        let suspended = Family::<WatchLabels, Gauge>::default();
        registry.register(
            "suspended",
            "1 while the watch is suspended (spec.suspend; Ready is then False), else 0",
            suspended.clone(),
        );
        let arm_requests = Family::<CodeLabels, Counter>::default();
        registry.register(
            "arm_requests",
            "ARM requests sent, by HTTP status code",
            arm_requests.clone(),
        );
        let arm_duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        registry.register_with_unit(
            "arm_request_duration",
            "Duration of ARM requests",
            prometheus_client::registry::Unit::Seconds,
            arm_duration.clone(),
        );
        let arm_throttled = Counter::default();
        registry.register(
            "arm_throttled",
            "ARM requests answered with 429 Too Many Requests",
            arm_throttled.clone(),
        );
        let arm_remaining_reads = Family::<SubscriptionLabels, Gauge>::default();
        registry.register(
            "arm_remaining_subscription_reads",
            "Reads ARM said were left in the subscription's budget after the last request",
            arm_remaining_reads.clone(),
        );
        let arm_remaining_resource_reads = Family::<ResourceBudgetLabels, Gauge>::default();
        registry.register(
            "arm_remaining_resource_reads",
            "Reads Compute said were left per throttling policy for the scale set after its last \
             list request (x-ms-ratelimit-remaining-resource)",
            arm_remaining_resource_reads.clone(),
        );
        let reconciles = Counter::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        let reconcile_errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles whose poll or status update failed, by reason",
            reconcile_errors.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of reconciles",
            prometheus_client::registry::Unit::Seconds,
            reconcile_duration.clone(),
        );
        Self {
            registry,
            instances,
            healthy_percent,
            condition,
            suspended,
            arm_requests,
            arm_duration,
            arm_throttled,
            arm_remaining_reads,
            arm_remaining_resource_reads,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            watches: Default::default(),
            budgets: Default::default(),
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Drops the series of watches for which `keep(namespace, name)` is false.
    pub fn retain_watches(&self, keep: impl Fn(&str, &str) -> bool) {
        let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        watches.retain(|(namespace, name)| {
            if keep(namespace, name) {
                return true;
            }
            for state in STATES {
                self.instances.remove(&InstanceLabels {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    state,
                });
            }
            for condition in CONDITIONS {
                for status in CONDITION_STATUSES {
                    self.condition.remove(&ConditionLabels {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        condition,
                        status,
                    });
                }
            }
            let watch = WatchLabels {
                namespace: namespace.clone(),
                name: name.clone(),
            };
            self.healthy_percent.remove(&watch);
            self.suspended.remove(&watch);
            false
        });
    }

    /// Drops the budget series of scale sets for which `keep(subscription, resource_group,
    /// scale_set)` (lower case) is false.
    pub fn retain_scale_sets(&self, keep: impl Fn(&str, &str, &str) -> bool) {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        budgets.retain(|labels| {
            let kept = keep(
                &labels.subscription,
                &labels.resource_group,
                &labels.scale_set,
            );
            if !kept {
                self.arm_remaining_resource_reads.remove(labels);
            }
            kept
        });
    }

    fn track(&self, namespace: &str, name: &str) {
        self.watches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((namespace.to_owned(), name.to_owned()));
    }

    pub fn record_counts(
        &self,
        namespace: &str,
        name: &str,
        counts: &InstanceCounts,
        healthy_percent: u8,
    ) {
        self.track(namespace, name);
        let app = &counts.application_health;
        let always = [
            counts.total,
            counts.healthy,
            counts.unhealthy,
            counts.running,
            counts.stopped,
            counts.deallocated,
            counts.transitioning,
            counts.power_state_unknown,
            counts.provisioning_failed,
            counts.provisioning_in_progress,
            counts.vm_agent_not_ready,
            counts.extensions_failed,
            counts.disks_failed,
            counts.application_unhealthy,
            counts.no_instance_view,
            counts.application_health_pending,
            app.healthy,
            app.unhealthy,
            app.unknown,
            app.initializing,
        ]
        .map(Some);
        let model_view = [
            counts.outdated_model,
            counts.protected_from_scale_in,
            counts.protected_from_scale_set_actions,
        ];
        for (state, n) in STATES.into_iter().zip(always.into_iter().chain(model_view)) {
            let labels = InstanceLabels {
                namespace: namespace.into(),
                name: name.into(),
                state,
            };
            match n {
                Some(n) => {
                    self.instances.get_or_create(&labels).set(i64::from(n));
                }
                None => {
                    self.instances.remove(&labels);
                }
            }
        }
        self.healthy_percent
            .get_or_create(&WatchLabels {
                namespace: namespace.into(),
                name: name.into(),
            })
            .set(i64::from(healthy_percent));
    }

    /// Records a condition's `status` (`True`, `False`, `Unknown`; anything else counts as
    /// unknown) and `reason`. The Ready reason `Suspended` also sets `scaleset_watch_suspended`,
    /// so that an alert on failing polls can leave suspended watches out.
    pub fn record_condition(
        &self,
        namespace: &str,
        name: &str,
        condition: &'static str,
        status: &str,
        reason: &str,
    ) {
        self.track(namespace, name);
        let current = match status {
            s if s.eq_ignore_ascii_case("True") => "true",
            s if s.eq_ignore_ascii_case("False") => "false",
            _ => "unknown",
        };
        for status in CONDITION_STATUSES {
            self.condition
                .get_or_create(&ConditionLabels {
                    namespace: namespace.into(),
                    name: name.into(),
                    condition,
                    status,
                })
                .set(i64::from(status == current));
        }
        if condition == "Ready" {
            self.suspended
                .get_or_create(&WatchLabels {
                    namespace: namespace.into(),
                    name: name.into(),
                })
                .set(i64::from(reason == "Suspended"));
        }
    }

    pub fn record_reconcile(&self, elapsed: Duration, error_reason: Option<&str>) {
        self.reconciles.inc();
        self.reconcile_duration.observe(elapsed.as_secs_f64());
        if let Some(reason) = error_reason {
            self.reconcile_errors
                .get_or_create(&ReasonLabels {
                    reason: reason.into(),
                })
                .inc();
        }
    }
}

impl RequestObserver for Metrics {
    fn observe(&self, status: Option<u16>, elapsed: Duration) {
        let code = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        self.arm_requests.get_or_create(&CodeLabels { code }).inc();
        self.arm_duration.observe(elapsed.as_secs_f64());
    }

    fn throttled(&self) {
        self.arm_throttled.inc();
    }

    fn remaining_reads(&self, subscription: &str, remaining: u64) {
        self.arm_remaining_reads
            .get_or_create(&SubscriptionLabels {
                subscription: subscription.to_owned(),
            })
            .set(i64::try_from(remaining).unwrap_or(i64::MAX));
    }

    fn remaining_resource_reads(&self, target: &ScaleSetRef, policy: &str, remaining: u64) {
        let labels = ResourceBudgetLabels {
            subscription: target.subscription_id.to_ascii_lowercase(),
            resource_group: target.resource_group.to_ascii_lowercase(),
            scale_set: target.scale_set_name.to_ascii_lowercase(),
            policy: policy.to_owned(),
        };
        self.arm_remaining_resource_reads
            .get_or_create(&labels)
            .set(i64::try_from(remaining).unwrap_or(i64::MAX));
        self.budgets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_series_exist_only_while_the_model_view_says_something() {
        let m = Metrics::default();
        let mut counts = InstanceCounts {
            total: 3,
            outdated_model: Some(2),
            protected_from_scale_in: Some(1),
            protected_from_scale_set_actions: Some(0),
            ..Default::default()
        };
        counts.application_health.initializing = 1;
        m.record_counts("ns", "web", &counts, 100);
        let text = m.encode().expect("encodes");
        for series in [
            r#"state="outdated_model"} 2"#,
            r#"state="protected_from_scale_in"} 1"#,
            r#"state="app_health_initializing"} 1"#,
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
        counts.outdated_model = None;
        m.record_counts("ns", "web", &counts, 100);
        let text = m.encode().expect("encodes");
        assert!(!text.contains(r#"state="outdated_model""#), "{text}");
    }

    #[test]
    fn series_follow_the_watches_and_disappear_with_them() {
        let m = Metrics::default();
        let counts = InstanceCounts {
            total: 3,
            healthy: 2,
            unhealthy: 1,
            ..Default::default()
        };
        m.record_counts("ns", "web", &counts, 66);
        m.record_condition("ns", "web", "Healthy", "False", "BelowMinHealthy");
        m.record_condition("ns", "web", "Ready", "False", "Suspended");
        m.record_counts("ns", "db", &counts, 66);
        let text = m.encode().expect("encodes");
        assert!(
            text.contains(
                r#"scaleset_watch_instances{namespace="ns",name="web",state="healthy"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"scaleset_watch_healthy_percent{namespace="ns",name="web"} 66"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"scaleset_watch_condition{namespace="ns",name="web",condition="Healthy",status="false"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"scaleset_watch_suspended{namespace="ns",name="web"} 1"#),
            "{text}"
        );
        m.retain_watches(|_, name| name != "web");
        let text = m.encode().expect("encodes");
        assert!(!text.contains(r#"name="web""#), "{text}");
        assert!(
            text.contains(r#"scaleset_watch_instances{namespace="ns",name="db",state="total"} 3"#),
            "{text}"
        );
    }

    /// The value of the one series of `text` whose name and labels are `series`.
    fn value(text: &str, series: &str) -> Option<i64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn each_condition_has_one_series_per_status_and_unknown_is_not_false() {
        let m = Metrics::default();
        let series = |status: &str| {
            format!(
                r#"scaleset_watch_condition{{namespace="ns",name="web",condition="Healthy",status="{status}"}}"#
            )
        };
        let statuses = |m: &Metrics| {
            let text = m.encode().expect("encodes");
            ["true", "false", "unknown"].map(|s| value(&text, &series(s)))
        };
        m.record_condition("ns", "web", "Healthy", "Unknown", "NotYetPolled");
        assert_eq!(statuses(&m), [Some(0), Some(0), Some(1)]);
        m.record_condition("ns", "web", "Healthy", "True", "AllInstancesHealthy");
        assert_eq!(statuses(&m), [Some(1), Some(0), Some(0)]);
        m.record_condition("ns", "web", "Healthy", "False", "BelowMinHealthy");
        assert_eq!(statuses(&m), [Some(0), Some(1), Some(0)]);
        // A status Kubernetes does not define is not taken for an answer.
        m.record_condition("ns", "web", "Healthy", "Maybe", "Odd");
        assert_eq!(statuses(&m), [Some(0), Some(0), Some(1)]);

        let suspended = r#"scaleset_watch_suspended{namespace="ns",name="web"}"#;
        m.record_condition("ns", "web", "Ready", "False", "Suspended");
        assert_eq!(value(&m.encode().expect("encodes"), suspended), Some(1));
        m.record_condition("ns", "web", "Ready", "False", "Throttled");
        assert_eq!(value(&m.encode().expect("encodes"), suspended), Some(0));

        m.retain_watches(|_, _| false);
        let text = m.encode().expect("encodes");
        assert!(!text.contains(r#"name="web""#), "{text}");
    }

    /// The chart's ServiceMonitor sets `honorLabels: true` so that `namespace` stays the
    /// ScaleSetWatch's namespace. A label Prometheus sets on every target would then be
    /// overridden too: no series may carry one.
    #[test]
    fn no_series_carries_a_label_that_prometheus_sets_on_its_targets() {
        let m = Metrics::default();
        m.record_counts("ns", "web", &InstanceCounts::default(), 100);
        m.record_condition("ns", "web", "Ready", "True", "PollSucceeded");
        m.record_reconcile(Duration::from_millis(5), Some("Throttled"));
        m.observe(Some(200), Duration::from_millis(5));
        m.remaining_reads("sub", 1);
        m.remaining_resource_reads(
            &ScaleSetRef {
                subscription_id: "sub".into(),
                resource_group: "rg".into(),
                scale_set_name: "web".into(),
                api_version: "2025-04-01".into(),
                model_view: true,
            },
            "Microsoft.Compute/GetVMScaleSetVM3Min",
            7,
        );
        let text = m.encode().expect("encodes");
        for target_label in [
            "job",
            "instance",
            "pod",
            "service",
            "endpoint",
            "container",
            "node",
        ] {
            assert!(
                !text.contains(&format!("{{{target_label}=\""))
                    && !text.contains(&format!(",{target_label}=\"")),
                "{target_label}: {text}"
            );
        }
    }

    #[test]
    fn budget_series_go_with_the_last_watch_of_their_scale_set() {
        let m = Metrics::default();
        for vmss in ["Web", "db"] {
            let target = ScaleSetRef {
                subscription_id: "SUB".into(),
                resource_group: "rg".into(),
                scale_set_name: vmss.into(),
                api_version: "2025-04-01".into(),
                model_view: true,
            };
            m.remaining_resource_reads(&target, "Microsoft.Compute/GetVMScaleSetVM3Min", 7);
        }
        let text = m.encode().expect("encodes");
        assert!(
            text.contains(
                r#"scaleset_watch_arm_remaining_resource_reads{subscription="sub",resource_group="rg",scale_set="web",policy="Microsoft.Compute/GetVMScaleSetVM3Min"} 7"#
            ),
            "{text}"
        );
        m.retain_scale_sets(|sub, rg, vmss| (sub, rg, vmss) == ("sub", "rg", "db"));
        let text = m.encode().expect("encodes");
        assert!(!text.contains(r#"scale_set="web""#), "{text}");
        assert!(text.contains(r#"scale_set="db""#), "{text}");
    }
}
