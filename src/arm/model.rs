//! The wire format of `VirtualMachineScaleSetVMs_List` with `$expand=instanceView`.
//!
//! Only the fields the health model reads are typed; everything else is skipped. Parsing is
//! deliberately forgiving: Azure adds fields, older api-versions spell some differently, and a
//! field of an unexpected type must cost us that field, never the whole poll.

use serde::Deserialize;

mod lenient;

/// One page of the list response.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmListPage {
    #[serde(default, deserialize_with = "lenient::list")]
    pub value: Vec<ScaleSetVm>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub next_link: Option<String>,
}

/// A VM of the scale set.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSetVm {
    #[serde(default, deserialize_with = "lenient::string")]
    pub instance_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::object_or_default")]
    pub properties: VmProperties,
}

impl ScaleSetVm {
    /// The instance ID as ARM reports it, else the last segment of the resource ID (the
    /// minimal spec example has only `id`), else the name.
    pub fn display_id(&self) -> &str {
        if let Some(id) = self.instance_id.as_deref().filter(|s| !s.is_empty()) {
            return id;
        }
        if let Some(last) = self
            .id
            .as_deref()
            .and_then(|id| id.rsplit('/').find(|s| !s.is_empty()))
        {
            return last;
        }
        self.name.as_deref().unwrap_or("")
    }
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmProperties {
    #[serde(default, deserialize_with = "lenient::string")]
    pub provisioning_state: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub instance_view: Option<InstanceView>,
    /// Set on Flexible scale sets from api-version 2025-11-01, which list no instance views.
    #[serde(default, deserialize_with = "lenient::string")]
    pub virtual_machine_resource_id: Option<String>,
}

/// `VirtualMachineScaleSetVMInstanceView`.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    #[serde(default, deserialize_with = "lenient::int")]
    pub platform_update_domain: Option<i32>,
    /// The 2017 api-version's spelling of `platformUpdateDomain`, sent as a string.
    #[serde(default, deserialize_with = "lenient::int")]
    pub platform_upgrade_domain: Option<i32>,
    #[serde(default, deserialize_with = "lenient::int")]
    pub platform_fault_domain: Option<i32>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub vm_agent: Option<VmAgent>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub disks: Vec<Disk>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub extensions: Vec<Extension>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub vm_health: Option<VmHealth>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub statuses: Vec<Status>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmAgent {
    #[serde(default, deserialize_with = "lenient::list")]
    pub statuses: Vec<Status>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub extension_handlers: Vec<ExtensionHandler>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionHandler {
    #[serde(default, rename = "type", deserialize_with = "lenient::string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub status: Option<Status>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub statuses: Vec<Status>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient::string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub statuses: Vec<Status>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmHealth {
    #[serde(default, deserialize_with = "lenient::object")]
    pub status: Option<Status>,
}

/// `InstanceViewStatus`. `time` is not read: nothing in the health model depends on it.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, deserialize_with = "lenient::string")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub level: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub display_status: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub message: Option<String>,
}

impl InstanceView {
    pub fn update_domain(&self) -> Option<i32> {
        self.platform_update_domain.or(self.platform_upgrade_domain)
    }
}

impl Status {
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }

    pub fn is_error_level(&self) -> bool {
        self.level
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("error"))
    }
}

/// Parses one page. Unknown fields and values of unexpected types are skipped.
pub fn parse_page(body: &[u8]) -> Result<VmListPage, serde_json::Error> {
    serde_json::from_slice(body)
}
