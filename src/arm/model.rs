//! The wire format of `VirtualMachineScaleSetVMs_List` with `$expand=instanceView`.
//!
//! Only the fields the health model reads are typed; everything else is skipped. Parsing is
//! deliberately forgiving: Azure adds fields, older api-versions spell some differently, and a
//! field of an unexpected type must cost us that field, never the whole poll.

use super::json::{Kind, Reader, SyntaxError};
use lenient::{Fields, int, list, object, string};
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

// The wire names of the fields read; every other key is skipped.

impl<'a> Fields<'a> for ScaleSetVm<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "instanceId" => self.instance_id = string(r)?,
            "id" => self.id = string(r)?,
            "name" => self.name = string(r)?,
            "properties" => self.properties = object(r)?.unwrap_or_default(),
            _ => r.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fields<'a> for VmProperties<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "provisioningState" => self.provisioning_state = string(r)?,
            "instanceView" => self.instance_view = object(r)?,
            "virtualMachineResourceId" => self.virtual_machine_resource_id = string(r)?,
            _ => r.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fields<'a> for InstanceView<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "platformUpdateDomain" => self.platform_update_domain = int(r)?,
            "platformUpgradeDomain" => self.platform_upgrade_domain = int(r)?,
            "platformFaultDomain" => self.platform_fault_domain = int(r)?,
            "vmAgent" => self.vm_agent = object(r)?,
            "disks" => self.disks = list(r)?,
            "extensions" => self.extensions = list(r)?,
            "vmHealth" => self.vm_health = object(r)?,
            "statuses" => self.statuses = list(r)?,
            _ => r.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fields<'a> for VmAgent<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "statuses" => self.statuses = list(r)?,
            "extensionHandlers" => self.extension_handlers = list(r)?,
            _ => r.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fields<'a> for ExtensionHandler<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "type" => self.kind = string(r)?,
            "status" => self.status = object(r)?,
            _ => r.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fields<'a> for Disk<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "name" => self.name = string(r)?,
            "statuses" => self.statuses = list(r)?,
            _ => r.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fields<'a> for Extension<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "name" => self.name = string(r)?,
            "type" => self.kind = string(r)?,
            "statuses" => self.statuses = list(r)?,
            _ => r.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fields<'a> for VmHealth<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "status" => self.status = object(r)?,
            _ => r.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fields<'a> for Status<'a> {
    fn field(&mut self, key: &str, r: &mut Reader<'a>) -> lenient::Result<()> {
        match key {
            "code" => self.code = string(r)?,
            "level" => self.level = string(r)?,
            "displayStatus" => self.display_status = string(r)?,
            "message" => self.message = string(r)?,
            _ => r.skip()?,
        }
        Ok(())
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
            "value" if r.peek()? == Kind::Array => {
                seen_value = true;
                r.array(|r| {
                    if r.peek()? != Kind::Object {
                        shape = Err(ParseError::NotAPage("`value` holds something not a VM object"));
                        return r.skip();
                    }
                    match vm.as_mut() {
                        Some(f) => f(lenient::read_object(r)?),
                        None => r.skip()?,
                    }
                    Ok(())
                })?;
            }
            "value" => {
                shape = Err(ParseError::NotAPage("`value` is not a list"));
                r.skip()?;
            }
            "nextLink" => next_link = string(r)?,
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

/// What the client needs from a page before the rest: where the next one is. The whole page
/// is checked to be a list page of JSON, but its VMs are only passed over.
pub fn next_link(body: &[u8]) -> Result<Option<Cow<'_, str>>, ParseError> {
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
