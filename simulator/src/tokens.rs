//! The Entra ID token endpoint (`POST /{tenant}/oauth2/v2.0/token`) as the
//! `azure_identity` crate calls it: client credentials with a secret, or with
//! a workload-identity client assertion (a Kubernetes service-account JWT)
//! checked against the scenario's federated identities.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::scenario::{FederatedIdentity, ServicePrincipal};
use super::state::{IssuedToken, SimState, lock, random_uuid, stable_uuid};

pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The resources whose `/.default` scope yields an ARM token, in every
/// cloud of ARM-NOTES, with and without the trailing slash.
const ARM_AUDIENCES: &[&str] = &[
    "https://management.core.windows.net/",
    "https://management.azure.com/",
    "https://management.core.chinacloudapi.cn/",
    "https://management.chinacloudapi.cn/",
    "https://management.core.usgovcloudapi.net/",
    "https://management.usgovcloudapi.net/",
];

const FIC_DOCS: &str = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";

/// An Entra error answer: `{"error", "error_description", "error_codes", ...}`.
#[derive(Debug, Clone)]
pub(crate) struct EntraError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
}

impl EntraError {
    fn new(status: StatusCode, error: &'static str, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    fn missing(param: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{param}'."),
        )
    }

    /// The sign-in service is down (an outage of the scenario's), whatever was asked.
    pub(crate) fn unavailable(status: u16) -> Self {
        Self::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "temporarily_unavailable",
            50000,
            "There was an error issuing a token or an issue with our sign-in service.",
        )
    }

    fn invalid_client(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
    }

    /// The body, with the trace/correlation trailer Entra appends.
    pub fn body(&self, line_breaks: bool, base_url: &str) -> Value {
        let trace_id = random_uuid();
        let correlation_id = random_uuid();
        let timestamp = Timestamp::now().strftime("%Y-%m-%d %H:%M:%SZ").to_string();
        let sep = if line_breaks { "\r\n" } else { " " };
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}{sep}Trace ID: {trace_id}{sep}Correlation ID: {correlation_id}{sep}Timestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{base_url}/error?code={}", self.code),
        })
    }
}

/// The ARM audience a scope names, as ARM will later check it.
fn arm_audience(scope: &str, tenant: &str) -> Result<String, EntraError> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let invalid_scope = || {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    };
    let [single] = scopes.as_slice() else {
        return Err(invalid_scope());
    };
    let Some(resource) = single.strip_suffix(".default") else {
        return Err(invalid_scope());
    };
    let normalized = format!("{}/", resource.trim_end_matches('/').to_lowercase());
    if ARM_AUDIENCES.contains(&normalized.as_str()) {
        Ok(resource.to_owned())
    } else {
        Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                resource.trim_end_matches('/')
            ),
        ))
    }
}

/// Handles one token request; the body is the raw form.
pub(crate) async fn token_request(
    state: &SimState,
    tenant: &str,
    body: &[u8],
) -> Result<Value, EntraError> {
    let form: HashMap<String, String> =
        url::form_urlencoded::parse(body)
            .into_owned()
            .fold(HashMap::new(), |mut m, (k, v)| {
                m.entry(k).or_insert(v);
                m
            });
    let param = |name: &str| form.get(name).filter(|v| !v.is_empty());
    let grant = param("grant_type").ok_or_else(|| EntraError::missing("grant_type"))?;
    if grant != "client_credentials" {
        return Err(EntraError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    let client_id = param("client_id").ok_or_else(|| EntraError::missing("client_id"))?;
    let scope = param("scope").ok_or_else(|| EntraError::missing("scope"))?;

    let (principal, federated, lifetime) = {
        let world = lock(&state.world);
        if !world.knows_tenant(tenant) {
            return Err(EntraError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                format!(
                    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                ),
            ));
        }
        let principal = world.principal(tenant, client_id).cloned().ok_or_else(|| {
            EntraError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            )
        })?;
        let federated: Vec<FederatedIdentity> = world
            .federated
            .iter()
            .filter(|f| {
                f.tenant_id.eq_ignore_ascii_case(&principal.tenant_id)
                    && f.client_id.eq_ignore_ascii_case(&principal.client_id)
            })
            .cloned()
            .collect();
        (principal, federated, world.token_settings.lifetime_seconds)
    };

    if let Some(assertion) = param("client_assertion") {
        if param("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return Err(EntraError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                format!(
                    "The request body must contain the following parameter: 'client_assertion_type' with the value '{ASSERTION_TYPE}'."
                ),
            ));
        }
        verify_assertion(assertion, &federated).await?;
    } else if let Some(secret) = param("client_secret") {
        if principal.client_secret.as_deref() != Some(secret.as_str()) {
            return Err(EntraError::invalid_client(
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    principal.client_id
                ),
            ));
        }
    } else {
        return Err(EntraError::invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }

    let audience = arm_audience(scope, tenant)?;
    let access_token = mint(state, &principal, &audience, lifetime);
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
}

pub(crate) fn object_id(p: &ServicePrincipal) -> String {
    p.object_id
        .clone()
        .unwrap_or_else(|| stable_uuid(&format!("sp/{}/{}", p.tenant_id, p.client_id)))
}

/// Issues a token shaped like Entra's (a JWT with the usual claims) so that
/// a client peeking into it finds what it expects; its signature is random,
/// as only this simulator ever checks it, by lookup.
fn mint(state: &SimState, p: &ServicePrincipal, audience: &str, lifetime: u64) -> String {
    // However long the scenario asks, the clock arithmetic below must not overflow.
    let lifetime = lifetime.min(10 * 365 * 86_400);
    let now = Timestamp::now();
    let iat = now.as_second();
    let exp = iat + i64::try_from(lifetime).unwrap_or(i64::MAX / 2);
    let oid = object_id(p);
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "scaleset-watch-simulator"});
    let claims = json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{}/", p.tenant_id),
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "appid": p.client_id,
        "appidacr": "1",
        "idtyp": "app",
        "oid": oid,
        "sub": oid,
        "tid": p.tenant_id,
        "uti": random_uuid(),
        "ver": "1.0",
    });
    let signature: [u8; 32] = rand::random();
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    );
    let lifetime = Duration::from_secs(lifetime);
    let mut tokens = lock(&state.tokens);
    // Forget tokens long expired, so a simulator left running for days does
    // not grow without bound.
    let now_i = Instant::now();
    tokens.retain(|_, t| t.expires_at + Duration::from_secs(3600) > now_i);
    tokens.insert(
        token.clone(),
        IssuedToken {
            tenant_id: p.tenant_id.clone(),
            client_id: p.client_id.clone(),
            object_id: oid,
            expires_at: now_i + lifetime,
            expires_at_utc: now
                .checked_add(jiff::SignedDuration::from_secs(lifetime.as_secs() as i64))
                .unwrap_or(now),
        },
    );
    token
}

fn claim_str<'a>(claims: &'a Value, name: &str) -> &'a str {
    claims.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn audiences(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Entra's checks of a federated client assertion, in the order its error
/// codes suggest: issuer, signature and lifetime, audience, subject.
async fn verify_assertion(
    assertion: &str,
    federated: &[FederatedIdentity],
) -> Result<(), EntraError> {
    let malformed = || {
        EntraError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    };
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed())?;
    let mut peek = Validation::new(header.alg);
    peek.insecure_disable_signature_validation();
    peek.validate_exp = false;
    peek.validate_aud = false;
    peek.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(assertion, &DecodingKey::from_secret(&[]), &peek)
        .map_err(|_| malformed())?
        .claims;
    let iss = claim_str(&claims, "iss");
    let sub = claim_str(&claims, "sub");
    let aud = audiences(&claims);
    if federated.is_empty() {
        return Err(EntraError::invalid_client(
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'. {FIC_DOCS}",
                aud.join(",")
            ),
        ));
    }
    let by_issuer: Vec<&FederatedIdentity> = federated.iter().filter(|f| f.issuer == iss).collect();
    let Some(first) = by_issuer.first() else {
        return Err(EntraError::invalid_client(
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FIC_DOCS}"
            ),
        ));
    };

    let jwks = load_jwks(first).await.map_err(|e| {
        EntraError::invalid_client(
            50166,
            format!("Request to External OIDC endpoint failed. Issuer '{iss}': {e}"),
        )
    })?;
    let key_not_found = || {
        EntraError::invalid_client(
            700027,
            format!(
                "Client assertion failed signature validation. (Reason - The key was not found., Thumbprint of key used by client: '{}')",
                header.kid.as_deref().unwrap_or_default()
            ),
        )
    };
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(key_not_found)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| key_not_found())?;
    if header.alg != Algorithm::RS256 {
        return Err(EntraError::invalid_client(
            700027,
            format!(
                "Client assertion failed signature validation. (Reason - The token is signed with {:?}; only RS256 is accepted.)",
                header.alg
            ),
        ));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.leeway = 60;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    if let Err(e) = jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        use jsonwebtoken::errors::ErrorKind as K;
        return Err(match e.kind() {
            K::ExpiredSignature | K::ImmatureSignature => EntraError::invalid_client(
                700024,
                format!(
                    "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                    Timestamp::now(),
                    unix_time(&claims, "nbf"),
                    unix_time(&claims, "exp")
                ),
            ),
            K::MissingRequiredClaim(c) => EntraError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                format!("JWT token is invalid or malformed: the '{c}' claim is missing."),
            ),
            _ => {
                EntraError::invalid_client(700027, "Client assertion failed signature validation.")
            }
        });
    }
    let by_audience: Vec<&&FederatedIdentity> = by_issuer
        .iter()
        .filter(|f| aud.contains(&f.audience))
        .collect();
    if by_audience.is_empty() {
        return Err(EntraError::invalid_client(
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FIC_DOCS}",
                aud.join(",")
            ),
        ));
    }
    if !by_audience.iter().any(|f| f.subject == sub) {
        return Err(EntraError::invalid_client(
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FIC_DOCS}"
            ),
        ));
    }
    Ok(())
}

fn unix_time(claims: &Value, name: &str) -> String {
    claims
        .get(name)
        .and_then(Value::as_i64)
        .and_then(|s| Timestamp::from_second(s).ok())
        .map_or_else(|| "(none)".to_owned(), |t| t.to_string())
}

/// Reads the issuer's keys afresh for each assertion: token requests are
/// rare, and a rotated key then takes effect at once.
async fn load_jwks(f: &FederatedIdentity) -> Result<JwkSet, String> {
    let doc: Value = if let Some(inline) = &f.jwks {
        inline.clone()
    } else if let Some(path) = &f.jwks_file {
        let text = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?
    } else if let Some(url) = &f.jwks_url {
        fetch_jwks(f, url).await?
    } else {
        return Err("no JWKS source configured".into());
    };
    serde_json::from_value(doc).map_err(|e| format!("not a JWKS document: {e}"))
}

async fn fetch_jwks(f: &FederatedIdentity, url: &str) -> Result<Value, String> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(ca) = &f.jwks_ca_file {
        let pem = tokio::fs::read(ca)
            .await
            .map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("bad CA file {}: {e}", ca.display()))?;
        builder = builder.tls_certs_only(certs);
    }
    let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
    let mut request = client.get(url);
    if let Some(token) = &f.jwks_token {
        request = request.bearer_auth(token.trim());
    } else if let Some(token_file) = &f.jwks_token_file {
        let token = tokio::fs::read_to_string(token_file)
            .await
            .map_err(|e| format!("cannot read {}: {e}", token_file.display()))?;
        request = request.bearer_auth(token.trim());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    response.json().await.map_err(|e| format!("GET {url}: {e}"))
}

/// What ARM concludes about an `Authorization` header.
pub(crate) enum BearerCheck {
    Valid(IssuedToken),
    Missing,
    Invalid,
    Expired(IssuedToken),
}

pub(crate) fn check_bearer(state: &SimState, header: Option<&str>) -> BearerCheck {
    let Some(value) = header else {
        return BearerCheck::Missing;
    };
    let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
    else {
        return BearerCheck::Invalid;
    };
    match lock(&state.tokens).get(token) {
        None => BearerCheck::Invalid,
        Some(t) if t.expires_at <= Instant::now() => BearerCheck::Expired(t.clone()),
        Some(t) => BearerCheck::Valid(t.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_scopes_are_accepted_in_every_spelling() {
        for s in [
            "https://management.core.windows.net//.default",
            "https://management.core.windows.net/.default",
            "https://management.azure.com/.default",
            "https://management.usgovcloudapi.net/.default",
            "https://management.core.chinacloudapi.cn/.default",
        ] {
            assert!(arm_audience(s, "t").is_ok(), "{s}");
        }
        assert_eq!(
            arm_audience("https://graph.microsoft.com/.default", "t")
                .unwrap_err()
                .code,
            500011
        );
        assert_eq!(
            arm_audience("https://management.azure.com/user_impersonation", "t")
                .unwrap_err()
                .code,
            70011
        );
        assert_eq!(
            arm_audience("a/.default b/.default", "t").unwrap_err().code,
            70011
        );
    }

    #[test]
    fn error_body_has_what_azure_identity_reads() {
        let e = EntraError::invalid_client(7000215, "Invalid client secret provided.");
        let crlf = e.body(true, "https://x");
        let d = crlf["error_description"].as_str().unwrap();
        assert!(d.starts_with("AADSTS7000215: Invalid client secret provided.\r\nTrace ID: "));
        assert_eq!(crlf["error_codes"][0], 7000215);
        let plain = e.body(false, "https://x");
        assert!(!plain["error_description"].as_str().unwrap().contains('\r'));
        // azure_identity 1.0 borrows error_description: only an escape-free
        // string deserializes into &str.
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Borrowing<'a> {
            error_description: &'a str,
        }
        let text = plain.to_string();
        assert!(serde_json::from_str::<Borrowing<'_>>(&text).is_ok());
        let text = crlf.to_string();
        assert!(serde_json::from_str::<Borrowing<'_>>(&text).is_err());
    }
}
