//! ARM's JSON, written by hand from the shapes in the REST specs and recorded
//! responses (see /work/shared/arm-examples). Deliberately independent of any
//! parsing types in the controller, so that the two check each other.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::scenario::{
    AppHealth, DiskSpec, DiskState, ExtensionSpec, ExtensionState, OrchestrationMode, PowerState,
    ProvisioningState, VmAgentState,
};
use super::state::{InstanceRecord, ScaleSetState, stable_uuid};

/// How much of each item a list request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Select {
    /// No `$select`: the usual properties besides the instance view.
    All,
    /// `$select=instanceView`.
    InstanceView,
    /// `$select=instanceView/statuses`.
    Statuses,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub expand_instance_view: bool,
    pub select: Select,
    /// `$filter=startswith(instanceView/statuses/code, 'PowerState') eq true`.
    pub power_state_only: bool,
}

/// An instance with every default filled in.
pub(crate) struct Instance {
    pub id: String,
    pub power: PowerState,
    pub provisioning: ProvisioningState,
    pub provisioning_error: Option<String>,
    pub agent: VmAgentState,
    pub agent_version: String,
    pub extensions: Vec<ExtensionSpec>,
    pub disks: Vec<DiskSpec>,
    pub app_health: AppHealth,
    pub fault_domain: u32,
    pub update_domain: u32,
    pub zone: Option<String>,
    pub latest_model_applied: bool,
    pub protect_from_scale_in: bool,
    pub protect_from_scale_set_actions: bool,
    pub time_created: String,
    pub computer_name: String,
    pub os_name: String,
    pub os_version: String,
    pub time: String,
}

pub(crate) fn azure_time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.7f+00:00").to_string()
}

/// Azure names Uniform instances' computers `<prefix><instance id in base 36,
/// six digits>`.
fn computer_name(vmss: &str, id: &str) -> String {
    let prefix: String = vmss
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(9)
        .collect::<String>()
        .to_lowercase();
    match id.parse::<u64>() {
        Ok(mut n) => {
            let mut digits = Vec::new();
            loop {
                digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
                n /= 36;
                if n == 0 {
                    break;
                }
            }
            let b36: String = digits.iter().rev().collect();
            format!("{prefix}{b36:0>6}")
        }
        Err(_) => format!("{prefix}{id}"),
    }
}

pub(crate) fn resolve(ss: &ScaleSetState, rec: &InstanceRecord) -> Instance {
    let spec = rec.spec.merged_over(&ss.spec.defaults);
    let id = rec.id().to_owned();
    let power = spec.power_state.unwrap_or(PowerState::Running);
    let deallocated = power == PowerState::Deallocated;
    let agent_default = match power {
        PowerState::Deallocated => VmAgentState::Absent,
        PowerState::Stopped | PowerState::Stopping | PowerState::Deallocating => {
            VmAgentState::NotReady
        }
        _ => VmAgentState::Ready,
    };
    let vmss = &ss.spec.name;
    let os_disk = DiskSpec {
        name: format!(
            "{vmss}_{vmss}_{id}_OsDisk_1_{}",
            stable_uuid(&format!("{}/{id}", ss.key())).replace('-', "")
        ),
        state: DiskState::Succeeded,
        message: None,
    };
    Instance {
        power,
        provisioning: spec
            .provisioning_state
            .unwrap_or(ProvisioningState::Succeeded),
        provisioning_error: spec.provisioning_error,
        // A deallocated VM runs no agent, so Azure reports none of what the
        // agent reports, whatever was last known.
        agent: if deallocated {
            VmAgentState::Absent
        } else {
            spec.vm_agent.unwrap_or(agent_default)
        },
        agent_version: spec.vm_agent_version.unwrap_or_else(|| "2.13.1.1".into()),
        extensions: if deallocated {
            Vec::new()
        } else {
            spec.extensions.unwrap_or_default()
        },
        disks: spec.disks.unwrap_or_else(|| vec![os_disk]),
        app_health: if deallocated {
            AppHealth::Absent
        } else {
            spec.app_health.unwrap_or(AppHealth::Absent)
        },
        fault_domain: spec.fault_domain.unwrap_or((rec.ordinal % 5) as u32),
        update_domain: spec.update_domain.unwrap_or((rec.ordinal % 5) as u32),
        zone: spec.zone,
        latest_model_applied: spec.latest_model_applied.unwrap_or(true),
        protect_from_scale_in: spec.protect_from_scale_in.unwrap_or(false),
        protect_from_scale_set_actions: spec.protect_from_scale_set_actions.unwrap_or(false),
        time_created: spec
            .time_created
            .unwrap_or_else(|| azure_time(rec.created_at)),
        computer_name: spec
            .computer_name
            .unwrap_or_else(|| computer_name(vmss, &id)),
        os_name: spec.os_name.unwrap_or_else(|| "ubuntu".into()),
        os_version: spec.os_version.unwrap_or_else(|| "22.04".into()),
        time: azure_time(rec.changed_at),
        id,
    }
}

fn status(
    code: String,
    level: &str,
    display: &str,
    message: Option<&str>,
    time: Option<&str>,
) -> Value {
    let mut s = Map::new();
    s.insert("code".into(), code.into());
    s.insert("level".into(), level.into());
    s.insert("displayStatus".into(), display.into());
    if let Some(m) = message {
        s.insert("message".into(), m.into());
    }
    if let Some(t) = time {
        s.insert("time".into(), t.into());
    }
    Value::Object(s)
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn provisioning_status(i: &Instance) -> Value {
    let t = Some(i.time.as_str());
    match i.provisioning {
        ProvisioningState::Succeeded => status(
            "ProvisioningState/succeeded".into(),
            "Info",
            "Provisioning succeeded",
            None,
            t,
        ),
        ProvisioningState::Failed => {
            let code = match &i.provisioning_error {
                Some(e) => format!("ProvisioningState/failed/{e}"),
                None => "ProvisioningState/failed".into(),
            };
            let message = i
                .provisioning_error
                .as_ref()
                .map(|e| format!("Provisioning of the VM failed with error {e}."));
            status(code, "Error", "Provisioning failed", message.as_deref(), t)
        }
        other => status(
            format!("ProvisioningState/{other}"),
            "Info",
            &capitalized(&other.to_string()),
            None,
            t,
        ),
    }
}

fn power_status(p: PowerState) -> Value {
    let display = match p {
        PowerState::Unknown => "VM status unknown".to_owned(),
        other => format!("VM {other}"),
    };
    status(format!("PowerState/{p}"), "Info", &display, None, None)
}

fn vm_agent(i: &Instance) -> Option<Value> {
    let t = Some(i.time.as_str());
    match i.agent {
        VmAgentState::Absent => None,
        VmAgentState::Ready => {
            let handlers: Vec<Value> = i
                .extensions
                .iter()
                .map(|e| {
                    json!({
                        "type": e.kind,
                        "typeHandlerVersion": e.type_handler_version,
                        "status": status("ProvisioningState/succeeded".into(), "Info", "Ready", None, None),
                    })
                })
                .collect();
            let mut agent = json!({
                "vmAgentVersion": i.agent_version,
                "statuses": [status(
                    "ProvisioningState/succeeded".into(),
                    "Info",
                    "Ready",
                    Some("GuestAgent is running and processing the extensions."),
                    t,
                )],
            });
            if !handlers.is_empty() {
                agent["extensionHandlers"] = Value::Array(handlers);
            }
            Some(agent)
        }
        VmAgentState::NotReady => Some(json!({
            "vmAgentVersion": "Unknown",
            "statuses": [status(
                "ProvisioningState/Unavailable".into(),
                "Warning",
                "Not Ready",
                Some("VM Agent is unresponsive."),
                t,
            )],
        })),
    }
}

fn extension(e: &ExtensionSpec, time: &str) -> Value {
    let st = match e.state {
        ExtensionState::Succeeded => status(
            "ProvisioningState/succeeded".into(),
            "Info",
            "Provisioning succeeded",
            Some(e.message.as_deref().unwrap_or("Enable succeeded")),
            Some(time),
        ),
        ExtensionState::Failed => status(
            format!(
                "ProvisioningState/failed/{}",
                e.code.as_deref().unwrap_or("-1")
            ),
            "Error",
            "Provisioning failed",
            Some(e.message.as_deref().unwrap_or("Enable failed")),
            Some(time),
        ),
        ExtensionState::Transitioning => status(
            "ProvisioningState/transitioning".into(),
            "Info",
            "Transitioning",
            Some(e.message.as_deref().unwrap_or("Enable in progress")),
            Some(time),
        ),
    };
    json!({
        "name": e.name,
        "type": e.kind,
        "typeHandlerVersion": e.type_handler_version,
        "statuses": [st],
    })
}

fn disk(d: &DiskSpec, time: &str) -> Value {
    let st = match d.state {
        DiskState::Succeeded => status(
            "ProvisioningState/succeeded".into(),
            "Info",
            "Provisioning succeeded",
            d.message.as_deref(),
            Some(time),
        ),
        DiskState::Failed => status(
            "ProvisioningState/failed".into(),
            "Error",
            "Provisioning failed",
            Some(d.message.as_deref().unwrap_or("Disk provisioning failed.")),
            Some(time),
        ),
    };
    json!({"name": d.name, "statuses": [st]})
}

fn vm_health(h: AppHealth, time: &str) -> Option<Value> {
    let display = match h {
        AppHealth::Absent => return None,
        AppHealth::Healthy => "Healthy",
        AppHealth::Unhealthy => "Unhealthy",
        AppHealth::Unknown => "Unknown",
        AppHealth::Initializing => "Initializing",
    };
    Some(json!({"status": status(format!("HealthState/{h}"), "Info", display, None, Some(time))}))
}

/// The instance view; `legacy` spells the update domain as the 2017 page did.
pub(crate) fn instance_view(i: &Instance, legacy: bool, shape: Shape) -> Value {
    let mut statuses = Vec::new();
    if !shape.power_state_only {
        statuses.push(provisioning_status(i));
    }
    statuses.push(power_status(i.power));
    let mut v = Map::new();
    if shape.select == Select::Statuses {
        v.insert("statuses".into(), Value::Array(statuses));
        return Value::Object(v);
    }
    if legacy {
        v.insert(
            "platformUpgradeDomain".into(),
            i.update_domain.to_string().into(),
        );
        v.insert(
            "platformFaultDomain".into(),
            i.fault_domain.to_string().into(),
        );
    } else {
        v.insert("platformUpdateDomain".into(), i.update_domain.into());
        v.insert("platformFaultDomain".into(), i.fault_domain.into());
    }
    if i.power != PowerState::Deallocated {
        v.insert("computerName".into(), i.computer_name.clone().into());
        v.insert("osName".into(), i.os_name.clone().into());
        v.insert("osVersion".into(), i.os_version.clone().into());
    }
    if let Some(agent) = vm_agent(i) {
        v.insert("vmAgent".into(), agent);
    }
    v.insert(
        "disks".into(),
        i.disks.iter().map(|d| disk(d, &i.time)).collect(),
    );
    if !i.extensions.is_empty() {
        v.insert(
            "extensions".into(),
            i.extensions.iter().map(|e| extension(e, &i.time)).collect(),
        );
    }
    if let Some(h) = vm_health(i.app_health, &i.time) {
        v.insert("vmHealth".into(), h);
    }
    v.insert("hyperVGeneration".into(), "V2".into());
    v.insert("statuses".into(), Value::Array(statuses));
    Value::Object(v)
}

fn rg_in_ids(ss: &ScaleSetState) -> String {
    if ss.spec.upper_case_resource_group_in_ids {
        ss.resource_group.to_uppercase()
    } else {
        ss.resource_group.clone()
    }
}

pub(crate) fn scale_set_id(ss: &ScaleSetState) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
        ss.subscription,
        rg_in_ids(ss),
        ss.spec.name
    )
}

fn flex_vm_name(ss: &ScaleSetState, id: &str) -> String {
    format!("{}_{id}", ss.spec.name)
}

fn flex_vm_id(ss: &ScaleSetState, id: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines/{}",
        ss.subscription,
        rg_in_ids(ss),
        flex_vm_name(ss, id)
    )
}

fn sku(ss: &ScaleSetState) -> Value {
    json!({"name": ss.spec.sku.name, "tier": ss.spec.sku.tier})
}

/// One item of `VirtualMachineScaleSetVMs_List` for a Uniform set.
pub(crate) fn vmss_vm(ss: &ScaleSetState, rec: &InstanceRecord, shape: Shape) -> Value {
    let i = resolve(ss, rec);
    let mut props = Map::new();
    // `$select=instanceView` leaves the ID and the instance view only (the seed's example):
    // none of the model view.
    let model_view = shape.select == Select::All;
    if model_view {
        props.insert("latestModelApplied".into(), i.latest_model_applied.into());
        props.insert(
            "modelDefinitionApplied".into(),
            "VirtualMachineScaleSet".into(),
        );
        props.insert(
            "vmId".into(),
            stable_uuid(&format!("vm/{}/{}", ss.key(), i.id)).into(),
        );
        props.insert(
            "hardwareProfile".into(),
            json!({"vmSize": ss.spec.sku.name}),
        );
        props.insert(
            "osProfile".into(),
            json!({"computerName": i.computer_name, "adminUsername": "azureuser"}),
        );
        props.insert("timeCreated".into(), i.time_created.clone().into());
        if i.protect_from_scale_in || i.protect_from_scale_set_actions {
            props.insert(
                "protectionPolicy".into(),
                json!({
                    "protectFromScaleIn": i.protect_from_scale_in,
                    "protectFromScaleSetActions": i.protect_from_scale_set_actions,
                }),
            );
        }
    }
    props.insert(
        "provisioningState".into(),
        capitalized(&i.provisioning.to_string()).into(),
    );
    if shape.expand_instance_view {
        props.insert(
            "instanceView".into(),
            instance_view(&i, ss.spec.legacy_upgrade_domain_string, shape),
        );
    }
    let mut item = json!({
        "name": format!("{}_{}", ss.spec.name, i.id),
        "id": format!("{}/virtualMachines/{}", scale_set_id(ss), i.id),
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": ss.spec.location,
        "tags": {},
        "instanceId": i.id,
        "sku": sku(ss),
    });
    if let Some(z) = i.zone.as_ref().filter(|_| model_view) {
        item["zones"] = json!([z]);
    }
    item["properties"] = Value::Object(props);
    item
}

/// A Flexible set's VMSS VM item from api-version 2025-11-01: a pointer to
/// the real VM only.
pub(crate) fn vmss_vm_reference(ss: &ScaleSetState, rec: &InstanceRecord) -> Value {
    let name = flex_vm_name(ss, rec.id());
    json!({
        "name": name,
        "id": format!("{}/virtualMachines/{name}", scale_set_id(ss)),
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": ss.spec.location,
        "instanceId": name,
        "etag": "\"1\"",
        "properties": {"virtualMachineResourceId": flex_vm_id(ss, rec.id())},
    })
}

/// One item of `VirtualMachines_List` (a Flexible set's member VM).
pub(crate) fn flex_vm(ss: &ScaleSetState, rec: &InstanceRecord, expand: bool) -> Value {
    let i = resolve(ss, rec);
    let name = flex_vm_name(ss, &i.id);
    let mut props = json!({
        "vmId": stable_uuid(&format!("vm/{}/{}", ss.key(), i.id)),
        "hardwareProfile": {"vmSize": ss.spec.sku.name},
        "virtualMachineScaleSet": {"id": scale_set_id(ss)},
        "osProfile": {"computerName": name, "adminUsername": "azureuser"},
        "provisioningState": capitalized(&i.provisioning.to_string()),
        "timeCreated": i.time_created,
    });
    if expand {
        let shape = Shape {
            expand_instance_view: true,
            select: Select::All,
            power_state_only: false,
        };
        // Flexible members are ordinary VMs whose computer name is their VM
        // name, not the base-36 Uniform scheme.
        let i = Instance {
            computer_name: name.clone(),
            ..i
        };
        props["instanceView"] = instance_view(&i, false, shape);
    }
    let mut item = json!({
        "name": name,
        "id": flex_vm_id(ss, rec.id()),
        "type": "Microsoft.Compute/virtualMachines",
        "location": ss.spec.location,
        "tags": {},
    });
    if let Some(z) = &rec.spec.merged_over(&ss.spec.defaults).zone {
        item["zones"] = json!([z]);
    }
    item["properties"] = props;
    item
}

/// `VirtualMachineScaleSets_Get`.
pub(crate) fn scale_set(ss: &ScaleSetState) -> Value {
    let mut zones: Vec<String> = ss
        .instances
        .values()
        .filter_map(|r| r.spec.merged_over(&ss.spec.defaults).zone)
        .collect();
    zones.sort();
    zones.dedup();
    let mode = match ss.spec.orchestration_mode {
        OrchestrationMode::Uniform => "Uniform",
        OrchestrationMode::Flexible => "Flexible",
    };
    let mut props = json!({
        "singlePlacementGroup": false,
        "orchestrationMode": mode,
        "provisioningState": "Succeeded",
        "uniqueId": ss.unique_id,
        "platformFaultDomainCount": 1,
    });
    if ss.spec.orchestration_mode == OrchestrationMode::Uniform {
        props["upgradePolicy"] = json!({"mode": "Manual"});
        props["overprovision"] = false.into();
    }
    let mut sku = sku(ss);
    sku["capacity"] = ss.instances.len().into();
    let mut v = json!({
        "name": ss.spec.name,
        "id": scale_set_id(ss),
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": ss.spec.location,
        "tags": {},
        "sku": sku,
    });
    if !zones.is_empty() {
        v["zones"] = json!(zones);
    }
    v["properties"] = props;
    v
}

/// ARM's error envelope.
pub(crate) fn arm_error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::state::{ScaleSetRef, SimState, lock};

    fn render_first(yaml: &str, shape: Shape) -> Value {
        let scenario = Scenario::from_yaml(yaml).unwrap();
        let state = SimState::new(&scenario);
        let mut world = lock(&state.world);
        let ss = world
            .scale_set_mut(&ScaleSetRef::new("s", "rg", "web"))
            .unwrap();
        let rec = ss.instances.values().next().unwrap();
        vmss_vm(ss, rec, shape)
    }

    const FULL: Shape = Shape {
        expand_instance_view: true,
        select: Select::InstanceView,
        power_state_only: false,
    };

    fn one(instance: &str) -> String {
        format!(
            "subscriptions: [{{id: s, resourceGroups: [{{name: rg, scaleSets: [{{name: web, instances: [{instance}]}}]}}]}}]"
        )
    }

    #[test]
    fn healthy_instance_has_the_documented_shape() {
        let v = render_first(&one("{id: 0, zone: '2', appHealth: healthy}"), FULL);
        assert_eq!(v["name"], "web_0");
        assert_eq!(v["instanceId"], "0");
        assert_eq!(
            v["id"],
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0"
        );
        assert!(v.get("zones").is_none(), "$select=instanceView trims zones");
        let iv = &v["properties"]["instanceView"];
        assert_eq!(iv["platformUpdateDomain"], 0);
        assert_eq!(iv["computerName"], "web000000");
        assert_eq!(iv["statuses"][0]["code"], "ProvisioningState/succeeded");
        assert_eq!(iv["statuses"][1]["code"], "PowerState/running");
        assert_eq!(iv["vmAgent"]["statuses"][0]["displayStatus"], "Ready");
        assert_eq!(iv["vmHealth"]["status"]["code"], "HealthState/healthy");
        assert!(
            v["properties"].get("vmId").is_none(),
            "$select=instanceView trims properties"
        );
    }

    #[test]
    fn failed_instance_reports_errors() {
        let v = render_first(
            &one(
                "{id: 7, provisioningState: failed, provisioningError: VMAgentProvisioningFailure, vmAgent: notReady, extensions: [{name: cse, state: failed, message: boom}], disks: [{name: os, state: failed}]}",
            ),
            FULL,
        );
        assert_eq!(v["properties"]["provisioningState"], "Failed");
        let iv = &v["properties"]["instanceView"];
        assert_eq!(
            iv["statuses"][0]["code"],
            "ProvisioningState/failed/VMAgentProvisioningFailure"
        );
        assert_eq!(iv["statuses"][0]["level"], "Error");
        assert_eq!(
            iv["vmAgent"]["statuses"][0]["code"],
            "ProvisioningState/Unavailable"
        );
        assert_eq!(
            iv["extensions"][0]["statuses"][0]["code"],
            "ProvisioningState/failed/-1"
        );
        assert_eq!(iv["extensions"][0]["statuses"][0]["message"], "boom");
        assert_eq!(iv["disks"][0]["statuses"][0]["level"], "Error");
        assert!(iv.get("vmHealth").is_none());
    }

    #[test]
    fn deallocated_instance_reports_no_agent() {
        let v = render_first(
            &one("{id: 1, powerState: deallocated, appHealth: healthy, extensions: [{name: x}]}"),
            FULL,
        );
        let iv = &v["properties"]["instanceView"];
        assert_eq!(iv["statuses"][1]["code"], "PowerState/deallocated");
        assert!(iv.get("vmAgent").is_none());
        assert!(iv.get("extensions").is_none());
        assert!(iv.get("vmHealth").is_none());
    }

    #[test]
    fn legacy_spelling_uses_strings() {
        let yaml = "subscriptions: [{id: s, resourceGroups: [{name: rg, scaleSets: [{name: web, legacyUpgradeDomainString: true, instances: [{id: 3, updateDomain: 4}]}]}]}]";
        let v = render_first(yaml, FULL);
        let iv = &v["properties"]["instanceView"];
        assert_eq!(iv["platformUpgradeDomain"], "4");
        assert!(iv.get("platformUpdateDomain").is_none());
    }

    #[test]
    fn no_expand_means_no_instance_view() {
        let shape = Shape {
            expand_instance_view: false,
            select: Select::All,
            power_state_only: false,
        };
        let v = render_first(&one("{id: 0}"), shape);
        assert!(v["properties"].get("instanceView").is_none());
        assert!(v["properties"].get("vmId").is_some());
    }

    #[test]
    fn the_model_view_is_served_without_select_and_trimmed_with_it() {
        let instance = "{id: 0, zone: '2', latestModelApplied: false, protectFromScaleIn: true, timeCreated: '2026-01-02T03:04:05Z'}";
        let all = Shape {
            select: Select::All,
            ..FULL
        };
        let v = render_first(&one(instance), all);
        let p = &v["properties"];
        assert_eq!(v["zones"], json!(["2"]));
        assert_eq!(p["latestModelApplied"], false);
        assert_eq!(p["timeCreated"], "2026-01-02T03:04:05Z");
        assert_eq!(
            p["protectionPolicy"],
            json!({"protectFromScaleIn": true, "protectFromScaleSetActions": false})
        );
        let trimmed = render_first(&one(instance), FULL);
        for field in ["latestModelApplied", "timeCreated", "protectionPolicy"] {
            assert!(trimmed["properties"].get(field).is_none(), "{field}");
        }
        assert!(trimmed.get("zones").is_none());
        // Unprotected instances carry no protectionPolicy; timeCreated defaults to creation.
        let plain = render_first(&one("{id: 0}"), all);
        assert!(plain["properties"].get("protectionPolicy").is_none());
        assert!(plain["properties"]["timeCreated"].is_string());
    }

    #[test]
    fn computer_names_are_base36() {
        assert_eq!(computer_name("web", "0"), "web000000");
        assert_eq!(computer_name("web", "36"), "web000010");
        assert_eq!(computer_name("my-vmss", "10"), "myvmss00000a");
    }
}
