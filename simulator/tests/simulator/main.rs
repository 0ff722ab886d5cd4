//! The ARM simulator, driven over real HTTPS with reqwest (and with the
//! `azure_identity` credentials the controller uses), as the controller
//! would see it.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use ssw_simulator::{
    Fault, InstanceSpec, RequestStats, ScaleSetRef, Scenario, Simulator, SimulatorHandle,
};

const TENANT: &str = "11111111-1111-4111-8111-111111111111";
const CLIENT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SECRET: &str = "right-secret";
/// A principal granted no subscription.
const OUTSIDER: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const SUB: &str = "00000000-0000-4000-8000-000000000001";
/// A subscription of another tenant.
const FOREIGN_SUB: &str = "00000000-0000-4000-8000-000000000002";
const RG: &str = "rg-test";
const API: &str = "2024-07-01";
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const SA_SUBJECT: &str = "system:serviceaccount:scaleset-watch:controller";
const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// A throwaway RSA key standing in for a Kubernetes service-account signing
/// key (generated for these tests only; it signs nothing else).
const SA_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCtrrvRUFQ/zLcz
dlVFMgBGUG7s065FPgiKsAai8eP+jxqggAAH9QNC6RpsYHz9bl6b+aF6Qzuy9U5V
0GJmoazWzFGGUU+vfDJN3Ys9nrdCHth75xHhfn5SABi1JbCEvHvcUSWJ2a9XNRTA
LuMmFN1Xt7Hzcn8LUL+HCamgKjXyvXauHYiRLn6/GHj96I4CovR+JRfLRduje/11
3moMe1jcAY+7FC7ofedRqVqb2DSGp1r1GqALxD22c2qgsTXukV8rqygrFJIVITj0
6rrRPRS6kt4sEJYif2x2rnS5y9O6V2PSphp23r8CA2RbvQSLIjeCtmjwVGx6KlXH
9wCIeKZTAgMBAAECggEAI/a7IHAMSfu3cboOlRnx8Z1lIrgAbYkXVrR1Y1dIOSVj
w5lNqFglOT0wggGG0CmDALQzqi/y1C80bdONFKhktEOxm+kJYZKLjhESbIuJcfEW
La3ex30cZhlsBFKOFyY6VZgd+Enxo1Kz/cmXsoJ+hNPeTsVGJk8toaYwECC9dApN
Bw0sLipf8J8CoJOnRnIeS2zzlToM7+BV2Qdk+J7Otl9f5AIjxGywTSVJNbBoyDT6
uwmX97l6ZbJMmjn0j9vfEoQAuooOAgr7gCuydCxNDH0MB1r8B5glfGJOJvKpw/sb
s4qn/HvjcUcgiQemD2nSc2NXgp/POs8fFxU1/4VOJQKBgQDYKC/eHZFb+u38YCjH
h6Yz32CYkHsXmJWNdcQnT9l+7UmYqyvcdVslBCGNh4Ofh9AgUEshcRPRYudeYf8f
UOVPCyaQ42GvXTQ3PBJU7OBUj6Vmmcj4G6JDVQP2N9KVkuLlgA7nsC5nFDudXP+e
F+Msmjcggm7tIe0Kdh7mAE7wLQKBgQDNsk2f+bha72xPQUecj85l3zabngal3GAS
PLp1JHKNRf5L1O1fXuUiTqHksruhLgGgy2HYR6OyYE4eoLlCxYsbrJgvveN9LcDa
iabzstQyN3h9AZbUzsRj3/Sj5GvUsvqY7ZfSAh+nj9zG6D/81h33Y5KhXcolkQid
/UJ8+L2AfwKBgAlo7nSH6v0LFnMnKH9PK3AUqFrb50/mp5QJ7Wkcs8YvxEVuJjGp
tjcNT/yeSp+WRPwzIqIpDwjNem8EaxvM5L6lKJ+kFmuQ7iX9anrh+P4VZsjppvMO
GOk/eTWtxnAWfeQpx/xUEiEQo2u9Ua9rMMuPRxkWNIgEMxKCg+PVXZpdAoGAf0ZP
X6gdmS7B/rwuukIE/OXDnUCHboNQcphe6vK1apKfiX5jrfpCnxq2c5LgJBgaa8rM
bQ3OzSVn0O20FAu1SldeB1RgeWkhBlfcFLhXMgc+p2KfWGfj/sRpVCuXSRHBm3SP
1yL3QS/z9KNqTGCURCm5Zd1pohr+kPtO85LZdrMCgYEAhyD2Y2oXsszTdpYPoM3H
N7esFGuM6nHiABgWb3JkOzt5n+RxsdIcKDkRompbyg+fEkjnh2eS/YkAyneSPXqX
2r6rN1shKTJ4U1tMPNLI/LR8yUNTWIV//w05+h17hQMfakowRkJrQBgTk0FkY2SZ
lQWNIQawKd4uRZ+cQZ2KnLU=
-----END PRIVATE KEY-----\n";
/// Its public modulus, base64url, for the JWKS.
const SA_KEY_N: &str = "ra670VBUP8y3M3ZVRTIARlBu7NOuRT4IirAGovHj_o8aoIAAB_UDQukabGB8_W5em_mhekM7svVOVdBiZqGs1sxRhlFPr3wyTd2LPZ63Qh7Ye-cR4X5-UgAYtSWwhLx73FElidmvVzUUwC7jJhTdV7ex83J_C1C_hwmpoCo18r12rh2IkS5-vxh4_eiOAqL0fiUXy0Xbo3v9dd5qDHtY3AGPuxQu6H3nUalam9g0hqda9RqgC8Q9tnNqoLE17pFfK6soKxSSFSE49Oq60T0UupLeLBCWIn9sdq50ucvTuldj0qYadt6_AgNkW70EiyI3grZo8FRseipVx_cAiHimUw";

fn jwks() -> Value {
    json!({"keys": [{"use": "sig", "kty": "RSA", "kid": "test-key", "alg": "RS256", "n": SA_KEY_N, "e": "AQAB"}]})
}

fn scenario_yaml() -> String {
    format!(
        r#"
servicePrincipals:
  - {{tenantId: {TENANT}, clientId: {CLIENT}, clientSecret: {SECRET}, subscriptions: [{SUB}, {FOREIGN_SUB}]}}
  - {{tenantId: {TENANT}, clientId: {OUTSIDER}, clientSecret: other-secret}}
federatedIdentities:
  - issuer: {ISSUER}
    subject: {SA_SUBJECT}
    tenantId: {TENANT}
    clientId: {CLIENT}
    jwks: {jwks}
subscriptions:
  - id: {FOREIGN_SUB}
    tenantId: 99999999-9999-4999-8999-999999999999
  - id: {SUB}
    tenantId: {TENANT}
    resourceGroups:
      - name: {RG}
        scaleSets:
          - name: workers
            pageSize: 5
            generate: {{count: 12}}
            instances:
              - {{id: 3, extensions: [{{name: bootstrap, state: failed, message: exit 1}}]}}
              - {{id: 7, powerState: deallocated}}
              - {{id: 9, appHealth: unhealthy}}
          - name: web
            defaults: {{appHealth: healthy}}
            generate: {{count: 3, zones: ["1", "2", "3"]}}
          - name: legacy
            legacyUpgradeDomainString: true
            instances: [{{id: 0, updateDomain: 4}}]
          - name: flex
            orchestrationMode: Flexible
            pageSize: 2
            generate: {{count: 3}}
"#,
        jwks = jwks()
    )
}

fn http_client(ca_pem: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

struct Env {
    sim: SimulatorHandle,
    http: reqwest::Client,
}

impl Env {
    async fn start() -> Self {
        Self::start_with(&scenario_yaml()).await
    }

    async fn start_with(yaml: &str) -> Self {
        let scenario = Scenario::from_yaml(yaml).expect("test scenario");
        let sim = Simulator::start(scenario, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator starts");
        let http = http_client(sim.ca_pem());
        Self { sim, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    fn list_url(&self, vmss: &str, api: &str) -> String {
        self.url(&format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines?$expand=instanceView&$select=instanceView&api-version={api}"
        ))
    }

    async fn token_response(&self, tenant: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .expect("token request")
    }

    async fn secret_token(&self, client: &str, secret: &str) -> reqwest::Response {
        self.token_response(
            TENANT,
            &[
                ("client_id", client),
                ("client_secret", secret),
                ("grant_type", "client_credentials"),
                ("scope", ARM_SCOPE),
            ],
        )
        .await
    }

    async fn bearer(&self) -> String {
        self.bearer_for(CLIENT, SECRET).await
    }

    async fn bearer_for(&self, client: &str, secret: &str) -> String {
        let resp = self.secret_token(client, secret).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    async fn get(&self, url: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("ARM request")
    }

    async fn get_json(&self, url: &str, token: &str) -> (u16, Value) {
        let resp = self.get(url, Some(token)).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    /// Follows nextLink to the end (at most 50 pages); returns the items and
    /// the number of pages.
    async fn list_all(&self, vmss: &str, token: &str) -> (Vec<Value>, usize) {
        let mut url = self.list_url(vmss, API);
        let mut items = Vec::new();
        for page in 1..=50 {
            let (status, body) = self.get_json(&url, token).await;
            assert_eq!(status, 200, "page {page}: {body}");
            items.extend(body["value"].as_array().expect("value").iter().cloned());
            match body["nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => return (items, page),
            }
        }
        panic!("more than 50 pages");
    }

    fn workers(&self) -> ScaleSetRef {
        ScaleSetRef::new(SUB, RG, "workers")
    }

    /// Arms the workers scale set with faults, each given in the scenario's YAML.
    fn fault_workers(&self, faults: &[&str]) {
        let faults = faults.iter().map(|y| fault(y)).collect();
        self.sim
            .set_faults(&self.workers(), faults)
            .expect("faults set");
    }

    async fn admin_stats(&self) -> RequestStats {
        self.http
            .get(self.url("/_sim/requests"))
            .send()
            .await
            .expect("admin request")
            .json()
            .await
            .expect("stats JSON")
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn instance_by_id<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["instanceId"] == id)
        .unwrap_or_else(|| panic!("no instance {id}"))
}

fn fault(yaml: &str) -> Fault {
    yaml_serde::from_str(yaml).expect("fault YAML")
}

#[test]
fn the_demo_fleet_parses() {
    let s = Scenario::from_yaml(ssw_simulator::DEMO_SCENARIO).expect("fleet.yaml");
    let sets = &s.subscriptions[0].resource_groups[0].scale_sets;
    assert_eq!(
        sets.iter()
            .map(|s| s.expanded_instances().len())
            .collect::<Vec<_>>(),
        [5, 12]
    );
    assert!(sets.iter().all(|s| s.page_size == 5));
}

#[tokio::test]
async fn client_secret_yields_a_bearer_token() {
    let env = Env::start().await;
    let resp = env.secret_token(CLIENT, SECRET).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped");
    let stats = env.sim.request_stats();
    assert_eq!(
        (
            stats.tokens.count,
            stats.tokens.issued,
            stats.tokens.rejected
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn token_errors_look_like_entra() {
    let env = Env::start().await;
    let resp = env.secret_token(CLIENT, "wrong").await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with("AADSTS7000215: Invalid client secret provided."),
        "{description}"
    );
    assert!(
        description.contains("\r\nTrace ID: "),
        "Entra's CRLF trailer by default"
    );

    let resp = env
        .secret_token("cccccccc-0000-4000-8000-000000000009", SECRET)
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["error_codes"][0].as_u64()),
        (Some("unauthorized_client"), Some(700016))
    );

    let form = [
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("grant_type", "client_credentials"),
        ("scope", ARM_SCOPE),
    ];
    let body: Value = env
        .token_response("unknown-tenant", &form)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error_codes"][0], 90002);

    let mut graph = form;
    graph[3] = ("scope", "https://graph.microsoft.com/.default");
    let body: Value = env
        .token_response(TENANT, &graph)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["error"].as_str(), body["error_codes"][0].as_u64()),
        (Some("invalid_resource"), Some(500011))
    );

    let resp = env
        .token_response(
            TENANT,
            &[
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", ARM_SCOPE),
            ],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 900144);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("'grant_type'")
    );

    let stats = env.sim.request_stats();
    assert_eq!((stats.tokens.issued, stats.tokens.rejected), (0, 5));
}

#[tokio::test]
async fn list_pages_through_twelve_instances() {
    let env = Env::start().await;
    let token = env.bearer().await;

    let resp = env.get(&env.list_url("workers", API), Some(&token)).await;
    assert_eq!(resp.status(), 200);
    for h in [
        "x-ms-request-id",
        "x-ms-correlation-request-id",
        "x-ms-ratelimit-remaining-subscription-reads",
    ] {
        assert!(resp.headers().contains_key(h), "missing {h}");
    }
    let resource = resp.headers()["x-ms-ratelimit-remaining-resource"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        resource.starts_with("Microsoft.Compute/GetVMScaleSetVM3Min;")
            && resource.contains(",Microsoft.Compute/GetVMScaleSetVM30Min;"),
        "{resource}"
    );
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["value"].as_array().unwrap().len(), 5);
    let next = first["nextLink"].as_str().expect("page 1 has a nextLink");
    assert!(
        next.starts_with(&format!("{}/subscriptions/{SUB}/", env.sim.base_url())),
        "{next}"
    );
    assert!(
        next.contains("$skiptoken=") && next.contains(&format!("api-version={API}")),
        "{next}"
    );

    let (items, pages) = env.list_all("workers", &token).await;
    assert_eq!(pages, 3);
    assert_eq!(items.len(), 12);
    let ids: HashSet<&str> = items
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 12);

    let i0 = instance_by_id(&items, "0");
    assert_eq!(i0["name"], "workers_0");
    assert_eq!(
        i0["type"],
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
    );
    assert_eq!(
        i0["id"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/workers/virtualMachines/0"
        )
    );
    assert_eq!(i0["properties"]["provisioningState"], "Succeeded");
    let view = &i0["properties"]["instanceView"];
    assert!(view["platformUpdateDomain"].is_u64());
    assert_eq!(view["statuses"][1]["code"], "PowerState/running");
    assert_eq!(
        view["vmAgent"]["statuses"][0]["code"],
        "ProvisioningState/succeeded"
    );

    let i3 = &instance_by_id(&items, "3")["properties"]["instanceView"];
    assert_eq!(
        i3["extensions"][0]["statuses"][0]["code"],
        "ProvisioningState/failed/-1"
    );
    assert_eq!(i3["extensions"][0]["statuses"][0]["level"], "Error");
    let i7 = &instance_by_id(&items, "7")["properties"]["instanceView"];
    assert_eq!(i7["statuses"][1]["code"], "PowerState/deallocated");
    let i9 = &instance_by_id(&items, "9")["properties"]["instanceView"];
    assert_eq!(i9["vmHealth"]["status"]["code"], "HealthState/unhealthy");
}

#[tokio::test]
async fn paths_and_names_are_case_insensitive() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.url(&format!(
        "/subscriptions/{SUB}/resourcegroups/RG-TEST/providers/microsoft.compute/virtualmachinescalesets/WEB/virtualmachines?$expand=instanceView&api-version={API}"
    ));
    let (status, body) = env.get_json(&url, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 3);
    assert_eq!(
        body["value"][0]["properties"]["instanceView"]["vmHealth"]["status"]["code"],
        "HealthState/healthy"
    );
    assert_eq!(body["value"][0]["zones"], json!(["1"]));
}

#[tokio::test]
async fn authentication_failures_are_401() {
    let env = Env::start().await;
    let url = env.list_url("workers", API);

    let resp = env.get(&url, None).await;
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer authorization_uri="),
        "{challenge}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "AuthenticationFailed");

    let resp = env.get(&url, Some("bogus")).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "InvalidAuthenticationToken");

    let token = env.bearer().await;
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
    env.sim.expire_tokens();
    let (status, body) = env.get_json(&url, &token).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "ExpiredAuthenticationToken");

    let token = env.bearer().await;
    let foreign = env.url(&format!(
        "/subscriptions/{FOREIGN_SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/workers/virtualMachines?api-version={API}"
    ));
    let (status, body) = env.get_json(&foreign, &token).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "InvalidAuthenticationTokenTenant");
}

#[tokio::test]
async fn a_principal_without_the_subscription_gets_403() {
    let env = Env::start().await;
    let token = env.bearer_for(OUTSIDER, "other-secret").await;
    let (status, body) = env.get_json(&env.list_url("workers", API), &token).await;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "AuthorizationFailed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(OUTSIDER), "{message}");
    assert!(
        message.contains("'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read'"),
        "{message}"
    );
}

#[tokio::test]
async fn missing_things_are_404_with_arm_codes() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let base = |sub: &str, rg: &str, vmss: &str| {
        env.url(&format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines?api-version={API}"
        ))
    };
    let (status, body) = env
        .get_json(
            &base("00000000-dead-4000-8000-000000000000", RG, "workers"),
            &token,
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, "SubscriptionNotFound"));
    let (status, body) = env.get_json(&base(SUB, "rg-nope", "workers"), &token).await;
    assert_eq!((status, error_code(&body)), (404, "ResourceGroupNotFound"));
    let (status, body) = env.get_json(&base(SUB, RG, "nope"), &token).await;
    assert_eq!((status, error_code(&body)), (404, "ResourceNotFound"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("The Resource 'Microsoft.Compute/virtualMachineScaleSets/nope' under resource group '{RG}' was not found.")));
}

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    let without = url.replace(&format!("&api-version={API}"), "");
    let (status, body) = env.get_json(&without, &token).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "MissingApiVersionParameter")
    );
    let (status, body) = env.get_json(&url.replace(API, "2099-01-01"), &token).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "InvalidApiVersionParameter")
    );
    for v in [
        "2017-03-30",
        "2024-11-01",
        "2025-04-01",
        "2025-11-01",
        "2026-03-01",
    ] {
        assert_eq!(
            env.get(&url.replace(API, v), Some(&token)).await.status(),
            200,
            "{v}"
        );
    }
}

#[tokio::test]
async fn throttling_holds_until_retry_after_passes() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    env.fault_workers(&["{throttle: {retryAfterSeconds: 30}, count: 1}"]);

    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "30");
    let remaining = resp.headers()["x-ms-ratelimit-remaining-resource"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        remaining.contains("Microsoft.Compute/GetVMScaleSetVM3Min;0"),
        "{remaining}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "OperationNotAllowed");
    assert_eq!(
        body["error"]["message"],
        "The server rejected the request because too many requests have been received for this subscription."
    );
    assert_eq!(body["error"]["details"][0]["target"], "GetVMScaleSetVM3Min");

    // The fault fired once, but its Retry-After window still holds.
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    let again: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&again), "{again}");
    assert_eq!(
        env.sim.request_stats().scale_set(&env.workers()).throttled,
        2
    );

    // Other scale sets are not affected.
    assert_eq!(
        env.get(&env.list_url("web", API), Some(&token))
            .await
            .status(),
        200
    );
    env.sim.clear_faults(&env.workers()).unwrap();
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn throttle_windows_expire() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    env.fault_workers(&["{throttle: {retryAfterSeconds: 1}, count: 1}"]);
    assert_eq!(env.get(&url, Some(&token)).await.status(), 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn server_errors_fire_for_their_count() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    env.fault_workers(&[
        "{serverError: {status: 500}, count: 1}",
        "{serverError: {status: 503, retryAfterSeconds: 4}, count: 1}",
    ]);
    let (status, body) = env.get_json(&url, &token).await;
    assert_eq!((status, error_code(&body)), (500, "InternalServerError"));
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "4");
    assert_eq!(
        error_code(&resp.json::<Value>().await.unwrap()),
        "ServiceUnavailable"
    );
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
    assert!(
        env.sim.state().faults(&env.workers()).unwrap().is_empty(),
        "spent faults are removed"
    );
    assert_eq!(env.sim.request_stats().scale_set(&env.workers()).faulted, 2);
}

#[tokio::test]
async fn faults_can_target_one_page() {
    let env = Env::start().await;
    let token = env.bearer().await;
    env.fault_workers(&["{serverError: {status: 500}, page: 2}"]);
    let (status, first) = env.get_json(&env.list_url("workers", API), &token).await;
    assert_eq!(status, 200);
    let next = first["nextLink"].as_str().unwrap();
    let (status, body) = env.get_json(next, &token).await;
    assert_eq!((status, error_code(&body)), (500, "InternalServerError"));
    // Unlimited count: page 2 keeps failing, page 1 keeps working.
    assert_eq!(env.get(next, Some(&token)).await.status(), 500);
    assert_eq!(
        env.get(&env.list_url("workers", API), Some(&token))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn broken_bodies_do_not_parse() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);

    env.fault_workers(&["{malformedJson: {}, count: 1}"]);
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("{\"value\":["), "{}", &text[..40]);
    assert!(serde_json::from_str::<Value>(&text).is_err());

    env.fault_workers(&["{truncatedJson: {percent: 60}, count: 1}"]);
    let text = env.get(&url, Some(&token)).await.text().await.unwrap();
    assert!(text.starts_with("{\"value\":[{"));
    let err = serde_json::from_str::<Value>(&text).unwrap_err();
    assert!(err.is_eof(), "cut mid-body: {err}");

    env.fault_workers(&["{oversizedBody: {megabytes: 3}, count: 1}"]);
    let text = env.get(&url, Some(&token)).await.text().await.unwrap();
    assert!(text.len() > 3 * 1024 * 1024);
    let body: Value = serde_json::from_str(&text).expect("oversized but valid");
    assert_eq!(body["value"].as_array().unwrap().len(), 5);

    let (status, _) = env.get_json(&url, &token).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn next_links_can_leave_the_host_or_loop() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);

    env.fault_workers(&["{foreignNextLink: {}, count: 1}"]);
    let (_, body) = env.get_json(&url, &token).await;
    let next = body["nextLink"].as_str().unwrap();
    assert!(
        next.starts_with("https://evil.example.com/subscriptions/"),
        "{next}"
    );

    env.fault_workers(&["{nextLinkLoop: {}}"]);
    let (_, page1) = env.get_json(&url, &token).await;
    let (_, page2) = env
        .get_json(page1["nextLink"].as_str().unwrap(), &token)
        .await;
    assert_eq!(page2["value"][0]["instanceId"], "5");
    let back = page2["nextLink"].as_str().unwrap();
    let (_, again) = env.get_json(back, &token).await;
    assert_eq!(
        again["value"], page1["value"],
        "page 2 leads back to page 1"
    );
    assert_ne!(back, page1["nextLink"].as_str().unwrap());

    // `exact`: the link is the very URL page 1 was fetched with, so that a
    // client remembering the links it followed can tell.
    env.fault_workers(&["{nextLinkLoop: {exact: true}}"]);
    let (_, page1) = env.get_json(&url, &token).await;
    let (_, page2) = env
        .get_json(page1["nextLink"].as_str().unwrap(), &token)
        .await;
    assert_eq!(page2["nextLink"].as_str(), Some(url.as_str()));
}

#[tokio::test]
async fn a_listing_can_serve_an_instance_on_two_pages() {
    let env = Env::start().await;
    let token = env.bearer().await;
    env.fault_workers(&["{duplicateInstance: {}, page: 2}"]);
    let (items, pages) = env.list_all("workers", &token).await;
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 13, "{ids:?}");
    assert_eq!(ids[10], ids[4], "page 2 repeats page 1's last: {ids:?}");
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 12);
}

#[tokio::test]
async fn timeouts_hang_past_the_client_deadline() {
    let env = Env::start().await;
    let token = env.bearer().await;
    env.fault_workers(&["{timeout: {seconds: 5}, count: 1}"]);
    let started = std::time::Instant::now();
    let err = env
        .http
        .get(env.list_url("workers", API))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("the request hangs");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        env.sim
            .request_stats()
            .scale_set(&env.workers())
            .list_pages
            .count,
        1
    );
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_hanging_requests() {
    let env = Env::start().await;
    let token = env.bearer().await;
    env.fault_workers(&["{timeout: {seconds: 120}}"]);
    let request = env
        .http
        .get(env.list_url("workers", API))
        .bearer_auth(&token)
        .send();
    let pending = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    env.sim.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    // The hanging request is answered (504) or cut; either way it ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("request ends");
}

#[tokio::test]
async fn a_sign_in_outage_fails_every_token_request_until_it_ends() {
    let env = Env::start().await;
    let outage = env.url("/_sim/tokens/outage");
    for (body, status) in [("{status: 404}", 400), ("{}", 400), ("{status: 503}", 204)] {
        let resp = env.http.put(&outage).body(body).send().await.unwrap();
        assert_eq!(resp.status(), status, "{body}");
    }
    let resp = env.secret_token(CLIENT, SECRET).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(body["error_codes"], json!([50000]));
    // A gateway in front of Entra answers with a page of its own.
    let resp = env
        .http
        .put(&outage)
        .body("{status: 502, body: html}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = env.secret_token(CLIENT, SECRET).await;
    assert_eq!(resp.status(), 502);
    assert!(resp.text().await.unwrap().starts_with("<html>"));
    assert_eq!(env.http.delete(&outage).send().await.unwrap().status(), 204);
    assert_eq!(env.secret_token(CLIENT, SECRET).await.status(), 200);

    let refused = Scenario::from_yaml(&format!(
        "tokens: {{outage: {{status: 302}}}}\n{}",
        scenario_yaml()
    ));
    assert!(
        refused
            .expect_err("302 is no outage")
            .to_string()
            .contains("tokens.outage.status must be 429 or 5xx"),
    );
}

#[tokio::test]
async fn admin_changes_show_in_the_next_list() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let admin = |path: &str| env.url(&format!("/_sim/scalesets/{SUB}/{RG}/workers{path}"));

    let resp = env
        .http
        .patch(admin("/instances/0"))
        .body(r#"{"powerState": "deallocated"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = env
        .http
        .put(admin("/instances/42"))
        .body("powerState: stopped\nappHealth: unhealthy\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        env.http
            .delete(admin("/instances/11"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        env.http
            .delete(admin("/instances/11"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let resp = env
        .http
        .put(admin("/instances/5"))
        .body("powerState: sideways")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let (items, _) = env.list_all("workers", &token).await;
    assert_eq!(items.len(), 12);
    assert_eq!(
        instance_by_id(&items, "0")["properties"]["instanceView"]["statuses"][1]["code"],
        "PowerState/deallocated"
    );
    let i42 = &instance_by_id(&items, "42")["properties"]["instanceView"];
    assert_eq!(i42["statuses"][1]["code"], "PowerState/stopped");
    assert_eq!(i42["vmAgent"]["statuses"][0]["displayStatus"], "Not Ready");
    assert!(items.iter().all(|i| i["instanceId"] != "11"));

    // The same through the handle.
    env.sim
        .patch_instance(
            &env.workers(),
            "0",
            InstanceSpec {
                power_state: Some(ssw_simulator::scenario::PowerState::Running),
                ..Default::default()
            },
        )
        .unwrap();
    env.sim.remove_instance(&env.workers(), "42").unwrap();
    let (items, _) = env.list_all("workers", &token).await;
    assert_eq!(items.len(), 11);
    assert_eq!(
        instance_by_id(&items, "0")["properties"]["instanceView"]["statuses"][1]["code"],
        "PowerState/running"
    );

    // Faults through the admin API: one or a list, YAML or JSON.
    let resp = env
        .http
        .post(admin("/faults"))
        .body(r#"{"serverError": {"status": 503}, "count": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        env.get(&env.list_url("workers", API), Some(&token))
            .await
            .status(),
        503
    );
    let resp = env
        .http
        .post(admin("/faults"))
        .body("- throttle: {retryAfterSeconds: 9}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let listed: Value = env
        .http
        .get(admin("/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["throttle"]["retryAfterSeconds"], 9);
    assert_eq!(
        env.get(&env.list_url("workers", API), Some(&token))
            .await
            .status(),
        429
    );
    assert_eq!(
        env.http
            .delete(admin("/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        env.get(&env.list_url("workers", API), Some(&token))
            .await
            .status(),
        200
    );
    let missing = env.url(&format!("/_sim/scalesets/{SUB}/{RG}/nope/faults"));
    assert_eq!(env.http.delete(missing).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn request_counts_are_kept_per_scale_set_and_kind() {
    let env = Env::start().await;
    let token = env.bearer().await;
    env.list_all("workers", &token).await;
    env.list_all("web", &token).await;
    env.get(&env.list_url("workers", API), None).await;

    let stats = env.admin_stats().await;
    assert_eq!(stats, env.sim.request_stats());
    let workers = stats.scale_set(&env.workers());
    assert_eq!(workers.list_pages.count, 4);
    assert_eq!(workers.first_pages, 2);
    assert!(workers.list_pages.last_at.is_some());
    assert_eq!(
        stats
            .scale_set(&ScaleSetRef::new(SUB, RG, "web"))
            .list_pages
            .count,
        1
    );
    assert_eq!(stats.kind("listVmssVms"), 5);
    assert_eq!(stats.kind("token"), 1);
    assert_eq!(stats.total, 6);
    assert_eq!(stats.recent.last().map(|r| r.status), Some(401));

    let resp = env
        .http
        .post(env.url("/_sim/requests/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(env.admin_stats().await.total, 0);
}

#[tokio::test]
async fn legacy_scale_sets_spell_the_update_domain_as_in_2017() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let (_, body) = env
        .get_json(&env.list_url("legacy", "2017-03-30"), &token)
        .await;
    let view = &body["value"][0]["properties"]["instanceView"];
    assert_eq!(view["platformUpgradeDomain"], "4");
    assert!(view.get("platformUpdateDomain").is_none());
}

#[tokio::test]
async fn flexible_scale_sets_answer_as_in_2025() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let vmss_id = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/flex"
    );

    let (status, set) = env
        .get_json(
            &env.url(&format!("{vmss_id}?api-version=2025-11-01")),
            &token,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(set["properties"]["orchestrationMode"], "Flexible");
    assert_eq!(set["sku"]["capacity"], 3);
    assert!(set["properties"]["uniqueId"].is_string());

    let (status, body) = env
        .get_json(&env.list_url("flex", "2025-11-01"), &token)
        .await;
    assert_eq!(status, 200);
    let item = &body["value"][0];
    assert_eq!(item["name"], "flex_0");
    assert_eq!(item["properties"].as_object().unwrap().len(), 1);
    assert_eq!(
        item["properties"]["virtualMachineResourceId"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/flex_0"
        )
    );
    let (status, body) = env
        .get_json(&env.list_url("flex", "2024-07-01"), &token)
        .await;
    assert_eq!((status, error_code(&body)), (400, "OperationNotAllowed"));

    let vms = |query: &str| {
        env.url(&format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines?{query}"))
    };
    let filter = format!(
        "$filter='virtualMachineScaleSet/id' eq '{vmss_id}'&$expand=instanceView&api-version=2024-07-01"
    );
    let (status, page1) = env.get_json(&vms(&filter), &token).await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(page1["value"].as_array().unwrap().len(), 2);
    assert_eq!(
        page1["value"][0]["type"],
        "Microsoft.Compute/virtualMachines"
    );
    assert_eq!(
        page1["value"][0]["properties"]["virtualMachineScaleSet"]["id"],
        vmss_id
    );
    assert_eq!(
        page1["value"][0]["properties"]["instanceView"]["statuses"][1]["code"],
        "PowerState/running"
    );
    let (_, page2) = env
        .get_json(page1["nextLink"].as_str().unwrap(), &token)
        .await;
    assert_eq!(page2["value"][0]["name"], "flex_2");
    assert!(page2.get("nextLink").is_none());

    let (status, body) = env
        .get_json(&vms("$expand=instanceView&api-version=2024-07-01"), &token)
        .await;
    assert_eq!((status, error_code(&body)), (400, "InvalidParameter"));
    let (status, body) = env.get_json(&vms("api-version=2024-07-01"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["value"].as_array().unwrap().len(),
        3,
        "only Flexible members are VMs"
    );
}

/// A service-account token as the kubelet would project it.
fn service_account_jwt(overrides: Value) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let mut claims = json!({
        "iss": ISSUER,
        "sub": SA_SUBJECT,
        "aud": ["api://AzureADTokenExchange"],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    });
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(SA_KEY_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn assertion_token(env: &Env, assertion: &str) -> (u16, Value) {
    let resp = env
        .token_response(
            TENANT,
            &[
                ("client_assertion", assertion),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_id", CLIENT),
                ("grant_type", "client_credentials"),
                ("scope", ARM_SCOPE),
            ],
        )
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn workload_identity_assertions_are_verified() {
    let env = Env::start().await;
    let (status, body) = assertion_token(&env, &service_account_jwt(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        env.get(&env.list_url("web", API), Some(token))
            .await
            .status(),
        200
    );

    let now = jsonwebtoken::get_current_timestamp() as i64;
    let cases = [
        (
            json!({"sub": "system:serviceaccount:default:other"}),
            700213,
        ),
        (json!({"aud": ["api://SomethingElse"]}), 700212),
        (json!({"iss": "https://issuer.example.com"}), 700211),
        (
            json!({"exp": now - 600, "iat": now - 4200, "nbf": now - 4200}),
            700024,
        ),
    ];
    for (overrides, code) in cases {
        let (status, body) = assertion_token(&env, &service_account_jwt(overrides.clone())).await;
        assert_eq!(status, 401, "{overrides}: {body}");
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_codes"][0], code, "{overrides}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("No matching federated identity record found")
                || code == 700024
        );
    }

    // Same header and signature, another subject: the signature no longer fits.
    let good = service_account_jwt(json!({}));
    let parts: Vec<&str> = good.split('.').collect();
    let forged_claims = base64_url(&json!({"iss": ISSUER, "sub": SA_SUBJECT, "aud": "api://AzureADTokenExchange", "exp": now + 7200}).to_string());
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    let (status, body) = assertion_token(&env, &forged).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(700027)),
        "{body}"
    );

    let (status, body) = assertion_token(&env, "not-a-jwt").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// A stand-in for the Kubernetes API server's `/openid/v1/jwks`: HTTPS with
/// its own CA, requiring a bearer token.
async fn serve_jwks(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    use axum::http::HeaderMap;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::Arc;

    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/openid/v1/jwks", listener.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/openid/v1/jwks",
        axum::routing::get(|headers: HeaderMap| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some("Bearer sa-reader")
            {
                (axum::http::StatusCode::OK, axum::Json(jwks()))
            } else {
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"kind": "Status"})),
                )
            }
        }),
    );
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });
    let ca_file = dir.join("apiserver-ca.crt");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let token_file = dir.join("reader-token");
    std::fs::write(&token_file, "sa-reader\n").unwrap();
    (url, ca_file, token_file)
}

#[tokio::test]
async fn jwks_can_come_from_an_api_server_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (url, ca_file, token_file) = serve_jwks(dir.path()).await;
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks().to_string()).unwrap();
    let yaml = scenario_yaml().replace(
        &format!("    jwks: {}\n", jwks()),
        &format!(
            "    jwksUrl: {url}\n    jwksCaFile: {}\n    jwksTokenFile: {}\n  - issuer: https://file-issuer.example.com\n    subject: {SA_SUBJECT}\n    tenantId: {TENANT}\n    clientId: {CLIENT}\n    jwksFile: {}\n",
            ca_file.display(),
            token_file.display(),
            jwks_file.display()
        ),
    );
    assert!(yaml.contains("jwksUrl"), "the replacement applied");
    let env = Env::start_with(&yaml).await;
    let (status, body) = assertion_token(&env, &service_account_jwt(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = assertion_token(
        &env,
        &service_account_jwt(json!({"iss": "https://file-issuer.example.com"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Without the reader token the API server refuses, and so does Entra.
    std::fs::write(&token_file, "wrong").unwrap();
    let (status, body) = assertion_token(&env, &service_account_jwt(json!({}))).await;
    assert_eq!(status, 401);
    assert!(
        body["error_description"].as_str().unwrap().contains("401"),
        "{body}"
    );
}

fn azure_options(sim: &SimulatorHandle) -> azure_core::http::ClientOptions {
    use std::sync::Arc;
    let mut cloud = azure_core::cloud::CustomConfiguration::default();
    cloud.authority_host = sim.base_url().to_owned();
    azure_core::http::ClientOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(http_client(
            sim.ca_pem(),
        )))),
        cloud: Some(Arc::new(azure_core::cloud::CloudConfiguration::Custom(
            cloud,
        ))),
        ..Default::default()
    }
}

#[tokio::test]
async fn azure_identity_credentials_work_against_the_simulator() {
    use azure_core::credentials::TokenCredential;
    use azure_identity::{
        ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
        WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
    };
    let env = Env::start().await;

    let credential = ClientSecretCredential::new(
        TENANT,
        CLIENT.to_owned(),
        SECRET.to_owned().into(),
        Some(ClientSecretCredentialOptions {
            client_options: azure_options(&env.sim),
        }),
    )
    .unwrap();
    let token = credential
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("client secret token");
    let resp = env
        .get(&env.list_url("workers", API), Some(token.token.secret()))
        .await;
    assert_eq!(resp.status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, service_account_jwt(json!({}))).unwrap();
    let credential = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: azure_options(&env.sim),
        },
        client_id: Some(CLIENT.to_owned()),
        tenant_id: Some(TENANT.to_owned()),
        token_file_path: Some(token_file),
    }))
    .unwrap();
    let token = credential
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("workload identity token");
    assert_eq!(
        env.get(&env.list_url("workers", API), Some(token.token.secret()))
            .await
            .status(),
        200
    );
}

/// azure_identity 1.0 deserializes `error_description` as a borrowed `&str`,
/// so Entra's CRLF trailer turns an AADSTS error into a JSON error that
/// still quotes the text; without line breaks it reports the HTTP error
/// with its AADSTS code.
#[tokio::test]
async fn azure_identity_sees_entra_errors() {
    use azure_core::credentials::TokenCredential;
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

    for line_breaks in [true, false] {
        let yaml = format!(
            "tokens: {{errorDescriptionLineBreaks: {line_breaks}}}\n{}",
            scenario_yaml()
        );
        let env = Env::start_with(&yaml).await;
        let credential = ClientSecretCredential::new(
            TENANT,
            CLIENT.to_owned(),
            "wrong".to_owned().into(),
            Some(ClientSecretCredentialOptions {
                client_options: azure_options(&env.sim),
            }),
        )
        .unwrap();
        let err = credential
            .get_token(&[ARM_SCOPE], None)
            .await
            .expect_err("wrong secret");
        let text = format!("{err:?} {err}");
        assert!(
            text.contains("AADSTS7000215"),
            "line breaks {line_breaks}: {text}"
        );
        let http_error = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<azure_core::Error>())
            .is_some_and(|e| {
                matches!(
                    e.kind(),
                    azure_core::error::ErrorKind::HttpResponse { error_code: Some(code), .. } if code == "7000215"
                )
            });
        // Pins azure_identity 1.0's behaviour: if this starts failing for
        // `line_breaks == true`, the crate learnt to read Entra's real
        // bodies and the controller can rely on the HTTP error kind.
        assert_eq!(http_error, !line_breaks, "line breaks {line_breaks}: {err}");
    }
}

#[test]
fn every_example_scenario_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/simulator");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text =
            ssw_simulator::scenario::expand_env(&text, |name| Some(format!("https://{name}.test")))
                .unwrap();
        let scenario =
            Scenario::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!scenario.subscriptions.is_empty(), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 5, "{seen} examples");
}

#[tokio::test]
async fn a_thousand_instances_page_in_tens() {
    let yaml = scenario_yaml()
        .replace("generate: {count: 12}", "generate: {count: 1000}")
        .replace("pageSize: 5", "pageSize: 100");
    let env = Env::start_with(&yaml).await;
    let token = env.bearer().await;
    let started = std::time::Instant::now();
    let (items, pages) = env.list_all("workers", &token).await;
    let took = started.elapsed();
    assert_eq!(pages, 10);
    assert_eq!(items.len(), 1000);
    let ids: HashSet<&str> = items
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000);
    let fds: HashSet<u64> = items
        .iter()
        .map(|i| {
            i["properties"]["instanceView"]["platformFaultDomain"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(fds.len(), 5);
    assert!(
        took < Duration::from_secs(10),
        "listing 1000 instances took {took:?}"
    );
}

#[tokio::test]
async fn enforced_budgets_throttle_eager_clients() {
    let yaml = format!(
        "rateLimits: {{enforce: true, scaleSetVm3Min: 3, subscriptionReads: 1000}}\n{}",
        scenario_yaml()
    );
    let env = Env::start_with(&yaml).await;
    let token = env.bearer().await;
    let url = env.list_url("web", API);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let resp = env.get(&url, Some(&token)).await;
        assert_eq!(resp.status(), 200);
        remaining.push(
            resp.headers()["x-ms-ratelimit-remaining-resource"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(
        remaining[2].starts_with("Microsoft.Compute/GetVMScaleSetVM3Min;0,"),
        "{remaining:?}"
    );
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=180).contains(&wait), "{wait}");

    let yaml = format!(
        "rateLimits: {{enforce: true, subscriptionReads: 2, subscriptionReadsPerSecond: 1}}\n{}",
        scenario_yaml()
    );
    let env = Env::start_with(&yaml).await;
    let token = env.bearer().await;
    let url = env.list_url("web", API);
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
    assert_eq!(env.get(&url, Some(&token)).await.status(), 200);
    let (status, body) = env.get_json(&url, &token).await;
    assert_eq!(
        (status, error_code(&body)),
        (429, "SubscriptionRequestsThrottled")
    );
}

#[tokio::test]
async fn http2_and_http1_are_both_served() {
    let env = Env::start().await;
    let resp = env.http.get(env.url("/_sim/healthz")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http1 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(env.sim.ca_pem().as_bytes()).unwrap()])
        .http1_only()
        .build()
        .unwrap();
    let resp = http1.get(env.url("/_sim/healthz")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.text().await.unwrap(), "ok");
    // The certificate names every loopback spelling.
    let localhost = env.sim.base_url().replace("127.0.0.1", "localhost");
    assert_eq!(
        http1
            .get(format!("{localhost}/_sim/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A client that shows redirects instead of following them.
fn no_redirects(ca_pem: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

#[tokio::test]
async fn list_pages_can_redirect_elsewhere() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    let client = no_redirects(env.sim.ca_pem());
    env.fault_workers(&["{redirect: {status: 308, to: 'http://127.0.0.1:9/'}, page: 2}"]);
    let page1: Value = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = page1["nextLink"].as_str().expect("page 1 is served");
    let resp = client.get(next).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 308);
    let next_url = url::Url::parse(next).unwrap();
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!(
            "http://127.0.0.1:9{}?{}",
            next_url.path(),
            next_url.query().unwrap()
        ),
        "the same request, on the other host"
    );
    // Only list pages redirect; the default status is 307.
    env.fault_workers(&["{redirect: {to: 'https://elsewhere.example'}}"]);
    let resp = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    let get = env.url(&format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/workers?api-version={API}"
    ));
    assert_eq!(env.get_json(&get, &token).await.0, 200);

    for bad in [
        "{redirect: {status: 304, to: 'https://a.example'}}",
        "{redirect: {to: 'ftp://a.example'}}",
        "{redirect: {to: 'not a url'}}",
    ] {
        assert!(
            env.sim
                .set_faults(&env.workers(), vec![fault(bad)])
                .is_err(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn next_links_can_carry_user_info_or_never_end() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);

    env.fault_workers(&["{nextLinkUserinfo: {userinfo: 'u:p'}, count: 1}"]);
    let (_, page1) = env.get_json(&url, &token).await;
    let next = url::Url::parse(page1["nextLink"].as_str().unwrap()).unwrap();
    assert_eq!((next.username(), next.password()), ("u", Some("p")));
    assert_eq!(
        next.host_str(),
        url::Url::parse(&url).unwrap().host_str(),
        "on the right host"
    );

    // Every page links on, each with a new skiptoken; after the 12 instances (3 pages),
    // the pages are empty.
    env.fault_workers(&["{endlessPages: {}}"]);
    let mut link = url.clone();
    let mut links = HashSet::new();
    let mut items = 0;
    for _ in 0..6 {
        let (status, page) = env.get_json(&link, &token).await;
        assert_eq!(status, 200);
        items += page["value"].as_array().unwrap().len();
        link = page["nextLink"]
            .as_str()
            .expect("always a nextLink")
            .to_owned();
        assert!(links.insert(link.clone()), "a fresh link every time");
    }
    assert_eq!(items, 12);
}

#[tokio::test]
async fn throttles_can_be_subscription_wide_and_say_anything() {
    let env = Env::start().await;
    let token = env.bearer().await;
    let url = env.list_url("workers", API);
    env.fault_workers(&[
        "{throttle: {retryAfterSeconds: 30, scope: subscription}, count: 1}",
        "{throttle: {retryAfterSeconds: 18446744073709551615, retryAfterHeader: 'Fri, 31 Dec 9999 23:59:59 GMT'}, count: 1}",
    ]);
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "30");
    assert_eq!(
        resp.headers()["x-ms-ratelimit-remaining-subscription-reads"],
        "0"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "SubscriptionRequestsThrottled");
    // No window is kept for a subscription throttle: the next fault fires. A Retry-After
    // beyond any clock does not upset the simulator.
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()["retry-after"],
        "Fri, 31 Dec 9999 23:59:59 GMT"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "OperationNotAllowed");
    let resp = env.get(&url, Some(&token)).await;
    assert_eq!(resp.status(), 429, "its window holds");
}

#[tokio::test]
async fn the_token_endpoint_can_redirect_or_answer_without_a_token() {
    let env = Env::start().await;
    let client = no_redirects(env.sim.ca_pem());
    let fault_url = env.url("/_sim/tokens/fault");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", ARM_SCOPE),
        ])
        .finish();
    let token_url = env.url(&format!("/{TENANT}/oauth2/v2.0/token"));
    let post = || {
        client
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
    };

    let put = |body: &'static str| env.http.put(&fault_url).body(body).send();
    assert_eq!(
        put("{redirect: {status: 308, to: 'https://elsewhere.example:8443'}}")
            .await
            .unwrap()
            .status(),
        204
    );
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"],
        format!("https://elsewhere.example:8443/{TENANT}/oauth2/v2.0/token").as_str()
    );

    assert_eq!(put("{answer: {}}").await.unwrap().status(), 204);
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({}));

    assert_eq!(
        put("{redirect: {status: 200, to: 'https://a.example'}}")
            .await
            .unwrap()
            .status(),
        400
    );
    let stats = env.sim.request_stats();
    assert_eq!(stats.tokens.count, 2);
    assert_eq!(
        stats.recent.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![308, 200]
    );
    assert_eq!(
        env.http.delete(&fault_url).send().await.unwrap().status(),
        204
    );
    assert_eq!(env.secret_token(CLIENT, SECRET).await.status(), 200);

    let from_scenario = Scenario::from_yaml(&format!(
        "tokens: {{fault: {{answer: {{access_token: ''}}}}}}\n{}",
        scenario_yaml()
    ))
    .expect("a token fault in the scenario");
    assert!(from_scenario.tokens.fault.is_some());
}
