//! The wire format of `VirtualMachineScaleSetVMs_List` with `$expand=instanceView`.
//!
//! Only the fields the health model reads are typed; everything else is skipped. Parsing is
//! deliberately forgiving: Azure adds fields, older api-versions spell some differently, and a
//! field of an unexpected type must cost us that field, never the whole poll.

use serde::Deserialize;
use std::borrow::Cow;

mod lenient;

/// One page of the list response. Its skeleton is strict: a page without a `value` list of
/// objects is broken, and counting it as fewer instances would be a lie.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmListPage<'a> {
    #[serde(borrow, deserialize_with = "lenient::items")]
    pub value: Vec<ScaleSetVm<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub next_link: Option<Cow<'a, str>>,
}

/// A VM of the scale set.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSetVm<'a> {
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub instance_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::object_or_default")]
    pub properties: VmProperties<'a>,
}

impl ScaleSetVm<'_> {
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
pub struct VmProperties<'a> {
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub provisioning_state: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub instance_view: Option<InstanceView<'a>>,
    /// Set on Flexible scale sets from api-version 2025-11-01, which list no instance views.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub virtual_machine_resource_id: Option<Cow<'a, str>>,
}

/// `VirtualMachineScaleSetVMInstanceView`.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView<'a> {
    #[serde(default, deserialize_with = "lenient::int")]
    pub platform_update_domain: Option<i32>,
    /// The 2017 api-version's spelling of `platformUpdateDomain`, sent as a string.
    #[serde(default, deserialize_with = "lenient::int")]
    pub platform_upgrade_domain: Option<i32>,
    #[serde(default, deserialize_with = "lenient::int")]
    pub platform_fault_domain: Option<i32>,
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub vm_agent: Option<VmAgent<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient::list")]
    pub disks: Vec<Disk<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient::list")]
    pub extensions: Vec<Extension<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub vm_health: Option<VmHealth<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient::list")]
    pub statuses: Vec<Status<'a>>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmAgent<'a> {
    #[serde(default, borrow, deserialize_with = "lenient::list")]
    pub statuses: Vec<Status<'a>>,
    #[serde(default, borrow, deserialize_with = "lenient::list")]
    pub extension_handlers: Vec<ExtensionHandler<'a>>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionHandler<'a> {
    #[serde(default, borrow, rename = "type", deserialize_with = "lenient::string")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub status: Option<Status<'a>>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Disk<'a> {
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::list")]
    pub statuses: Vec<Status<'a>>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Extension<'a> {
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "type", deserialize_with = "lenient::string")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::list")]
    pub statuses: Vec<Status<'a>>,
}

#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VmHealth<'a> {
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub status: Option<Status<'a>>,
}

/// `InstanceViewStatus`. `time` is not read: nothing in the health model depends on it.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status<'a> {
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub code: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub level: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub display_status: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub message: Option<Cow<'a, str>>,
}

impl InstanceView<'_> {
    pub fn update_domain(&self) -> Option<i32> {
        self.platform_update_domain.or(self.platform_upgrade_domain)
    }
}

impl Status<'_> {
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }

    pub fn is_error_level(&self) -> bool {
        self.level
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("error"))
    }
}

/// Parses one page. Unknown fields and values of unexpected types are skipped. Strings borrow
/// from `body` where they can, which makes parsing several times cheaper than owning them.
pub fn parse_page(body: &[u8]) -> Result<VmListPage<'_>, serde_json::Error> {
    // One bulk UTF-8 check up front is far cheaper than serde_json validating string by string.
    let text = std::str::from_utf8(body).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format!("response is not UTF-8: {e}"))
    })?;
    serde_json::from_str(text)
}

/// Calls `f` with every VM of one page as it is parsed, in order.
pub fn for_each_vm<'de>(
    body: &'de [u8],
    f: impl FnMut(ScaleSetVm<'de>),
) -> Result<(), serde_json::Error> {
    use serde::de::DeserializeSeed;
    let text = std::str::from_utf8(body).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format!("response is not UTF-8: {e}"))
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    lenient::PageSeed(f).deserialize(&mut de)?;
    de.end()
}

/// The raw bodies of every page of one list call, checked to be JSON. Kept raw so that each
/// watch sharing the fetch parses them with borrowed strings.
#[derive(Default, Clone, PartialEq)]
pub struct ListPages {
    pages: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ListPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ListPages({} pages, {} bytes)",
            self.pages.len(),
            self.bytes()
        )
    }
}

impl ListPages {
    pub fn new(pages: Vec<Vec<u8>>) -> Self {
        Self { pages }
    }

    /// Calls `f` with every VM of every page, parsing as it goes: no more than one VM is held
    /// at a time.
    pub fn for_each_vm(&self, mut f: impl FnMut(ScaleSetVm<'_>)) -> Result<(), serde_json::Error> {
        for body in &self.pages {
            for_each_vm(body, &mut f)?;
        }
        Ok(())
    }

    /// Every VM of every page.
    pub fn vms(&self) -> Result<Vec<ScaleSetVm<'_>>, serde_json::Error> {
        let mut vms = Vec::new();
        for body in &self.pages {
            vms.extend(parse_page(body)?.value);
        }
        Ok(vms)
    }

    /// Whether these pages came from a Flexible scale set's VM list, which names each VM's
    /// resource instead of carrying its instance view. Such a list is so throughout, so the
    /// first page tells, and a Uniform set's pages are not all parsed twice per fetch.
    pub fn lists_flexible_references(&self) -> Result<bool, serde_json::Error> {
        let Some(first) = self.pages.first() else {
            return Ok(false);
        };
        let mut flexible = false;
        for_each_vm(first, |vm| {
            flexible |= vm.properties.instance_view.is_none()
                && vm.properties.virtual_machine_resource_id.is_some();
        })?;
        Ok(flexible)
    }

    fn bytes(&self) -> usize {
        self.pages.iter().map(Vec::len).sum()
    }
}

/// What the client needs from a page before the rest: where the next one is.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct PageLink<'a> {
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub next_link: Option<Cow<'a, str>>,
}
