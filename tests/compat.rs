//! A store written by an earlier release opens with this one: the fixture in
//! `tests/fixtures/store-0.1.0` was written by release 0.1.0 (`serve --demo`). It migrates,
//! its chain verifies, its read models equal a rebuild by this release, its tokens work,
//! and its cases take new commands.

use axum::http::StatusCode;
use serde_json::json;
use tiaojie_tests::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/store-0.1.0");

/// A copy of the fixture in a fresh directory (the fixture itself is never written).
fn copy_fixture() -> (TempDir, String, String) {
    let dir = TempDir::new("tiaojie-compat");
    for f in ["tiaojie.db", "master.key", "demo-tokens.txt"] {
        std::fs::copy(format!("{FIXTURE}/{f}"), dir.0.join(f)).expect("copy the fixture");
    }
    let key = std::fs::read_to_string(dir.0.join("master.key")).unwrap();
    let url = format!("sqlite:{}/tiaojie.db", dir.0.display());
    (dir, url, key.trim().to_string())
}

fn token(dir: &TempDir, role: &str) -> String {
    std::fs::read_to_string(dir.0.join("demo-tokens.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|c| c[0] == role)
        .map(|c| c[3].to_string())
        .unwrap_or_else(|| panic!("no {role} token in the fixture"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_release_0_1_0_opens_verifies_and_works() {
    let (dir, url, key) = copy_fixture();
    let store = Store::existing(&url);
    let mut s = settings(&url);
    s.master_key = Some(key.into());
    let t = TestApp::start_with(&store, None, s, true).await;
    // The chain the old release wrote verifies with this one.
    let v = tiaojie_projections::log::verify(&t.app.db).await.unwrap();
    assert!(v.ok, "{v:?}");
    assert!(v.checked > 100, "{v:?}");
    // The old release's read models equal this release's rebuild of them.
    t.app.read.catch_up().await.unwrap();
    let before = dump_views(&t.app).await;
    let after = rebuild_all(&t.app).await;
    for ((table, a), (_, b)) in before.iter().zip(after.iter()) {
        assert_eq!(a, b, "{table} differs after a rebuild by this release");
    }
    // Its tokens still work, for every role.
    let member = token(&dir, "member");
    let supervisor = token(&dir, "supervisor");
    let dashboard = token(&dir, "dashboard");
    let cases = t
        .call(
            "GET",
            "/api/v1/cases?status=in_mediation,accepted,reported&limit=5",
            Some(&member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let case = cases.json["items"][0]["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    t.call("GET", "/api/v1/audit?limit=5", Some(&supervisor), None)
        .await
        .expect(StatusCode::OK);
    t.call("GET", "/api/v1/heat/districts", Some(&dashboard), None)
        .await
        .expect(StatusCode::OK);
    // Personal data sealed by the old release opens; its history reads.
    let parties = t
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/parties"),
            Some(&member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(parties.json[0]["party"]["visibility"], "clear");
    t.call(
        "GET",
        &format!("/api/v1/cases/{case}/history"),
        Some(&member),
        None,
    )
    .await
    .expect(StatusCode::OK);
    // Its cases take new commands, and the chain still verifies after them.
    t.call(
        "POST",
        &format!("/api/v1/cases/{case}/notes"),
        Some(&member),
        Some(json!({"note": "新版本补充的备注"})),
    )
    .await
    .expect(StatusCode::OK);
    t.app.read.catch_up().await.unwrap();
    let v = tiaojie_projections::log::verify(&t.app.db).await.unwrap();
    assert!(v.ok, "{v:?}");
    t.stop().await;
}
