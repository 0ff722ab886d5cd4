//! What one poll learned about a scale set, kept compact and owned.
//!
//! Each page is reduced to these types as it arrives ([`super::model::parse_page`]) and its
//! body dropped, so a poll keeps about a hundred bytes per instance instead of its pages. The
//! facts here need no policy: which power state, which failures and in what words. Every watch
//! of the scale set judges the same snapshot with its own policy (`health::assess`).

use std::fmt;

/// A VM's power state, from its `PowerState/<state>` status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    Starting,
    Running,
    Stopping,
    Stopped,
    Deallocating,
    Deallocated,
    Unknown,
}

const POWER_STATES: [(&str, PowerState); 6] = [
    ("starting", PowerState::Starting),
    ("running", PowerState::Running),
    ("stopping", PowerState::Stopping),
    ("stopped", PowerState::Stopped),
    ("deallocating", PowerState::Deallocating),
    ("deallocated", PowerState::Deallocated),
];

impl PowerState {
    /// The state a code's suffix names, compared case-insensitively.
    pub fn from_code(state: &str) -> Self {
        POWER_STATES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(state))
            .map_or(Self::Unknown, |(_, p)| *p)
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = POWER_STATES
            .iter()
            .find(|(_, p)| p == self)
            .map_or("unknown", |(name, _)| name);
        f.write_str(name)
    }
}

/// One VM of the scale set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The instance ID, else the last segment of the resource ID (the minimal spec example has
    /// only `id`; a Flexible set's VMs are named so), else the name.
    pub id: Box<str>,
    /// `None` when Azure sent no instance view.
    pub view: Option<View>,
    /// The item names a VM resource instead of describing it: a Flexible scale set's VM list
    /// from api-version 2025-11-01 on.
    pub flexible_reference: bool,
    /// What the item says besides its instance view; `None` when it says nothing of it (listed
    /// with `$select=instanceView`, which trims the item to its ID and instance view). Boxed,
    /// so that a snapshot without it keeps 8 bytes per instance for it, not 48.
    pub model: Option<Box<Model>>,
}

/// The model view of an instance: what the list reports when it is not trimmed by `$select`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    /// `properties.latestModelApplied`; Flexible sets' VMs do not report it.
    pub latest_model_applied: Option<bool>,
    /// `properties.protectionPolicy.protectFromScaleIn`.
    pub protect_from_scale_in: bool,
    /// `properties.protectionPolicy.protectFromScaleSetActions`.
    pub protect_from_scale_set_actions: bool,
    /// `properties.timeCreated` (api-version 2021-11-01 and later).
    pub time_created: Option<jiff::Timestamp>,
    /// The availability zone, the first of `zones`.
    pub zone: Option<Box<str>>,
}

/// What Application Health (`vmHealth`) reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AppHealth {
    /// No `vmHealth`: the scale set has no Application Health extension (or the VM is off).
    #[default]
    NotReported,
    Healthy,
    /// With the words of its status.
    Unhealthy(Box<str>),
    /// Rich health states: the probe's answer was missing or invalid. Any `HealthState/...`
    /// this model does not know reads as unknown too.
    Unknown,
    /// Rich health states: a new instance not yet settled.
    Initializing,
}

/// What an instance view says, reduced to what the health model reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub power_state: PowerState,
    pub fault_domain: Option<i32>,
    pub update_domain: Option<i32>,
    pub provisioning: Provisioning,
    pub vm_agent: VmAgent,
    /// Application Health's state (`vmHealth`).
    pub app_health: AppHealth,
    /// Failed extensions, extension handlers and disks, in that order.
    pub failures: Vec<Failure>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provisioning {
    /// Succeeded, or a state this model does not know, which is no evidence of a fault.
    Succeeded,
    /// `creating`, `updating`, `deleting` or `migrating`.
    InProgress(&'static str),
    /// With the words of the status that says so.
    Failed(Box<str>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmAgent {
    /// It reports `ProvisioningState/succeeded`.
    Ready,
    /// No agent, or an agent without statuses.
    Silent,
    /// With the words of its first status.
    NotReady(Box<str>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub part: Part,
    /// The extension's name (else its type), the handler's type, or the disk's name.
    pub name: Box<str>,
    pub detail: Box<str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Extension,
    Disk,
}

/// Every instance one list call returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScaleSetSnapshot {
    instances: Vec<Instance>,
    flexible: bool,
}

impl ScaleSetSnapshot {
    /// The instances of every page, in page order. An instance listed twice (the same instance
    /// ID, or the same VM name in a Flexible set; Azure names compare case-insensitively) is
    /// counted once: the copy read last is kept, as the newer view. Instances without any ID
    /// cannot be told apart and are all kept.
    pub fn new(mut instances: Vec<Instance>) -> Self {
        // Stable, so that copies of one ID stay in the order they were read.
        fn folded(s: &str) -> impl Iterator<Item = u8> + '_ {
            s.bytes().map(|c| c.to_ascii_lowercase())
        }
        instances.sort_by(|a, b| folded(&a.id).cmp(folded(&b.id)));
        instances.dedup_by(|later, kept| {
            let same = !later.id.is_empty() && later.id.eq_ignore_ascii_case(&kept.id);
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        instances.shrink_to_fit();
        Self {
            instances,
            flexible: false,
        }
    }

    /// Parses saved list pages (`check --from-file`, tests) as the client parses fetched ones.
    pub fn from_pages<B: AsRef<[u8]>>(
        pages: impl IntoIterator<Item = B>,
    ) -> Result<Self, super::model::ParseError> {
        let mut instances = Vec::new();
        for body in pages {
            instances.extend(super::model::parse_page(body.as_ref())?.instances);
        }
        Ok(Self::new(instances))
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// Listed as a Flexible scale set's VMs (from the resource group), not from the set's own
    /// VM list.
    pub fn into_flexible(mut self) -> Self {
        self.flexible = true;
        self
    }

    pub fn is_flexible(&self) -> bool {
        self.flexible
    }

    /// Whether this is a Flexible scale set's VM list, which names each VM's resource instead
    /// of carrying its instance view.
    pub fn lists_flexible_references(&self) -> bool {
        self.instances
            .iter()
            .any(|i| i.view.is_none() && i.flexible_reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(items: &[&str]) -> String {
        format!(r#"{{"value": [{}]}}"#, items.join(","))
    }

    fn running(id: &str) -> String {
        format!(
            r#"{{"instanceId": "{id}", "properties": {{"instanceView": {{"statuses": [{{"code": "PowerState/running"}}]}}}}}}"#
        )
    }

    #[test]
    fn an_instance_on_two_pages_is_kept_once_as_read_last() {
        let stopped = r#"{"instanceId": "1", "properties": {"instanceView": {"statuses": [{"code": "PowerState/stopped"}]}}}"#;
        let snapshot = ScaleSetSnapshot::from_pages([
            page(&[&running("0"), &running("1")]),
            page(&[stopped, &running("2")]),
        ])
        .expect("parses");
        let ids: Vec<&str> = snapshot.instances().iter().map(|i| &*i.id).collect();
        assert_eq!(ids, ["0", "1", "2"]);
        let one = &snapshot.instances()[1];
        assert_eq!(
            one.view.as_ref().expect("view").power_state,
            PowerState::Stopped,
            "the later page's copy"
        );
        // Three copies, one of them on the same page: still one, the last.
        let snapshot =
            ScaleSetSnapshot::from_pages([page(&[&running("1"), &running("1")]), page(&[stopped])])
                .expect("parses");
        assert_eq!(snapshot.instances().len(), 1);
        assert_eq!(
            snapshot.instances()[0]
                .view
                .as_ref()
                .expect("view")
                .power_state,
            PowerState::Stopped
        );
    }

    #[test]
    fn flexible_vm_names_compare_case_insensitively_and_nameless_items_are_all_counted() {
        let vm = |name: &str| {
            format!(
                r#"{{"name": "{name}", "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}", "properties": {{}}}}"#
            )
        };
        let snapshot = ScaleSetSnapshot::from_pages([
            page(&[&vm("web_1"), &vm("web_2")]),
            page(&[&vm("WEB_1")]),
        ])
        .expect("parses");
        assert_eq!(snapshot.instances().len(), 2);
        let nameless =
            ScaleSetSnapshot::from_pages([page(&["{}", "{}"]), page(&["{}"])]).expect("parses");
        assert_eq!(nameless.instances().len(), 3);
    }

    #[test]
    fn a_flexible_list_is_recognised_by_its_references() {
        let reference = r#"{"name": "web_1", "properties": {"virtualMachineResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web_1"}}"#;
        let flexible = ScaleSetSnapshot::from_pages([page(&[reference])]).expect("parses");
        assert!(flexible.lists_flexible_references());
        let uniform = ScaleSetSnapshot::from_pages([page(&[&running("0")])]).expect("parses");
        assert!(!uniform.lists_flexible_references());
        assert!(!ScaleSetSnapshot::default().lists_flexible_references());
        assert!(
            !flexible.is_flexible(),
            "only a list of the VMs themselves is"
        );
        assert!(ScaleSetSnapshot::default().into_flexible().is_flexible());
    }

    #[test]
    fn power_state_names_read_and_print_alike() {
        for (name, state) in POWER_STATES {
            assert_eq!(PowerState::from_code(&name.to_ascii_uppercase()), state);
            assert_eq!(state.to_string(), name);
        }
        assert_eq!(PowerState::from_code("hibernated"), PowerState::Unknown);
        assert_eq!(PowerState::Unknown.to_string(), "unknown");
    }
}
