//! The wire format of `VirtualMachineScaleSetVMs_List` with `$expand=instanceView`, and its
//! reduction to the compact [`Instance`] as each page is read.
//!
//! Only the fields the health model reads are typed; serde skips everything else. Parsing is
//! forgiving per field: Azure adds fields, older api-versions spell some differently, and a
//! field of an unexpected type must cost us that field, never the whole poll (every field goes
//! through the one [`lenient`] reader). The page's skeleton is strict: a page whose `value` is
//! missing or holds anything but objects is refused, because counting it as fewer instances
//! would be a lie. So is a page that gives a key twice: ARM never does, and which of the two a
//! reader believes is a guess.

use super::snapshot::{
    AppHealth, Failure, Instance, Model, Part, PowerState, Provisioning, View, VmAgent,
};
use lenient::{List, Object, Text, each, lenient};
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};

mod lenient;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Vm<'a> {
    #[serde(borrow, deserialize_with = "lenient")]
    instance_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    name: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    properties: Option<VmProperties<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    zones: List<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct VmProperties<'a> {
    #[serde(borrow, deserialize_with = "lenient")]
    provisioning_state: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    instance_view: Option<InstanceView<'a>>,
    /// Set on Flexible scale sets from api-version 2025-11-01, which list no instance views.
    #[serde(borrow, deserialize_with = "lenient")]
    virtual_machine_resource_id: Option<Text<'a>>,
    // The model view, absent under `$select=instanceView`.
    #[serde(deserialize_with = "lenient")]
    latest_model_applied: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    protection_policy: Option<ProtectionPolicy>,
    #[serde(borrow, deserialize_with = "lenient")]
    time_created: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ProtectionPolicy {
    #[serde(deserialize_with = "lenient")]
    protect_from_scale_in: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    protect_from_scale_set_actions: Option<bool>,
}

/// `VirtualMachineScaleSetVMInstanceView`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct InstanceView<'a> {
    #[serde(deserialize_with = "lenient")]
    platform_update_domain: Option<i32>,
    /// The 2017 api-version's spelling of `platformUpdateDomain`, sent as a string.
    #[serde(deserialize_with = "lenient")]
    platform_upgrade_domain: Option<i32>,
    #[serde(deserialize_with = "lenient")]
    platform_fault_domain: Option<i32>,
    #[serde(borrow, deserialize_with = "lenient")]
    vm_agent: Option<VmAgentView<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    disks: List<Disk<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    extensions: List<Extension<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    vm_health: Option<VmHealth<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    statuses: List<Status<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct VmAgentView<'a> {
    #[serde(borrow, deserialize_with = "lenient")]
    statuses: List<Status<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    extension_handlers: List<ExtensionHandler<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ExtensionHandler<'a> {
    #[serde(borrow, rename = "type", deserialize_with = "lenient")]
    kind: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    status: Option<Status<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Disk<'a> {
    #[serde(borrow, deserialize_with = "lenient")]
    name: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    statuses: List<Status<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Extension<'a> {
    #[serde(borrow, deserialize_with = "lenient")]
    name: Option<Text<'a>>,
    #[serde(borrow, rename = "type", deserialize_with = "lenient")]
    kind: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    statuses: List<Status<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VmHealth<'a> {
    #[serde(borrow, deserialize_with = "lenient")]
    status: Option<Status<'a>>,
}

/// `InstanceViewStatus`. `time` is not read: nothing in the health model depends on it.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Status<'a> {
    #[serde(borrow, deserialize_with = "lenient")]
    code: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    level: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    display_status: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient")]
    message: Option<Text<'a>>,
}

/// One page, its VMs reduced as they are read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePage<'a> {
    #[serde(deserialize_with = "reduce_each")]
    value: Vec<Instance>,
    #[serde(default, borrow, deserialize_with = "lenient")]
    next_link: Option<Text<'a>>,
}

/// A list of VM objects, each reduced to an [`Instance`] as soon as it is read, so that no more
/// than one VM's wire form is held at a time.
fn reduce_each<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Instance>, D::Error> {
    struct Each;
    impl<'de> Visitor<'de> for Each {
        type Value = Vec<Instance>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of VM objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Instance>, A::Error> {
            let mut out = Vec::new();
            while let Some(Object(vm)) = seq.next_element::<Object<Vm<'de>>>()? {
                out.push(reduce(&vm));
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Each)
}

/// One page of a list call, reduced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub instances: Vec<Instance>,
    pub next_link: Option<String>,
}

/// Why a body is not a list page.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("response is not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("invalid JSON: unexpected end of input at line {line} column {column}")]
    Truncated { line: usize, column: usize },
    #[error("invalid JSON: {0}")]
    Syntax(serde_json::Error),
    /// Valid JSON, but not a page: counting it as fewer instances would be a lie.
    #[error("not a list page: {0}")]
    NotAPage(serde_json::Error),
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        use serde_json::error::Category;
        match e.classify() {
            Category::Eof => Self::Truncated {
                line: e.line(),
                column: e.column(),
            },
            Category::Syntax | Category::Io => Self::Syntax(e),
            Category::Data => Self::NotAPage(e),
        }
    }
}

/// Parses one page into compact instances. Unknown fields and values of unexpected types are
/// skipped; strings are borrowed from `body` while reading and copied only into what is kept.
pub fn parse_page(body: &[u8]) -> Result<Page, ParseError> {
    // One bulk UTF-8 check up front, also of the strings serde skips, lets serde_json slice
    // strings without checking each.
    let text = std::str::from_utf8(body)?;
    let Object(page) = serde_json::from_str::<Object<WirePage>>(text)?;
    Ok(Page {
        instances: page.value,
        next_link: page.next_link.map(|l| l.0.into_owned()),
    })
}

/// The instance ID as ARM reports it, else the last segment of the resource ID, else the name.
fn display_id<'v>(vm: &'v Vm<'_>) -> &'v str {
    if let Some(id) = vm.instance_id.as_deref().filter(|s| !s.is_empty()) {
        return id;
    }
    if let Some(last) = vm
        .id
        .as_deref()
        .and_then(|id| id.rsplit('/').find(|s| !s.is_empty()))
    {
        return last;
    }
    vm.name.as_deref().unwrap_or("")
}

fn reduce(vm: &Vm<'_>) -> Instance {
    let properties = vm.properties.as_ref();
    Instance {
        id: display_id(vm).into(),
        view: properties.and_then(|p| {
            let view = p.instance_view.as_ref()?;
            Some(reduce_view(view, p.provisioning_state.as_deref()))
        }),
        flexible_reference: properties.is_some_and(|p| p.virtual_machine_resource_id.is_some()),
        model: model(vm),
    }
}

/// The model view, when the item carries one: `latestModelApplied` (Uniform) or `timeCreated`
/// (every VM from api-version 2021-11-01) says it was listed without `$select`. Zones and
/// protection alone do not: an unzoned, unprotected instance has neither.
fn model(vm: &Vm<'_>) -> Option<Box<Model>> {
    let p = vm.properties.as_ref()?;
    if p.latest_model_applied.is_none() && p.time_created.is_none() {
        return None;
    }
    let protection = p.protection_policy.as_ref();
    Some(Box::new(Model {
        latest_model_applied: p.latest_model_applied,
        protect_from_scale_in: protection.and_then(|p| p.protect_from_scale_in) == Some(true),
        protect_from_scale_set_actions: protection.and_then(|p| p.protect_from_scale_set_actions)
            == Some(true),
        // A time that does not parse is no time: the grace period then counts as over.
        time_created: p.time_created.as_deref().and_then(|t| t.parse().ok()),
        zone: each(&vm.zones).next().map(|z| Box::from(&**z)),
    }))
}

fn reduce_view(view: &InstanceView<'_>, provisioning_state: Option<&str>) -> View {
    let power_state = each(&view.statuses)
        .find_map(|s| code_suffix(s.code(), "PowerState/"))
        .map_or(PowerState::Unknown, PowerState::from_code);
    let app_health = view.vm_health.as_ref().map_or(AppHealth::NotReported, |h| {
        let Some(status) = h.status.as_ref() else {
            return AppHealth::Unknown;
        };
        let state = code_suffix(status.code(), "HealthState/").unwrap_or("");
        if state.eq_ignore_ascii_case("healthy") {
            AppHealth::Healthy
        } else if state.eq_ignore_ascii_case("unhealthy") {
            AppHealth::Unhealthy(describe(
                status,
                "the Application Health extension reports unhealthy",
            ))
        } else if state.eq_ignore_ascii_case("initializing") {
            AppHealth::Initializing
        } else {
            AppHealth::Unknown
        }
    });

    let mut failures = Vec::new();
    for ext in each(&view.extensions) {
        if let Some(status) = each(&ext.statuses).find(|s| s.is_failure()) {
            let name = ext.name.as_deref().or(ext.kind.as_deref());
            failures.push(Failure {
                part: Part::Extension,
                name: name.unwrap_or("(unnamed)").into(),
                detail: describe(status, "failed"),
            });
        }
    }
    if let Some(agent) = &view.vm_agent {
        for handler in each(&agent.extension_handlers) {
            let Some(status) = handler.status.as_ref().filter(|s| s.is_failure()) else {
                continue;
            };
            let kind = handler.kind.as_deref();
            // A failed extension is reported by its own name, not again through its handler.
            let already = each(&view.extensions).any(|e| {
                kind.is_some()
                    && e.kind.as_deref() == kind
                    && each(&e.statuses).any(|s| s.is_failure())
            });
            if !already {
                failures.push(Failure {
                    part: Part::Extension,
                    name: kind.unwrap_or("(unnamed)").into(),
                    detail: describe(status, "handler failed"),
                });
            }
        }
    }
    for disk in each(&view.disks) {
        if let Some(status) = each(&disk.statuses).find(|s| s.is_failure()) {
            failures.push(Failure {
                part: Part::Disk,
                name: disk.name.as_deref().unwrap_or("(unnamed)").into(),
                detail: describe(status, "failed"),
            });
        }
    }

    View {
        power_state,
        fault_domain: view.platform_fault_domain,
        update_domain: view.platform_update_domain.or(view.platform_upgrade_domain),
        provisioning: provisioning(view, provisioning_state),
        vm_agent: vm_agent(view),
        app_health,
        failures,
    }
}

/// The instance view's `ProvisioningState/...` status is more detailed than
/// `properties.provisioningState`, so it wins when present.
fn provisioning(view: &InstanceView<'_>, from_properties: Option<&str>) -> Provisioning {
    let from_view =
        each(&view.statuses).find_map(|s| Some((code_suffix(s.code(), "ProvisioningState/")?, s)));
    let (state, status) = match from_view {
        Some((rest, s)) => (rest.split('/').next().unwrap_or(""), Some(s)),
        None => match from_properties {
            Some(state) => (state, None),
            None => return Provisioning::Succeeded,
        },
    };
    if state.eq_ignore_ascii_case("failed") {
        return Provisioning::Failed(status.map_or_else(
            || "ProvisioningState is Failed".into(),
            |s| describe(s, "failed"),
        ));
    }
    ["creating", "updating", "deleting", "migrating"]
        .into_iter()
        .find(|p| p.eq_ignore_ascii_case(state))
        .map_or(Provisioning::Succeeded, Provisioning::InProgress)
}

fn vm_agent(view: &InstanceView<'_>) -> VmAgent {
    let Some(agent) = &view.vm_agent else {
        return VmAgent::Silent;
    };
    let ready = each(&agent.statuses).any(|s| {
        code_suffix(s.code(), "ProvisioningState/")
            .is_some_and(|r| r.eq_ignore_ascii_case("succeeded"))
    });
    if ready {
        return VmAgent::Ready;
    }
    match each(&agent.statuses).next() {
        Some(s) => VmAgent::NotReady(describe(s, "not ready")),
        None => VmAgent::Silent,
    }
}

impl Status<'_> {
    fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }

    /// A status reports a failure when its level is Error or its code is
    /// `ProvisioningState/failed...`.
    fn is_failure(&self) -> bool {
        self.level
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("error"))
            || code_suffix(self.code(), "ProvisioningState/").is_some_and(|r| {
                r.split('/')
                    .next()
                    .is_some_and(|s| s.eq_ignore_ascii_case("failed"))
            })
    }
}

/// The part of `code` after `prefix`, compared case-insensitively.
fn code_suffix<'a>(code: &'a str, prefix: &str) -> Option<&'a str> {
    let head = code.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &code[prefix.len()..])
}

/// The most telling words of a status: its message, else its display status, else its code.
fn describe(status: &Status<'_>, fallback: &str) -> Box<str> {
    fn words<'t>(t: &'t Option<Text<'_>>) -> Option<&'t str> {
        t.as_deref().map(str::trim).filter(|m| !m.is_empty())
    }
    words(&status.message)
        .or_else(|| words(&status.display_status))
        .or(status.code.as_deref())
        .unwrap_or(fallback)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// One VM's wire form, as the page reader reads it.
    fn wire(vm: &str) -> Vm<'_> {
        serde_json::from_str::<Object<Vm>>(vm).expect("reads").0
    }

    #[test]
    fn keys_are_matched_after_unescaping_and_a_key_given_twice_refuses_the_page() {
        let vm = wire(r#"{"instance\u0049d": "7", "name": "b\u00e9"}"#);
        assert_eq!(vm.instance_id.as_deref(), Some("7"));
        assert_eq!(vm.name.as_deref(), Some("bé"));
        for twice in [
            r#"{"value": [{"instanceId": "7", "name": "a", "name": "b"}]}"#,
            r#"{"value": [{"instanceId": "7", "properties": {"instanceView":
                {"platformFaultDomain": 1, "platformFaultDomain": 2}}}]}"#,
            r#"{"value": [], "value": [{"instanceId": "7"}]}"#,
        ] {
            let err = parse_page(twice.as_bytes()).expect_err(twice);
            assert!(err.to_string().contains("duplicate field"), "{err}");
        }
        // Keys nobody reads may repeat: they are skipped unread.
        assert!(parse_page(br#"{"value": [{"etag": 1, "etag": 2}], "x": 1, "x": 2}"#).is_ok());
    }

    #[test]
    fn scalars_of_other_types_read_as_written_or_absent() {
        let vm = wire(
            r#"{"instanceId": 12, "name": true, "id": null, "properties": {
                "provisioningState": ["Succeeded"],
                "instanceView": {"platformUpdateDomain": "3", "platformFaultDomain": 1.5,
                    "platformUpgradeDomain": 99999999999, "statuses": {"code": "x"},
                    "disks": [1, {"name": 2}, "x"], "vmAgent": [{"statuses": []}]}}}"#,
        );
        assert_eq!(vm.instance_id.as_deref(), Some("12"));
        assert_eq!(vm.name.as_deref(), Some("true"));
        assert!(vm.id.is_none());
        let properties = vm.properties.as_ref().expect("properties");
        assert!(properties.provisioning_state.is_none());
        let view = properties.instance_view.as_ref().expect("view");
        assert_eq!(view.platform_update_domain, Some(3));
        assert_eq!(view.platform_fault_domain, None, "a fraction is no domain");
        assert_eq!(view.platform_upgrade_domain, None, "beyond i32");
        assert!(view.statuses.is_none());
        let disks: Vec<_> = each(&view.disks).collect();
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].name.as_deref(), Some("2"));
        assert!(view.vm_agent.is_none(), "a list is no object");
    }

    #[test]
    fn strings_borrow_from_the_page_unless_escaped() {
        let vm = wire(r#"{"instanceId": "7", "name": "a\"b"}"#);
        assert!(matches!(vm.instance_id.expect("id").0, Cow::Borrowed("7")));
        assert!(matches!(vm.name.expect("name").0, Cow::Owned(n) if n == "a\"b"));
    }

    #[test]
    fn a_page_finds_its_link_and_a_broken_one_is_refused() {
        let page = r#"{"value": [{"instanceId": "0"}], "nextLink": "https://arm/next"}"#;
        let read = parse_page(page.as_bytes()).expect("valid");
        assert_eq!(read.next_link.as_deref(), Some("https://arm/next"));
        assert_eq!(read.instances.len(), 1);
        assert_eq!(
            parse_page(br#"{"value": []}"#).expect("valid").next_link,
            None
        );
        for broken in [
            &br#"{"value": [{"instanceId": "0"}], "nextLink": "x""#[..],
            br#"{"value": [1]}"#,
            br#"{"nextLink": "x"}"#,
            br#"[[{"instanceId": "0"}]]"#,
            br#"{"value": [{"instanceId": "0"}]} {}"#,
            b"{\"value\": [{\"name\": \"\xff\"}]}",
            b"{\"value\": [{\"unread\": \"\xff\"}]}",
        ] {
            assert!(
                parse_page(broken).is_err(),
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
    }

    #[test]
    fn errors_say_whether_the_json_or_the_page_is_broken() {
        let err = |body: &[u8]| parse_page(body).expect_err("broken").to_string();
        assert!(
            err(br#"{"value": [{"instanceId": "0"}"#)
                .starts_with("invalid JSON: unexpected end of input")
        );
        assert!(err(br#"{"value": [,]}"#).starts_with("invalid JSON: "));
        assert!(err(br#"{"value": 1}"#).starts_with("not a list page: "));
        assert!(err(b"{\"value\": [\xff]}").starts_with("response is not UTF-8"));
    }

    #[test]
    fn the_model_view_is_read_when_listed_and_odd_values_cost_only_themselves() {
        let read = |vm: &str| {
            let page = format!(r#"{{"value": [{vm}]}}"#);
            parse_page(page.as_bytes())
                .expect("parses")
                .instances
                .remove(0)
        };
        let full = read(
            r#"{"instanceId": "0", "zones": ["2"], "properties": {"latestModelApplied": false,
                "timeCreated": "2021-06-27T01:02:38.3138469+00:00",
                "protectionPolicy": {"protectFromScaleIn": true}}}"#,
        );
        let model = full.model.expect("model view");
        assert_eq!(model.latest_model_applied, Some(false));
        assert!(model.protect_from_scale_in && !model.protect_from_scale_set_actions);
        assert_eq!(model.zone.as_deref(), Some("2"));
        assert_eq!(
            model.time_created,
            Some("2021-06-27T01:02:38.3138469Z".parse().expect("time"))
        );
        // Trimmed by $select: no model view at all, whatever else the item has.
        assert!(
            read(r#"{"instanceId": "0", "zones": ["1"], "properties": {}}"#)
                .model
                .is_none()
        );
        // Values of other types are absent, never a failed page or a guess.
        let odd = read(
            r#"{"instanceId": "0", "zones": "1", "properties": {"latestModelApplied": "false",
                "timeCreated": "yesterday", "protectionPolicy": [true]}}"#,
        );
        let model = odd.model.expect("timeCreated was sent, if unreadable");
        assert_eq!(model.latest_model_applied, None);
        assert_eq!(model.time_created, None);
        assert_eq!(model.zone, None);
        assert!(!model.protect_from_scale_in);
    }

    #[test]
    fn deep_nesting_is_an_error_or_skipped_never_a_crash() {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let deep =
                |inner: &str| format!("{}{inner}{}", open.repeat(100_000), close.repeat(100_000));
            for at in ["instanceView", "statuses", "unread"] {
                let body = format!(
                    r#"{{"value": [{{"properties": {{"instanceView": {{"{at}": {}}}}}}}]}}"#,
                    deep("1")
                );
                let _ = parse_page(body.as_bytes());
            }
        }
    }
}
