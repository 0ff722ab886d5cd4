//! Which ScaleSetWatches may poll Azure with the controller's own identity.
//!
//! A watch without `credentials` borrows the controller's identity, which often reads a whole
//! fleet. Without a limit, anyone who may create a ScaleSetWatch in any namespace could read
//! the health (extension messages included) of every scale set that identity can see: a
//! confused deputy. Cluster admins name the namespaces and subscriptions it may serve.

use crate::crd::is_dns_label;
use std::collections::BTreeSet;

/// A set of names, or all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Allowed {
    All,
    Only(BTreeSet<String>),
}

impl Allowed {
    fn contains(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(name),
        }
    }
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Only(names) if names.is_empty() => f.write_str("(none)"),
            Self::Only(names) => f.write_str(&names.iter().cloned().collect::<Vec<_>>().join(",")),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("SSW_AMBIENT_NAMESPACES: {0:?} is not a namespace name (RFC 1123 label) or *")]
    Namespace(String),
    #[error("SSW_AMBIENT_SUBSCRIPTIONS: {0:?} is not a subscription ID (a UUID) or *")]
    Subscription(String),
}

/// Where the controller's own identity may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmbientPolicy {
    namespaces: Allowed,
    /// Lowercase: Azure compares subscription IDs case-insensitively.
    subscriptions: Allowed,
}

impl Default for AmbientPolicy {
    /// Every namespace and subscription, as before these controls existed (library use; the
    /// `run` command's defaults are in [`AmbientPolicy::from_flags`]).
    fn default() -> Self {
        Self {
            namespaces: Allowed::All,
            subscriptions: Allowed::All,
        }
    }
}

impl AmbientPolicy {
    /// From the flags' comma-separated lists, where `*` means all and an empty list none.
    /// Unset namespaces mean `own_namespace` only (the controller's, where only its admins
    /// should create resources); unset subscriptions mean all. Names that cannot be valid are
    /// refused, so that a typo does not silently allow or deny.
    pub fn from_flags(
        namespaces: Option<&str>,
        subscriptions: Option<&str>,
        own_namespace: &str,
    ) -> Result<Self, PolicyError> {
        let namespaces = parse(namespaces.unwrap_or(own_namespace), |n| {
            is_dns_label(n)
                .then(|| n.to_owned())
                .ok_or_else(|| PolicyError::Namespace(n.to_owned()))
        })?;
        let subscriptions = parse(subscriptions.unwrap_or("*"), |s| {
            is_uuid(s)
                .then(|| s.to_ascii_lowercase())
                .ok_or_else(|| PolicyError::Subscription(s.to_owned()))
        })?;
        Ok(Self {
            namespaces,
            subscriptions,
        })
    }

    /// Whether a watch in `namespace` may read `subscription` with the controller's identity;
    /// the error is the Ready condition's message.
    pub fn check(&self, namespace: &str, subscription: &str) -> Result<(), String> {
        // The allowed lists are admin configuration: the message names neither.
        if !self.namespaces.contains(namespace) {
            return Err(format!(
                "ScaleSetWatches in namespace {namespace} may not use the controller's own Azure identity; \
                 name a Secret in spec.credentials, or ask a cluster admin to allow the namespace \
                 (chart value ambientCredentials.namespaces, SSW_AMBIENT_NAMESPACES)"
            ));
        }
        if !self
            .subscriptions
            .contains(&subscription.to_ascii_lowercase())
        {
            return Err(format!(
                "The controller's own Azure identity may not be used for subscription {subscription}; \
                 name a Secret in spec.credentials, or ask a cluster admin to allow the subscription \
                 (chart value ambientCredentials.subscriptions, SSW_AMBIENT_SUBSCRIPTIONS)"
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for AmbientPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "namespaces {}; subscriptions {}",
            self.namespaces, self.subscriptions
        )
    }
}

fn parse(
    list: &str,
    item: impl Fn(&str) -> Result<String, PolicyError>,
) -> Result<Allowed, PolicyError> {
    let mut names = BTreeSet::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "*" {
            return Ok(Allowed::All);
        }
        names.insert(item(name)?);
    }
    Ok(Allowed::Only(names))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
    const OTHER_SUB: &str = "00000000-0000-0000-0000-0000000000bb";

    fn policy(ns: Option<&str>, subs: Option<&str>) -> AmbientPolicy {
        AmbientPolicy::from_flags(ns, subs, "scaleset-watch").expect("valid flags")
    }

    #[test]
    fn unset_allows_only_the_controllers_own_namespace_and_any_subscription() {
        let p = policy(None, None);
        assert_eq!(p.check("scaleset-watch", SUB), Ok(()));
        assert_eq!(p.check("scaleset-watch", OTHER_SUB), Ok(()));
        let denied = p.check("team-a", SUB).expect_err("another namespace");
        assert!(denied.contains("namespace team-a"), "{denied}");
        assert!(denied.contains("SSW_AMBIENT_NAMESPACES"), "{denied}");
        assert!(
            !denied.contains("scaleset-watch"),
            "the allowed list stays private"
        );
    }

    #[test]
    fn listed_namespaces_and_star() {
        let p = policy(Some(" team-a, team-b ,"), None);
        assert!(p.check("team-a", SUB).is_ok() && p.check("team-b", SUB).is_ok());
        assert!(
            p.check("scaleset-watch", SUB).is_err(),
            "an explicit list replaces the default"
        );
        assert!(p.check("team-c", SUB).is_err());
        let all = policy(Some("*"), None);
        assert!(all.check("anything", SUB).is_ok());
        assert_eq!(all.to_string(), "namespaces *; subscriptions *");
    }

    #[test]
    fn an_empty_list_allows_no_namespace() {
        let p = policy(Some(""), None);
        assert!(p.check("scaleset-watch", SUB).is_err());
        assert_eq!(p.to_string(), "namespaces (none); subscriptions *");
    }

    #[test]
    fn subscriptions_compare_case_insensitively() {
        let p = policy(Some("*"), Some(&SUB.to_uppercase()));
        assert!(p.check("x", SUB).is_ok());
        let denied = p.check("x", OTHER_SUB).expect_err("not listed");
        assert!(denied.contains(OTHER_SUB) && denied.contains("SSW_AMBIENT_SUBSCRIPTIONS"));
        assert!(policy(Some("*"), Some("")).check("x", SUB).is_err());
    }

    #[test]
    fn typos_are_refused_at_startup() {
        assert_eq!(
            AmbientPolicy::from_flags(Some("team_a"), None, "ssw"),
            Err(PolicyError::Namespace("team_a".into()))
        );
        assert_eq!(
            AmbientPolicy::from_flags(None, Some("not-a-uuid"), "ssw"),
            Err(PolicyError::Subscription("not-a-uuid".into()))
        );
    }
}
