//! A store written by an earlier release opens with this one: the fixture in
//! `tests/fixtures/store-0.1.0` was written by release 0.1.0 (`serve --demo`). It migrates,
//! its chain verifies, its read models equal a rebuild by this release, its tokens work,
//! and its cases take new commands.

use axum::http::StatusCode;
use serde_json::json;
use tiaojie_tests::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/store-0.1.0");
/// Written by main at a04e197, the last commit before accounts.
const BEFORE_ACCOUNTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/store-a04e197");

/// A copy of the fixture in a fresh directory (the fixture itself is never written).
fn copy_fixture() -> (TempDir, String, String) {
    copy_of(FIXTURE)
}

fn copy_of(fixture: &str) -> (TempDir, String, String) {
    let dir = TempDir::new("tiaojie-compat");
    for f in ["tiaojie.db", "master.key", "demo-tokens.txt"] {
        std::fs::copy(format!("{fixture}/{f}"), dir.0.join(f)).expect("copy the fixture");
    }
    let key = std::fs::read_to_string(dir.0.join("master.key")).unwrap();
    let url = format!("sqlite:{}/tiaojie.db", dir.0.display());
    (dir, url, key.trim().to_string())
}

fn token(dir: &TempDir, role: &str) -> String {
    token_line(dir, role)[3].clone()
}

/// The fixture's first token line of a role: role, group, name, token.
fn token_line(dir: &TempDir, role: &str) -> Vec<String> {
    std::fs::read_to_string(dir.0.join("demo-tokens.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .find(|c| c[0] == role)
        .unwrap_or_else(|| panic!("no {role} token in the fixture"))
}

/// A store written before accounts existed opens, verifies and keeps its tokens working;
/// a member's token, tied on opening to the member it names, stops when that member
/// leaves the group; and accounts can be made and signed in with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_accounts_opens_and_its_member_tokens_follow_the_group() {
    use tiaojie_events::metadata::Role;
    let (dir, url, key) = copy_of(BEFORE_ACCOUNTS);
    let store = Store::existing(&url);
    let mut s = settings(&url);
    s.master_key = Some(key.into());
    let t = TestApp::start_with(&store, None, s, true).await;
    let v = tiaojie_projections::log::verify(&t.app.db).await.unwrap();
    assert!(v.ok && v.checked >= 212, "{v:?}");
    t.app.read.catch_up().await.unwrap();
    let before = dump_views(&t.app).await;
    let after = rebuild_all(&t.app).await;
    for ((table, a), (_, b)) in before.iter().zip(after.iter()) {
        assert_eq!(a, b, "{table} differs after a rebuild by this release");
    }
    for role in ["leader", "member", "supervisor"] {
        t.call(
            "GET",
            "/api/v1/cases?limit=5",
            Some(&token(&dir, role)),
            None,
        )
        .await
        .expect(StatusCode::OK);
    }
    // Its cases were numbered by the migration, per group and year, in the order stored.
    let all = t
        .call(
            "GET",
            "/api/v1/cases?limit=100",
            Some(&token(&dir, "supervisor")),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let numbers: std::collections::BTreeSet<String> = all.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["case_number"]
                .as_str()
                .expect("every old case has a number")
                .to_string()
        })
        .collect();
    assert_eq!(numbers.len(), 35, "35 cases, 35 different numbers");
    assert!(
        numbers
            .iter()
            .all(|n| n.contains("调〔") && n.ends_with('号')),
        "{numbers:?}"
    );
    t.call(
        "GET",
        "/api/v1/heat/districts",
        Some(&token(&dir, "dashboard")),
        None,
    )
    .await
    .expect(StatusCode::OK);
    // Its parties were indexed when the store opened: they are found by a name's first
    // character.
    let leader = token(&dir, "leader");
    let found = t
        .call(
            "GET",
            "/api/v1/parties?name=%E5%BC%A0",
            Some(&token(&dir, "supervisor")),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(
        !found.json.as_array().unwrap().is_empty(),
        "张 finds the fixture's residents: {}",
        found.json
    );
    // An agreement recorded as version 1 prints, with the parts it lacks as not recorded.
    let mut agreed = None;
    for c in all.json["items"].as_array().unwrap() {
        let id = c["case_id"].as_str().unwrap();
        let history = t
            .call(
                "GET",
                &format!("/api/v1/cases/{id}/history"),
                Some(&leader),
                None,
            )
            .await;
        if history.status == StatusCode::OK && history.json.to_string().contains("AgreementReached")
        {
            agreed = Some(id.to_string());
            break;
        }
    }
    let agreed = agreed.expect("the demo has an agreement the leader's group handles");
    let mut web = NoJs::new(&t);
    web.sign_in(&leader).await;
    let paper = web
        .send("GET", &format!("/cases/{agreed}/documents/agreement"), None)
        .await;
    assert_eq!(paper.status, StatusCode::OK, "{}", paper.body);
    assert!(paper.body.contains("人民调解协议书") && paper.body.contains("（未记录）"));
    // The member's token acts as the member it names, and ends with their membership.
    let line = token_line(&dir, "member");
    let (group_name, name, member_token) = (&line[1], &line[2], &line[3]);
    let groups = t.app.directory.groups_now().await.unwrap();
    let (gid, state) = groups.iter().find(|(_, g)| &g.name == group_name).unwrap();
    let mid = state
        .members
        .values()
        .find(|m| &m.name == name)
        .unwrap()
        .member_id;
    let admin = t.token(Role::Admin, None).await;
    t.call(
        "DELETE",
        &format!("/api/v1/mediation-groups/{gid}/members/{mid}"),
        Some(&admin),
        None,
    )
    .await
    .expect(StatusCode::OK);
    t.call("GET", "/api/v1/cases?limit=5", Some(member_token), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    t.call(
        "GET",
        "/api/v1/cases?limit=5",
        Some(&token(&dir, "leader")),
        None,
    )
    .await
    .expect(StatusCode::OK);
    // Accounts work on the migrated store.
    account(&t, "admin.new", Role::Admin, None, Some("administer-2026")).await;
    let mut web = NoJs::new(&t);
    assert_eq!(
        web.sign_in_with("admin.new", "administer-2026", None)
            .await
            .location,
        "/admin"
    );
    t.stop().await;
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
    // The case list changed shape in this release: opening rebuilt it, and recorded so.
    let version: i64 = tiaojie_projections::on_db!(&t.app.db, p => {
        sqlx::query_scalar("SELECT schema_version FROM projection_checkpoint WHERE name = 'case_status'")
            .fetch_one(p)
            .await
            .unwrap()
    });
    assert_eq!(version, 2);
    // Its indexes carry the live names: one set, not a second one beside the rebuild's.
    let indexes: Vec<String> = tiaojie_projections::on_db!(&t.app.db, p => {
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'case_status' AND sql IS NOT NULL ORDER BY name")
            .fetch_all(p)
            .await
            .unwrap()
    });
    assert_eq!(
        indexes,
        [
            "ix_case_status_community",
            "ix_case_status_district",
            "ix_case_status_due",
            "ix_case_status_reported",
            "ix_case_status_status"
        ],
    );
    // A read model new in this release (the supervision orders) is built from the old
    // history: one row per order the old store issued, answered ones with their time.
    t.app.read.catch_up().await.unwrap();
    let (issued, answered): (i64, i64) = tiaojie_projections::on_db!(&t.app.db, p => {
        let i: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'SupervisionOrderIssued'")
            .fetch_one(p).await.unwrap();
        let a: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'SupervisionOrderAnswered'")
            .fetch_one(p).await.unwrap();
        (i, a)
    });
    let (rows, done): (i64, i64) = tiaojie_projections::on_db!(&t.app.db, p => {
        let r: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM supervision_orders").fetch_one(p).await.unwrap();
        let d: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM supervision_orders WHERE answered_at IS NOT NULL").fetch_one(p).await.unwrap();
        (r, d)
    });
    assert!(issued > 0, "the fixture has orders to build from");
    assert_eq!((rows, done), (issued, answered));
    // The heat read model gained each obstructor's total: opening rebuilt it, and the
    // totals are the sums of the old per-community rows (the fixture's repeat obstructor
    // among them).
    type PartyCounts = Vec<(String, i64)>;
    let (heat_version, totals, sums): (i64, PartyCounts, PartyCounts) = tiaojie_projections::on_db!(&t.app.db, p => {
        let v: i64 = sqlx::query_scalar("SELECT schema_version FROM projection_checkpoint WHERE name = 'community_heat'")
            .fetch_one(p).await.unwrap();
        let t: Vec<(String, i64)> = sqlx::query_as("SELECT party_id, incidents FROM heat_obstructor_totals ORDER BY party_id")
            .fetch_all(p).await.unwrap();
        let s: Vec<(String, i64)> = sqlx::query_as("SELECT party_id, SUM(incidents) FROM heat_obstructors GROUP BY party_id ORDER BY party_id")
            .fetch_all(p).await.unwrap();
        (v, t, s)
    });
    assert_eq!(heat_version, 2);
    assert_eq!(totals, sums);
    assert!(
        totals.iter().any(|(_, n)| *n >= 3),
        "the fixture has a repeat obstructor: {totals:?}"
    );
    // Escalated and failed cases of the old store now keep the receiving level's clock.
    let waiting = t
        .call(
            "GET",
            "/api/v1/cases?status=escalated,failed&limit=100",
            Some(&token(&dir, "supervisor")),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let waiting = waiting.json["items"].as_array().unwrap().clone();
    assert!(
        !waiting.is_empty(),
        "the fixture has escalated or failed cases"
    );
    for c in &waiting {
        assert_eq!(c["due_kind"], "escalation_reply", "{c}");
    }
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
