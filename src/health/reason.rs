//! Every condition reason the controller writes, in one enum: users match these words in
//! `kubectl wait`, alerts and scripts, so the compiler, not a grep, keeps them consistent.

use crate::azure::arm::client::ArmError;
use crate::azure::poller::PollError;

/// A condition's `reason`: one CamelCase word (Kubernetes API conventions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    // Ready: the last poll.
    PollSucceeded,
    Suspended,
    CredentialsNotFound,
    CredentialsNotAllowed,
    AuthenticationFailed,
    Forbidden,
    ScaleSetNotFound,
    AzureUnavailable,
    InvalidRequest,
    Throttled,
    InvalidResponse,
    // Healthy and Degraded: the instances.
    NoInstances,
    AllInstancesHealthy,
    MinHealthyMet,
    BelowMinHealthy,
    InstancesUnhealthy,
    NotYetPolled,
    PollsFailing,
    TargetChanged,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Self::PollSucceeded,
        Self::Suspended,
        Self::CredentialsNotFound,
        Self::CredentialsNotAllowed,
        Self::AuthenticationFailed,
        Self::Forbidden,
        Self::ScaleSetNotFound,
        Self::AzureUnavailable,
        Self::InvalidRequest,
        Self::Throttled,
        Self::InvalidResponse,
        Self::NoInstances,
        Self::AllInstancesHealthy,
        Self::MinHealthyMet,
        Self::BelowMinHealthy,
        Self::InstancesUnhealthy,
        Self::NotYetPolled,
        Self::PollsFailing,
        Self::TargetChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PollSucceeded => "PollSucceeded",
            Self::Suspended => "Suspended",
            Self::CredentialsNotFound => "CredentialsNotFound",
            Self::CredentialsNotAllowed => "CredentialsNotAllowed",
            Self::AuthenticationFailed => "AuthenticationFailed",
            Self::Forbidden => "Forbidden",
            Self::ScaleSetNotFound => "ScaleSetNotFound",
            Self::AzureUnavailable => "AzureUnavailable",
            Self::InvalidRequest => "InvalidRequest",
            Self::Throttled => "Throttled",
            Self::InvalidResponse => "InvalidResponse",
            Self::NoInstances => "NoInstances",
            Self::AllInstancesHealthy => "AllInstancesHealthy",
            Self::MinHealthyMet => "MinHealthyMet",
            Self::BelowMinHealthy => "BelowMinHealthy",
            Self::InstancesUnhealthy => "InstancesUnhealthy",
            Self::NotYetPolled => "NotYetPolled",
            Self::PollsFailing => "PollsFailing",
            Self::TargetChanged => "TargetChanged",
        }
    }

    /// Why `Ready` is False after a failed poll.
    pub fn of_poll_error(e: &PollError) -> Self {
        match e {
            PollError::CredentialsNotFound(_) => Self::CredentialsNotFound,
            PollError::SecretCredentialsDisabled | PollError::CredentialsNotAllowed(_) => {
                Self::CredentialsNotAllowed
            }
            PollError::CredentialSetup(_) => Self::AuthenticationFailed,
            PollError::Arm(e) => Self::of_arm_error(e),
        }
    }

    pub fn of_arm_error(e: &ArmError) -> Self {
        match e {
            ArmError::Authentication(_) | ArmError::Api { status: 401, .. } => {
                Self::AuthenticationFailed
            }
            ArmError::Api { status: 403, .. } => Self::Forbidden,
            ArmError::Api { status: 404, .. } => Self::ScaleSetNotFound,
            ArmError::Api { status, .. } if *status >= 500 => Self::AzureUnavailable,
            ArmError::Api { .. } => Self::InvalidRequest,
            ArmError::Throttled { .. } => Self::Throttled,
            ArmError::Unavailable(_) | ArmError::IdentityUnavailable(_) => Self::AzureUnavailable,
            ArmError::InvalidResponse(_) => Self::InvalidResponse,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> Self {
        r.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    #[test]
    fn every_reason_is_one_distinct_camel_case_word() {
        let words: HashSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(words.len(), Reason::ALL.len());
        for w in words {
            assert!(w.starts_with(|c: char| c.is_ascii_uppercase()), "{w}");
            assert!(w.chars().all(|c| c.is_ascii_alphanumeric()), "{w}");
        }
    }

    #[test]
    fn arm_failures_map_to_what_a_user_can_act_on() {
        let api = |status| ArmError::Api {
            status,
            code: "C".into(),
            message: "m".into(),
        };
        for (e, r) in [
            (api(401), Reason::AuthenticationFailed),
            (api(403), Reason::Forbidden),
            (api(404), Reason::ScaleSetNotFound),
            (api(400), Reason::InvalidRequest),
            (api(503), Reason::AzureUnavailable),
            (
                ArmError::Throttled {
                    retry_after: Duration::from_secs(1),
                    code: "TooManyRequests".into(),
                },
                Reason::Throttled,
            ),
            (ArmError::Unavailable("x".into()), Reason::AzureUnavailable),
            (
                ArmError::IdentityUnavailable("x".into()),
                Reason::AzureUnavailable,
            ),
            (
                ArmError::InvalidResponse("x".into()),
                Reason::InvalidResponse,
            ),
            (
                ArmError::Authentication("x".into()),
                Reason::AuthenticationFailed,
            ),
        ] {
            assert_eq!(Reason::of_arm_error(&e), r, "{e}");
            assert_eq!(Reason::of_poll_error(&PollError::Arm(e)), r);
        }
        assert_eq!(
            Reason::of_poll_error(&PollError::SecretCredentialsDisabled),
            Reason::CredentialsNotAllowed
        );
        assert_eq!(
            Reason::of_poll_error(&PollError::CredentialsNotFound("x".into())),
            Reason::CredentialsNotFound
        );
    }
}
