//! What the answers look like per orchestration mode and API version: a legacy
//! (2017) Uniform set and a Flexible set as in 2025.

use crate::common::*;

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
