//! `scaleset-watch check`: the controller's judgement of one scale set, printed in a terminal.

use crate::arm::client::{ArmClient, Limits, ScaleSetRef};
use crate::arm::model::{ListPages, check_page};
use crate::azure::{self, EndpointOverrides};
use crate::crd::{
    Cloud, DEFAULT_API_VERSION, ExpectedPowerState, HealthPolicy, ScaleSetWatchStatus,
};
use crate::health;
use crate::poller::{CredentialSource, Poller};
use crate::status::{self, Outcome};
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Saved bodies of list responses (e.g. from `az rest`), one page per file; `-` reads stdin.
    #[arg(long = "from-file", num_args = 1.., value_name = "PAGE.json", conflicts_with_all = ["subscription", "resource_group", "scale_set"])]
    pub from_file: Vec<PathBuf>,
    /// Subscription ID of the scale set.
    #[arg(long, required_unless_present = "from_file")]
    pub subscription: Option<String>,
    /// Resource group of the scale set.
    #[arg(long, required_unless_present = "from_file")]
    pub resource_group: Option<String>,
    /// Name of the scale set.
    #[arg(long, required_unless_present = "from_file")]
    pub scale_set: Option<String>,
    #[arg(long, default_value = DEFAULT_API_VERSION)]
    pub api_version: String,
    /// AzurePublic, AzureChina or AzureUSGovernment.
    #[arg(long, default_value = "AzurePublic")]
    pub cloud: Cloud,
    /// ARM endpoint instead of the cloud's (e.g. the simulator).
    #[arg(long, env = "SSW_ARM_ENDPOINT")]
    pub arm_endpoint: Option<url::Url>,
    /// Entra ID authority instead of the cloud's.
    #[arg(long, env = "AZURE_AUTHORITY_HOST")]
    pub authority_host: Option<url::Url>,
    /// Extra CA bundle (PEM) to trust for ARM and Entra ID.
    #[arg(long, env = "SSW_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Percentage of instances that must be healthy.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub min_healthy_percent: u8,
    /// Power states that count as healthy: running, stopped, deallocated (repeatable; default running).
    #[arg(long = "expected-power-state")]
    pub expected_power_states: Vec<ExpectedPowerState>,
    /// Do not require the VM agent to report Ready.
    #[arg(long)]
    pub no_vm_agent: bool,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// Exit codes: 0 healthy, 1 not healthy, 2 health unknown (the error is on stderr).
pub async fn run(args: Args) -> i32 {
    let policy = HealthPolicy {
        min_healthy_percent: args.min_healthy_percent,
        expected_power_states: if args.expected_power_states.is_empty() {
            HealthPolicy::default().expected_power_states
        } else {
            args.expected_power_states.clone()
        },
        require_vm_agent: !args.no_vm_agent,
    };
    let (pages, name) = match load(&args).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let fleet = match health::assess_pages(&pages, &policy) {
        Ok(fleet) => fleet,
        Err(e) => {
            eprintln!("error: invalid list response: {e}");
            return 2;
        }
    };
    let outcome = Outcome::Polled {
        health: &fleet,
        scale_set: &name,
        min_healthy_percent: policy.min_healthy_percent,
    };
    let status = status::next_status(None, &outcome, None, jiff::Timestamp::now());
    let rendered = match args.output {
        Output::Table => Ok(table(&name, &status)),
        Output::Json => serde_json::to_string_pretty(&status)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        Output::Yaml => serde_yaml::to_string(&status).map_err(|e| e.to_string()),
    };
    match rendered {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("error: cannot render the status: {e}");
            return 2;
        }
    }
    if fleet.policy_met { 0 } else { 1 }
}

async fn load(args: &Args) -> Result<(ListPages, String), String> {
    if !args.from_file.is_empty() {
        let mut pages = Vec::new();
        for path in &args.from_file {
            let body = if path.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| format!("cannot read stdin: {e}"))?;
                buf
            } else {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
            };
            check_page(&body)
                .map_err(|e| format!("{} is not a list response: {e}", path.display()))?;
            pages.push(body);
        }
        return Ok((ListPages::new(pages), "(from files)".into()));
    }
    let (Some(subscription), Some(resource_group), Some(scale_set)) =
        (&args.subscription, &args.resource_group, &args.scale_set)
    else {
        return Err("--subscription, --resource-group and --scale-set are required".into());
    };
    let http = azure::http_client(args.ca_file.as_deref()).map_err(|e| e.to_string())?;
    let poller = Poller::new(
        ArmClient::new(http.clone(), Limits::default()),
        http,
        EndpointOverrides {
            arm: args.arm_endpoint.clone(),
            authority: args.authority_host.clone(),
        },
    );
    let target = ScaleSetRef {
        subscription_id: subscription.clone(),
        resource_group: resource_group.clone(),
        scale_set_name: scale_set.clone(),
        api_version: args.api_version.clone(),
    };
    let pages = poller
        .fetch_once(args.cloud, &target, &CredentialSource::Ambient)
        .await
        .map_err(|e| format!("{} ({})", e, e.reason()))?;
    Ok((pages, scale_set.clone()))
}

fn table(name: &str, status: &ScaleSetWatchStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| format!("{} ({}): {}", c.status, c.reason, c.message))
            .unwrap_or_default()
    };
    let _ = writeln!(out, "SCALE SET   {name}");
    let _ = writeln!(
        out,
        "HEALTHY     {} ({}%)",
        status.summary.as_deref().unwrap_or("-"),
        status.healthy_percent.unwrap_or(0)
    );
    let _ = writeln!(out, "Healthy     {}", condition(status::HEALTHY));
    let _ = writeln!(out, "Degraded    {}", condition(status::DEGRADED));
    if let Some(c) = &status.instances {
        let _ = writeln!(
            out,
            "POWER       running {}, stopped {}, deallocated {}, transitioning {}, unknown {}",
            c.running, c.stopped, c.deallocated, c.transitioning, c.power_state_unknown
        );
        let _ = writeln!(
            out,
            "CAUSES      provisioning failed {}, provisioning in progress {}, VM agent not ready {}, extensions failed {}, disks failed {}, application unhealthy {}, no instance view {}",
            c.provisioning_failed,
            c.provisioning_in_progress,
            c.vm_agent_not_ready,
            c.extensions_failed,
            c.disks_failed,
            c.application_unhealthy,
            c.no_instance_view
        );
    }
    for (label, domains) in [
        ("FAULT DOMAINS", &status.fault_domains),
        ("UPDATE DOMAINS", &status.update_domains),
    ] {
        if !domains.is_empty() {
            let parts: Vec<String> = domains
                .iter()
                .map(|d| format!("{}: {}/{} unhealthy", d.domain, d.unhealthy, d.total))
                .collect();
            let _ = writeln!(out, "{label:<11} {}", parts.join(", "));
        }
    }
    if !status.unhealthy_instances.is_empty() {
        let _ = writeln!(out, "\nINSTANCE    REASONS");
        for u in &status.unhealthy_instances {
            let _ = writeln!(out, "{:<11} {}", u.instance_id, u.reasons.join("; "));
        }
        if status.unhealthy_instances_omitted > 0 {
            let _ = writeln!(out, "... and {} more", status.unhealthy_instances_omitted);
        }
    }
    out
}
