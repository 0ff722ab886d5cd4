//! The admin API under `/_sim/`: changes to instances and faults, and the request counts.

use crate::common::*;

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
