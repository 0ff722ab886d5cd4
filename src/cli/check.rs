//! `scaleset-watch check`: the controller's judgement of one scale set, printed in a terminal.

use crate::api::{
    Cloud, DEFAULT_API_VERSION, DEFAULT_APP_HEALTH_GRACE_PERIOD, ExpectedPowerState, HealthPolicy,
    OutdatedModelPolicy, ScaleSetWatch, ScaleSetWatchStatus,
};
use crate::azure::arm::client::{ArmClient, Limits, ScaleSetRef};
use crate::azure::arm::model::parse_page;
use crate::azure::arm::snapshot::ScaleSetSnapshot;
use crate::azure::poller::{CredentialSource, Poller};
use crate::azure::{self, ClientSecret, EndpointOverrides};
use crate::health;
use crate::health::status::{self, Outcome};
use k8s_openapi::api::core::v1::Secret;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Saved bodies of list responses (e.g. from `az rest`), one page per file; `-` reads stdin.
    #[arg(long = "from-file", num_args = 1.., value_name = "PAGE.json", conflicts_with_all = ["subscription", "resource_group", "scale_set", "from_cluster"])]
    pub from_file: Vec<PathBuf>,
    /// Take the scale set, api-version, cloud, credentials (its Secret) and health policy from
    /// this ScaleSetWatch, read with the current kubeconfig context.
    #[arg(long = "from-cluster", value_name = "NAMESPACE/NAME", conflicts_with_all = ["subscription", "resource_group", "scale_set", "api_version", "min_healthy_percent", "expected_power_states", "no_vm_agent", "no_model_view", "outdated_model", "app_health_grace_period"])]
    pub from_cluster: Option<String>,
    /// Subscription ID of the scale set.
    #[arg(long, required_unless_present_any = ["from_file", "from_cluster"])]
    pub subscription: Option<String>,
    /// Resource group of the scale set.
    #[arg(long, required_unless_present_any = ["from_file", "from_cluster"])]
    pub resource_group: Option<String>,
    /// Name of the scale set.
    #[arg(long, required_unless_present_any = ["from_file", "from_cluster"])]
    pub scale_set: Option<String>,
    #[arg(long, default_value = DEFAULT_API_VERSION)]
    pub api_version: String,
    /// AzurePublic, AzureChina or AzureUSGovernment (with --from-cluster: for a watch that
    /// names none).
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
    /// List with $select=instanceView (smaller pages) and so without the model view:
    /// no outdated-model, protection or zone counts, and no Application Health grace period.
    #[arg(long)]
    pub no_model_view: bool,
    /// What an instance not on the latest model means: Ignore, Report or Unhealthy.
    #[arg(long, default_value = "Report", value_parser = parse_outdated_model)]
    pub outdated_model: OutdatedModelPolicy,
    /// How long after creation Application Health "unknown" or "initializing" still counts as
    /// healthy (a Go duration such as 10m).
    #[arg(long, default_value = DEFAULT_APP_HEALTH_GRACE_PERIOD, value_parser = parse_grace)]
    pub app_health_grace_period: String,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// What to judge, and by which policy.
struct Job {
    input: Input,
    policy: HealthPolicy,
}

enum Input {
    Files(Vec<PathBuf>),
    Live {
        target: ScaleSetRef,
        cloud: Cloud,
        credentials: CredentialSource,
    },
}

/// Exit codes: 0 healthy, 1 not healthy, 2 health unknown (the error is on stderr).
pub async fn run(args: Args) -> i32 {
    let overrides =
        match EndpointOverrides::new(args.arm_endpoint.clone(), args.authority_host.clone()) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
    let job = match &args.from_cluster {
        Some(reference) => from_cluster(&args, reference).await,
        None => from_flags(&args),
    };
    let loaded = match job {
        Ok(job) => load(&args, job.input, overrides)
            .await
            .map(|(snapshot, name)| (snapshot, name, job.policy)),
        Err(e) => Err(e),
    };
    let (snapshot, name, policy) = match loaded {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let fleet = health::assess(&snapshot, &policy);
    let outcome = Outcome::Polled {
        health: &fleet,
        scale_set: &name,
        min_healthy_percent: policy.min_healthy_percent,
    };
    // No watch, so no target to track.
    let status = status::next_status(None, &outcome, None, None, jiff::Timestamp::now());
    let rendered = match args.output {
        Output::Table => Ok(table(&name, &status)),
        Output::Json => serde_json::to_string_pretty(&status)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        Output::Yaml => yaml_serde::to_string(&status).map_err(|e| e.to_string()),
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

/// The job the flags describe: saved pages, or a scale set read with the identity of the
/// person at the terminal.
fn from_flags(args: &Args) -> Result<Job, String> {
    let policy = HealthPolicy {
        min_healthy_percent: args.min_healthy_percent,
        expected_power_states: if args.expected_power_states.is_empty() {
            HealthPolicy::default().expected_power_states
        } else {
            args.expected_power_states.clone()
        },
        require_vm_agent: !args.no_vm_agent,
        app_health_grace_period: args.app_health_grace_period.clone(),
        outdated_model: args.outdated_model,
        ..HealthPolicy::default()
    };
    if !args.from_file.is_empty() {
        return Ok(Job {
            input: Input::Files(args.from_file.clone()),
            policy,
        });
    }
    let (Some(subscription), Some(resource_group), Some(scale_set)) =
        (&args.subscription, &args.resource_group, &args.scale_set)
    else {
        return Err("--subscription, --resource-group and --scale-set are required".into());
    };
    Ok(Job {
        input: Input::Live {
            target: ScaleSetRef {
                subscription_id: subscription.clone(),
                resource_group: resource_group.clone(),
                scale_set_name: scale_set.clone(),
                api_version: args.api_version.clone(),
                model_view: !args.no_model_view,
            },
            cloud: args.cloud,
            credentials: CredentialSource::Ambient,
        },
        policy,
    })
}

/// The job a ScaleSetWatch describes, read with the current kubeconfig context: its target,
/// api-version, cloud (else `--cloud`) and health policy, and the service principal of its
/// `credentials.secretRef` (else the identity of the person at the terminal, since the
/// controller's own identity is not available here).
async fn from_cluster(args: &Args, reference: &str) -> Result<Job, String> {
    let (namespace, name) = match reference.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => (ns, name),
        _ => {
            return Err(format!(
                "--from-cluster takes NAMESPACE/NAME of a ScaleSetWatch, not {reference:?}"
            ));
        }
    };
    let client = kube::Client::try_default().await.map_err(|e| {
        format!("--from-cluster: cannot set up a client for the current kubeconfig context: {e}")
    })?;
    let watches: kube::Api<ScaleSetWatch> = kube::Api::namespaced(client.clone(), namespace);
    let watch = match watches.get_opt(name).await {
        Ok(Some(watch)) => watch,
        Ok(None) => {
            return Err(format!(
                "ScaleSetWatch {namespace}/{name} not found in the cluster of the current kubeconfig context (kubectl get scalesetwatches -n {namespace})"
            ));
        }
        Err(e) => return Err(format!("cannot read ScaleSetWatch {namespace}/{name}: {e}")),
    };
    let spec = &watch.spec;
    let credentials = match &spec.credentials {
        None => CredentialSource::Ambient,
        Some(c) => CredentialSource::ServicePrincipal(
            secret_credentials(&client, namespace, &c.secret_ref.name).await?,
        ),
    };
    Ok(Job {
        input: Input::Live {
            target: ScaleSetRef {
                subscription_id: spec.subscription_id.clone(),
                resource_group: spec.resource_group.clone(),
                scale_set_name: spec.scale_set_name.clone(),
                api_version: spec.api_version().to_owned(),
                model_view: spec.model_view(),
            },
            cloud: spec.cloud.unwrap_or(args.cloud),
            credentials,
        },
        policy: spec.health.clone(),
    })
}

/// The service principal in a watch's credentials Secret (keys tenantId, clientId,
/// clientSecret), as the controller reads it.
async fn secret_credentials(
    client: &kube::Client,
    namespace: &str,
    secret: &str,
) -> Result<ClientSecret, String> {
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    let data = match secrets.get_opt(secret).await {
        Ok(Some(s)) => s.data.unwrap_or_default(),
        Ok(None) => {
            return Err(format!(
                "Secret {namespace}/{secret} (the watch's credentials.secretRef) not found"
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot read Secret {namespace}/{secret} (the watch's credentials.secretRef): {e}"
            ));
        }
    };
    let field = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                format!(
                    "Secret {namespace}/{secret} has no non-empty key {key} (needs tenantId, clientId, clientSecret)"
                )
            })
    };
    Ok(ClientSecret {
        tenant_id: field("tenantId")?,
        client_id: field("clientId")?,
        client_secret: field("clientSecret")?,
    })
}

async fn load(
    args: &Args,
    input: Input,
    overrides: EndpointOverrides,
) -> Result<(ScaleSetSnapshot, String), String> {
    let (target, cloud, credentials) = match input {
        Input::Files(paths) => {
            let mut instances = Vec::new();
            for path in &paths {
                let body = if path.as_os_str() == "-" {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut buf)
                        .map_err(|e| format!("cannot read stdin: {e}"))?;
                    buf
                } else {
                    std::fs::read(path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                };
                let page = parse_page(&body)
                    .map_err(|e| format!("{} is not a list response: {e}", path.display()))?;
                instances.extend(page.instances);
            }
            return Ok((ScaleSetSnapshot::new(instances), "(from files)".into()));
        }
        Input::Live {
            target,
            cloud,
            credentials,
        } => (target, cloud, credentials),
    };
    let http = azure::http_client(args.ca_file.as_deref()).map_err(|e| e.to_string())?;
    let poller = Poller::new(
        ArmClient::new(http.clone(), Limits::default()),
        http,
        overrides,
    )
    .with_ambient_credential(azure::command_line_credential);
    let snapshot = poller
        .fetch_once(cloud, &target, &credentials)
        .await
        .map_err(|e| format!("{} ({})", e, crate::health::Reason::of_poll_error(&e)))?;
    Ok((snapshot, target.scale_set_name))
}

fn parse_outdated_model(s: &str) -> Result<OutdatedModelPolicy, String> {
    match s {
        "Ignore" => Ok(OutdatedModelPolicy::Ignore),
        "Report" => Ok(OutdatedModelPolicy::Report),
        "Unhealthy" => Ok(OutdatedModelPolicy::Unhealthy),
        other => Err(format!(
            "unknown policy {other:?}: expected Ignore, Report or Unhealthy"
        )),
    }
}

fn parse_grace(s: &str) -> Result<String, String> {
    crate::api::parse_duration(s)
        .map(|_| s.to_owned())
        .ok_or_else(|| format!("{s:?} is not a duration such as 10m or 90s"))
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
        let a = &c.application_health;
        let _ = writeln!(
            out,
            "APP HEALTH  healthy {}, unhealthy {}, unknown {}, initializing {}, not reported {}; unknown or initializing past the grace period {}",
            a.healthy,
            a.unhealthy,
            a.unknown,
            a.initializing,
            a.not_reported,
            c.application_health_pending
        );
        let known = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        if c.outdated_model.is_some() || c.protected_from_scale_in.is_some() {
            let _ = writeln!(
                out,
                "MODEL       outdated {}, protected from scale-in {}, protected from scale set actions {}",
                known(c.outdated_model),
                known(c.protected_from_scale_in),
                known(c.protected_from_scale_set_actions)
            );
        }
    }
    if !status.zones.is_empty() {
        let parts: Vec<String> = status
            .zones
            .iter()
            .map(|z| format!("{}: {}/{} unhealthy", z.zone, z.unhealthy, z.total))
            .collect();
        let _ = writeln!(out, "{:<11} {}", "ZONES", parts.join(", "));
    }
    if !status.outdated_instances.is_empty() {
        let _ = writeln!(
            out,
            "{:<11} {}",
            "OUTDATED",
            status.outdated_instances.join(", ")
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
