//! The wire format of `VirtualMachineScaleSetVMs_List` with `$expand=instanceView`.
//!
//! Only the fields the health model reads are typed; everything else is skipped. Parsing is
//! deliberately forgiving: Azure adds fields, older api-versions spell some differently, and a
//! field of an unexpected type must cost us that field, never the whole poll.

use super::json::{Kind, Reader, SyntaxError};
use lenient::{Fields, int, list, object, object_or_default, string};
use std::borrow::Cow;

mod lenient;

/// One page of the list response. Its skeleton is strict: a page without a `value` list of
/// objects is broken, and counting it as fewer instances would be a lie.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct VmListPage<'a> {
    pub value: Vec<ScaleSetVm<'a>>,
    pub next_link: Option<Cow<'a, str>>,
}

/// A VM of the scale set.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ScaleSetVm<'a> {
    pub instance_id: Option<Cow<'a, str>>,
    pub id: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
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

#[derive(Debug, Default, Clone, PartialEq)]
pub struct VmProperties<'a> {
    pub provisioning_state: Option<Cow<'a, str>>,
    pub instance_view: Option<InstanceView<'a>>,
    /// Set on Flexible scale sets from api-version 2025-11-01, which list no instance views.
    pub virtual_machine_resource_id: Option<Cow<'a, str>>,
}

/// `VirtualMachineScaleSetVMInstanceView`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InstanceView<'a> {
    pub platform_update_domain: Option<i32>,
    /// The 2017 api-version's spelling of `platformUpdateDomain`, sent as a string.
    pub platform_upgrade_domain: Option<i32>,
    pub platform_fault_domain: Option<i32>,
    pub vm_agent: Option<VmAgent<'a>>,
    pub disks: Vec<Disk<'a>>,
    pub extensions: Vec<Extension<'a>>,
    pub vm_health: Option<VmHealth<'a>>,
    pub statuses: Vec<Status<'a>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct VmAgent<'a> {
    pub statuses: Vec<Status<'a>>,
    pub extension_handlers: Vec<ExtensionHandler<'a>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExtensionHandler<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub status: Option<Status<'a>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Disk<'a> {
    pub name: Option<Cow<'a, str>>,
    pub statuses: Vec<Status<'a>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Extension<'a> {
    pub name: Option<Cow<'a, str>>,
    pub kind: Option<Cow<'a, str>>,
    pub statuses: Vec<Status<'a>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct VmHealth<'a> {
    pub status: Option<Status<'a>>,
}

/// `InstanceViewStatus`. `time` is not read: nothing in the health model depends on it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Status<'a> {
    pub code: Option<Cow<'a, str>>,
    pub level: Option<Cow<'a, str>>,
    pub display_status: Option<Cow<'a, str>>,
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

/// Maps wire names to fields: each listed key is read into its field by the given lenient
/// reader, and every other key is skipped.
macro_rules! wire_fields {
    ($($ty:ident { $($key:literal => $field:ident: $read:path),+ $(,)? })+) => {$(
        impl<'a> Fields<'a> for $ty<'a> {
            fn field(&mut self, key: &[u8], r: &mut Reader<'a>) -> lenient::Result<()> {
                match key {
                    $($key => self.$field = $read(r)?,)+
                    _ => r.skip()?,
                }
                Ok(())
            }
        }
    )+};
}

wire_fields! {
    ScaleSetVm {
        b"instanceId" => instance_id: string,
        b"id" => id: string,
        b"name" => name: string,
        b"properties" => properties: object_or_default,
    }
    VmProperties {
        b"provisioningState" => provisioning_state: string,
        b"instanceView" => instance_view: object,
        b"virtualMachineResourceId" => virtual_machine_resource_id: string,
    }
    InstanceView {
        b"platformUpdateDomain" => platform_update_domain: int,
        b"platformUpgradeDomain" => platform_upgrade_domain: int,
        b"platformFaultDomain" => platform_fault_domain: int,
        b"vmAgent" => vm_agent: object,
        b"disks" => disks: list,
        b"extensions" => extensions: list,
        b"vmHealth" => vm_health: object,
        b"statuses" => statuses: list,
    }
    VmAgent {
        b"statuses" => statuses: list,
        b"extensionHandlers" => extension_handlers: list,
    }
    ExtensionHandler {
        b"type" => kind: string,
        b"status" => status: object,
    }
    Disk {
        b"name" => name: string,
        b"statuses" => statuses: list,
    }
    Extension {
        b"name" => name: string,
        b"type" => kind: string,
        b"statuses" => statuses: list,
    }
    VmHealth {
        b"status" => status: object,
    }
    Status {
        b"code" => code: string,
        b"level" => level: string,
        b"displayStatus" => display_status: string,
        b"message" => message: string,
    }
}

/// Why a body is not a list page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("response is not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("invalid JSON: {0}")]
    Syntax(#[from] SyntaxError),
    /// Valid JSON, but not a page: counting it as fewer instances would be a lie.
    #[error("not a list page: {0}")]
    NotAPage(&'static str),
}

/// Reads one page's skeleton, handing each VM to `vm` as it is read, or checking and skipping
/// the VMs when there is no `vm`. Returns the page's `nextLink`.
fn read_page<'a>(
    body: &'a [u8],
    mut vm: Option<&mut dyn FnMut(ScaleSetVm<'a>)>,
) -> Result<Option<Cow<'a, str>>, ParseError> {
    // One bulk UTF-8 check up front lets the reader slice strings without checking each.
    let mut r = Reader::new(std::str::from_utf8(body)?);
    if r.peek()? != Kind::Object {
        return Err(ParseError::NotAPage("the body is not an object"));
    }
    let mut next_link = None;
    let mut seen_value = false;
    let mut shape = Ok(());
    r.object(|r, key| {
        match key {
            b"value" if r.peek()? == Kind::Array => {
                seen_value = true;
                r.array(|r| {
                    if r.peek()? != Kind::Object {
                        shape = Err(ParseError::NotAPage(
                            "`value` holds something not a VM object",
                        ));
                        return r.skip();
                    }
                    match vm.as_mut() {
                        Some(f) => f(lenient::read_object(r)?),
                        None => r.skip()?,
                    }
                    Ok(())
                })?;
            }
            b"value" => {
                shape = Err(ParseError::NotAPage("`value` is not a list"));
                r.skip()?;
            }
            b"nextLink" => next_link = string(r)?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    r.end()?;
    shape?;
    if !seen_value {
        return Err(ParseError::NotAPage("no `value` list"));
    }
    Ok(next_link)
}

/// Parses one page. Unknown fields and values of unexpected types are skipped. Strings borrow
/// from `body` where they can, which makes parsing several times cheaper than owning them.
pub fn parse_page(body: &[u8]) -> Result<VmListPage<'_>, ParseError> {
    let mut value = Vec::new();
    let next_link = read_page(body, Some(&mut |vm| value.push(vm)))?;
    Ok(VmListPage { value, next_link })
}

/// Calls `f` with every VM of one page as it is parsed, in order.
pub fn for_each_vm<'a>(
    body: &'a [u8],
    mut f: impl FnMut(ScaleSetVm<'a>),
) -> Result<(), ParseError> {
    read_page(body, Some(&mut f)).map(drop)
}

/// Checks that `body` is a list page (JSON with a `value` list of VM objects) and returns its
/// `nextLink`. The VMs are only passed over, which makes this the cheap check to run as each
/// page arrives.
pub fn check_page(body: &[u8]) -> Result<Option<Cow<'_, str>>, ParseError> {
    read_page(body, None)
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
    pub fn for_each_vm(&self, mut f: impl FnMut(ScaleSetVm<'_>)) -> Result<(), ParseError> {
        for body in &self.pages {
            for_each_vm(body, &mut f)?;
        }
        Ok(())
    }

    /// Every VM of every page.
    pub fn vms(&self) -> Result<Vec<ScaleSetVm<'_>>, ParseError> {
        let mut vms = Vec::new();
        for body in &self.pages {
            vms.extend(parse_page(body)?.value);
        }
        Ok(vms)
    }

    /// Whether these pages came from a Flexible scale set's VM list, which names each VM's
    /// resource instead of carrying its instance view. Such a list is so throughout, so the
    /// first page tells, and a Uniform set's pages are not all parsed twice per fetch.
    pub fn lists_flexible_references(&self) -> Result<bool, ParseError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn only_vm(body: &str) -> ScaleSetVm<'_> {
        let mut page = parse_page(body.as_bytes()).expect("parses");
        assert_eq!(page.value.len(), 1, "{body}");
        page.value.remove(0)
    }

    #[test]
    fn keys_are_matched_after_unescaping_and_the_last_of_two_wins() {
        let vm = only_vm(
            r#"{"value": [{"instance\u0049d": "7", "name": "a", "name": "b\u00e9",
                "properties": {"instanceView": {"platformFaultDomain": 1, "platformFaultDomain": 2}}}]}"#,
        );
        assert_eq!(vm.instance_id.as_deref(), Some("7"));
        assert_eq!(vm.name.as_deref(), Some("bé"));
        let view = vm.properties.instance_view.expect("view");
        assert_eq!(view.platform_fault_domain, Some(2));
    }

    #[test]
    fn scalars_of_other_types_read_as_written_or_absent() {
        let vm = only_vm(
            r#"{"value": [{"instanceId": 12, "name": true, "id": null, "properties": {
                "provisioningState": ["Succeeded"],
                "instanceView": {"platformUpdateDomain": "3", "platformFaultDomain": 1.5,
                    "platformUpgradeDomain": 99999999999, "statuses": {"code": "x"},
                    "disks": [1, {"name": 2}, "x"]}}}]}"#,
        );
        assert_eq!(vm.instance_id.as_deref(), Some("12"));
        assert_eq!(vm.name.as_deref(), Some("true"));
        assert_eq!(vm.id, None);
        assert_eq!(vm.properties.provisioning_state, None);
        let view = vm.properties.instance_view.expect("view");
        assert_eq!(view.platform_update_domain, Some(3));
        assert_eq!(view.platform_fault_domain, None, "a fraction is no domain");
        assert_eq!(view.platform_upgrade_domain, None, "beyond i32");
        assert!(view.statuses.is_empty());
        assert_eq!(view.disks.len(), 1);
        assert_eq!(view.disks[0].name.as_deref(), Some("2"));
    }

    #[test]
    fn the_fetch_time_check_finds_the_link_and_refuses_what_parsing_would() {
        let page = r#"{"value": [{"instanceId": "0"}], "nextLink": "https://arm/next"}"#;
        assert_eq!(
            check_page(page.as_bytes()).expect("valid").as_deref(),
            Some("https://arm/next")
        );
        assert_eq!(check_page(br#"{"value": []}"#).expect("valid"), None);
        for broken in [
            &br#"{"value": [{"instanceId": "0"}], "nextLink": "x""#[..],
            br#"{"value": [1]}"#,
            br#"{"nextLink": "x"}"#,
            b"{\"value\": [{\"name\": \"\xff\"}]}",
        ] {
            assert_eq!(
                check_page(broken).is_err(),
                parse_page(broken).is_err(),
                "{}",
                String::from_utf8_lossy(broken)
            );
            assert!(
                check_page(broken).is_err(),
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
    }
}
