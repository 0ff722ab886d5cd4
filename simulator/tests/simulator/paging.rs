//! The VMSS VM list as ARM pages it: nextLink and $skiptoken, redirects, and links that
//! leave the host, loop, carry user info or never end.

use crate::common::*;

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
