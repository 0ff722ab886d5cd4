//! What every topic shares: the test scenario, its principals, and a client for it.

pub use std::collections::HashSet;
pub use std::time::Duration;

pub use serde_json::{Value, json};
pub use ssw_simulator::{
    Fault, InstanceSpec, RequestStats, ScaleSetRef, Scenario, Simulator, SimulatorHandle,
};

pub const TENANT: &str = "11111111-1111-4111-8111-111111111111";

pub const CLIENT: &str = "aaaaaaaa-0000-4000-8000-000000000001";

pub const SECRET: &str = "right-secret";

/// A principal granted no subscription.
pub const OUTSIDER: &str = "bbbbbbbb-0000-4000-8000-000000000002";

pub const SUB: &str = "00000000-0000-4000-8000-000000000001";

/// A subscription of another tenant.
pub const FOREIGN_SUB: &str = "00000000-0000-4000-8000-000000000002";

pub const RG: &str = "rg-test";

pub const API: &str = "2024-07-01";

pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

pub const SA_SUBJECT: &str = "system:serviceaccount:scaleset-watch:controller";

pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// A throwaway RSA key standing in for a Kubernetes service-account signing
/// key (generated for these tests only; it signs nothing else).
pub const SA_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
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
pub const SA_KEY_N: &str = "ra670VBUP8y3M3ZVRTIARlBu7NOuRT4IirAGovHj_o8aoIAAB_UDQukabGB8_W5em_mhekM7svVOVdBiZqGs1sxRhlFPr3wyTd2LPZ63Qh7Ye-cR4X5-UgAYtSWwhLx73FElidmvVzUUwC7jJhTdV7ex83J_C1C_hwmpoCo18r12rh2IkS5-vxh4_eiOAqL0fiUXy0Xbo3v9dd5qDHtY3AGPuxQu6H3nUalam9g0hqda9RqgC8Q9tnNqoLE17pFfK6soKxSSFSE49Oq60T0UupLeLBCWIn9sdq50ucvTuldj0qYadt6_AgNkW70EiyI3grZo8FRseipVx_cAiHimUw";

pub fn jwks() -> Value {
    json!({"keys": [{"use": "sig", "kty": "RSA", "kid": "test-key", "alg": "RS256", "n": SA_KEY_N, "e": "AQAB"}]})
}

pub fn scenario_yaml() -> String {
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

pub fn http_client(ca_pem: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

pub struct Env {
    pub sim: SimulatorHandle,
    pub http: reqwest::Client,
}

impl Env {
    pub async fn start() -> Self {
        Self::start_with(&scenario_yaml()).await
    }

    pub async fn start_with(yaml: &str) -> Self {
        let scenario = Scenario::from_yaml(yaml).expect("test scenario");
        let sim = Simulator::start(scenario, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator starts");
        let http = http_client(sim.ca_pem());
        Self { sim, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub fn list_url(&self, vmss: &str, api: &str) -> String {
        self.url(&format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines?$expand=instanceView&$select=instanceView&api-version={api}"
        ))
    }

    pub async fn token_response(&self, tenant: &str, form: &[(&str, &str)]) -> reqwest::Response {
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

    pub async fn secret_token(&self, client: &str, secret: &str) -> reqwest::Response {
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

    pub async fn bearer(&self) -> String {
        self.bearer_for(CLIENT, SECRET).await
    }

    pub async fn bearer_for(&self, client: &str, secret: &str) -> String {
        let resp = self.secret_token(client, secret).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub async fn get(&self, url: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("ARM request")
    }

    pub async fn get_json(&self, url: &str, token: &str) -> (u16, Value) {
        let resp = self.get(url, Some(token)).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    /// Follows nextLink to the end (at most 50 pages); returns the items and
    /// the number of pages.
    pub async fn list_all(&self, vmss: &str, token: &str) -> (Vec<Value>, usize) {
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

    pub fn workers(&self) -> ScaleSetRef {
        ScaleSetRef::new(SUB, RG, "workers")
    }

    /// Arms the workers scale set with faults, each given in the scenario's YAML.
    pub fn fault_workers(&self, faults: &[&str]) {
        let faults = faults.iter().map(|y| fault(y)).collect();
        self.sim
            .set_faults(&self.workers(), faults)
            .expect("faults set");
    }

    pub async fn admin_stats(&self) -> RequestStats {
        crate::sim_admin::SimAdmin::new(self.sim.base_url(), self.sim.ca_pem())
            .requests()
            .await
    }
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

pub fn instance_by_id<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["instanceId"] == id)
        .unwrap_or_else(|| panic!("no instance {id}"))
}

pub fn fault(yaml: &str) -> Fault {
    yaml_serde::from_str(yaml).expect("fault YAML")
}

/// A client that shows redirects instead of following them.
pub fn no_redirects(ca_pem: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}
