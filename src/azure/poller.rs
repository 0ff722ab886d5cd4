//! One poll of a scale set, shared: watches that name the same scale set with the same
//! credentials share one ARM fetch per interval. Knows Azure, not Kubernetes.

use crate::api::Cloud;
use crate::azure::arm::client::{ArmClient, ArmError, ScaleSetRef};
use crate::azure::arm::snapshot::ScaleSetSnapshot;
use crate::azure::{self, AzureSetupError, ClientSecret, EndpointOverrides};
use azure_core::credentials::TokenCredential;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a poll produced no instance list (`health::Reason::of_poll_error` names it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PollError {
    #[error("{0}")]
    CredentialsNotFound(String),
    #[error(
        "credentials from Secrets are disabled in this installation (secretCredentials.enabled=false)"
    )]
    SecretCredentialsDisabled,
    /// The watch may not use the controller's own identity (see `crate::azure::ambient`).
    #[error("{0}")]
    CredentialsNotAllowed(String),
    /// Shared by every watch of the fetch, hence the `Arc`; the cause stays reachable.
    #[error("{0}")]
    CredentialSetup(#[source] Arc<AzureSetupError>),
    #[error(transparent)]
    Arm(#[from] ArmError),
}

impl PollError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Arm(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl From<AzureSetupError> for PollError {
    fn from(e: AzureSetupError) -> Self {
        Self::CredentialSetup(Arc::new(e))
    }
}

/// Whose identity a poll uses.
#[derive(Clone, Debug)]
pub enum CredentialSource {
    /// The process's own identity: the controller's (workload identity, environment secret,
    /// managed identity) or, for `check`, see [`Poller::with_ambient_credential`].
    Ambient,
    ServicePrincipal(ClientSecret),
}

/// Identifies a credential without holding the secret itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CredentialKey {
    authority: String,
    principal: Option<(String, String, u64)>,
}

impl CredentialKey {
    /// Who the credential signs in as, without its secret: ARM throttles per principal.
    fn principal_name(&self) -> String {
        match &self.principal {
            Some((tenant, client, _)) => format!("{tenant}/{client}"),
            None => "ambient".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PollKey {
    arm: String,
    subscription: String,
    resource_group: String,
    scale_set: String,
    api_version: String,
    /// A page trimmed by `$select` cannot serve a watch that asks for the model view.
    model_view: bool,
    credential: CredentialKey,
}

struct CachedPoll {
    at: Instant,
    result: Result<Arc<ScaleSetSnapshot>, PollError>,
}

type Slot = Arc<tokio::sync::Mutex<Option<CachedPoll>>>;

/// Makes the process's own credential: the controller's or a person's at a terminal.
pub type AmbientCredential =
    fn(&reqwest::Client, &url::Url) -> Result<Arc<dyn TokenCredential>, AzureSetupError>;

pub struct Poller {
    arm: ArmClient,
    http: reqwest::Client,
    overrides: EndpointOverrides,
    ambient: AmbientCredential,
    credentials: Mutex<HashMap<CredentialKey, Arc<dyn TokenCredential>>>,
    polls: Mutex<HashMap<PollKey, Slot>>,
}

impl Poller {
    pub fn new(arm: ArmClient, http: reqwest::Client, overrides: EndpointOverrides) -> Self {
        Self {
            arm,
            http,
            overrides,
            ambient: azure::ambient_credential,
            credentials: Mutex::default(),
            polls: Mutex::default(),
        }
    }

    /// Uses `ambient` for [`CredentialSource::Ambient`] instead of the controller's identity.
    pub fn with_ambient_credential(mut self, ambient: AmbientCredential) -> Self {
        self.ambient = ambient;
        self
    }

    /// The scale set's VMs with instance views, fetched now or taken from a fetch younger than
    /// `max_age` made for another watch of the same scale set and credentials.
    pub async fn poll(
        &self,
        cloud: Cloud,
        target: &ScaleSetRef,
        source: &CredentialSource,
        max_age: Duration,
    ) -> Result<Arc<ScaleSetSnapshot>, PollError> {
        let endpoints = azure::endpoints(cloud, &self.overrides);
        let credential_key = CredentialKey {
            authority: endpoints.authority.to_string(),
            principal: match source {
                CredentialSource::Ambient => None,
                CredentialSource::ServicePrincipal(s) => {
                    let mut h = DefaultHasher::new();
                    s.client_secret.hash(&mut h);
                    Some((s.tenant_id.clone(), s.client_id.clone(), h.finish()))
                }
            },
        };
        let key = PollKey {
            arm: endpoints.arm.to_string(),
            subscription: target.subscription_id.to_ascii_lowercase(),
            resource_group: target.resource_group.to_lowercase(),
            scale_set: target.scale_set_name.to_ascii_lowercase(),
            api_version: target.api_version.clone(),
            model_view: target.model_view,
            credential: credential_key.clone(),
        };
        let slot = {
            let mut polls = self.polls.lock().unwrap_or_else(|p| p.into_inner());
            // Forget scale sets nobody has asked about for a while.
            if polls.len() > 64 {
                polls.retain(|_, s| {
                    Arc::strong_count(s) > 1
                        || s.try_lock().is_ok_and(|c| {
                            c.as_ref()
                                .is_some_and(|c| c.at.elapsed() < Duration::from_secs(3600))
                        })
                });
            }
            polls.entry(key).or_default().clone()
        };
        // Holding the slot's lock through the fetch makes concurrent watches wait for one fetch.
        let mut cached = slot.lock().await;
        // A shared result counts as fresh for 90% of the interval, so that watches polling on
        // the same period, whatever their phase, still share one fetch per period.
        if let Some(c) = cached.as_ref()
            && c.at.elapsed() < max_age.mul_f64(0.9)
        {
            return c.result.clone();
        }
        let result = self
            .fetch(&endpoints, target, source, credential_key)
            .await
            .map(Arc::new);
        *cached = Some(CachedPoll {
            at: Instant::now(),
            result: result.clone(),
        });
        result
    }

    async fn fetch(
        &self,
        endpoints: &azure::CloudEndpoints,
        target: &ScaleSetRef,
        source: &CredentialSource,
        key: CredentialKey,
    ) -> Result<ScaleSetSnapshot, PollError> {
        let principal = key.principal_name();
        let credential = self.credential(endpoints, source, key)?;
        let (arm, scope) = (&endpoints.arm, endpoints.scope.as_str());
        let uniform = self
            .arm
            .list_instance_views(arm, target, credential.as_ref(), &principal, scope)
            .await;
        let flexible = match &uniform {
            Ok(snapshot) => snapshot.lists_flexible_references(),
            // Before 2025-11-01 ARM refuses the scale set VM list of a Flexible set outright.
            Err(ArmError::Api {
                status: 400,
                code,
                message,
            }) => code.eq_ignore_ascii_case("OperationNotAllowed") && message.contains("Flexible"),
            Err(_) => false,
        };
        if flexible {
            return Ok(self
                .arm
                .list_flexible_instance_views(arm, target, credential.as_ref(), &principal, scope)
                .await?);
        }
        Ok(uniform?)
    }

    fn credential(
        &self,
        endpoints: &azure::CloudEndpoints,
        source: &CredentialSource,
        key: CredentialKey,
    ) -> Result<Arc<dyn TokenCredential>, PollError> {
        let mut creds = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = creds.get(&key) {
            return Ok(c.clone());
        }
        let credential = match source {
            CredentialSource::Ambient => (self.ambient)(&self.http, &endpoints.authority)?,
            CredentialSource::ServicePrincipal(secret) => {
                azure::client_secret_credential(&self.http, &endpoints.authority, secret)?
            }
        };
        // A rotated secret gets a new key; drop credentials of older rotations of the same principal.
        creds.retain(|k, _| {
            k.authority != key.authority
                || k.principal.as_ref().map(|p| (&p.0, &p.1))
                    != key.principal.as_ref().map(|p| (&p.0, &p.1))
        });
        creds.insert(key, credential.clone());
        Ok(credential)
    }
}
