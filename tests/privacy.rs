//! Residents' personal data: never in clear in the store, masked by role, every sight
//! logged, erasable without breaking the chain, kept only for the retention period, and
//! its keys rotatable under load.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use tiaojie::demo::{REPRESENTATIVES, RESIDENTS};
use tiaojie_events::metadata::Role;
use tiaojie_events::{GroupId, ManualClock};
use tiaojie_projections::on_db;
use tiaojie_tests::*;

fn pg_bin(tool: &str) -> String {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin").join(tool))
                .filter(|p| p.exists())
                .max()
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| tool.to_string())
}

/// Every byte the store holds: the SQLite files, or a pg_dump of the database.
async fn store_bytes(store: &Store) -> Vec<u8> {
    match store.backend {
        Backend::Sqlite => {
            let path = store.url.trim_start_matches("sqlite:").to_string();
            let mut all = Vec::new();
            for ext in ["", "-wal", "-shm"] {
                if let Ok(b) = std::fs::read(format!("{path}{ext}")) {
                    all.extend(b);
                }
            }
            all
        }
        Backend::Postgres => {
            let out = std::process::Command::new(pg_bin("pg_dump"))
                .arg(format!("--dbname={}", store.url))
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w == n)
}

both!(
    after_the_demo_no_name_or_phone_is_in_clear_in_the_store,
    |b| async move {
        let store = Store::new(b).await;
        let app = open_app(&store, None).await;
        let report = tiaojie::demo::load(&app, false).await.unwrap();
        assert!(
            report.parties >= 40,
            "the demo registers named residents: {report:?}"
        );
        app.read.catch_up().await.unwrap();
        // The sealed free text too: a demo summary never appears as written.
        let summary = "分期缴纳";
        // The demo's scanned agreement is in the store, and holds its marker once opened.
        let (case, aid, sealed): (String, String, Vec<u8>) = tiaojie_projections::on_db!(&app.db, p => {
            sqlx::query_as("SELECT case_id, attachment_id, content FROM attachments")
                .fetch_one(p)
                .await
                .expect("the demo attaches a scan")
        });
        let opened = app
            .keys
            .open_case_bytes(
                &case,
                format!("attachment:{case}:{aid}:content").as_bytes(),
                &sealed,
            )
            .await
            .unwrap()
            .expect("it opens with the case's key");
        assert!(contains(&opened, tiaojie::demo::DEMO_SCAN_MARKER));
        app.db.close().await;
        let bytes = store_bytes(&store).await;
        assert!(bytes.len() > 10_000);
        for (name, phone) in RESIDENTS {
            assert!(!contains(&bytes, name), "{name} is in clear in the store");
            assert!(!contains(&bytes, phone), "{phone} is in clear in the store");
        }
        for (name, phone, _) in REPRESENTATIVES {
            assert!(
                !contains(&bytes, name) && !contains(&bytes, phone),
                "{name} is in clear"
            );
        }
        assert!(
            !contains(&bytes, "居民对电梯加装及屋面改造"),
            "a case summary is in clear"
        );
        assert!(
            !contains(&bytes, tiaojie::demo::DEMO_SCAN_MARKER),
            "an attachment is in clear in the store"
        );
        let _ = summary;
    }
);

struct World {
    t: TestApp,
    admin: String,
    member: String,
    supervisor: String,
    dashboard: String,
    outsider: String,
}

async fn world(store: &Store, clock: Option<Arc<ManualClock>>) -> World {
    let t = TestApp::start(store, clock).await;
    let admin = t.token(Role::Admin, None).await;
    let mk = |communities: serde_json::Value, name: &str| json!({"name": name, "street_office": "南关街道办事处", "communities": communities, "leader": {"name": "组长", "org_role": "street_office", "organisation": "南关街道办事处"}});
    let g = t
        .call(
            "POST",
            "/api/v1/mediation-groups",
            Some(&admin),
            Some(mk(json!(["meiyuan"]), "梅园小组")),
        )
        .await
        .expect(StatusCode::CREATED);
    let o = t
        .call(
            "POST",
            "/api/v1/mediation-groups",
            Some(&admin),
            Some(mk(json!(["defu"]), "德福小组")),
        )
        .await
        .expect(StatusCode::CREATED);
    let gid = GroupId::parse(g.json["id"].as_str().unwrap()).unwrap();
    let oid = GroupId::parse(o.json["id"].as_str().unwrap()).unwrap();
    World {
        member: t.token(Role::Member, Some(gid)).await,
        outsider: t.token(Role::Member, Some(oid)).await,
        supervisor: t.token(Role::Supervisor, None).await,
        dashboard: t.token(Role::Dashboard, None).await,
        admin,
        t,
    }
}

async fn register(w: &World, name: &str, phone: &str) -> String {
    w.t.call(
        "POST",
        "/api/v1/parties",
        Some(&w.member),
        Some(json!({"kind": "resident", "community": "meiyuan", "name": name, "phone": phone, "building": "3号楼", "unit": "2单元", "household": "301"})),
    )
    .await
    .expect(StatusCode::CREATED)
    .json["party_id"]
    .as_str()
    .unwrap()
    .to_string()
}

async fn open_case(w: &World, party: &str) -> String {
    w.t.call(
        "POST",
        "/api/v1/cases",
        Some(&w.member),
        Some(json!({"kind": "resident_objection", "community": "meiyuan", "category": "cause.cost-sharing", "summary": "张建华反映屋面漏水，电话13895412345", "channel": "visit", "parties": [{"party_id": party, "role": "complainant"}]})),
    )
    .await
    .expect(StatusCode::CREATED)
    .json["id"]
    .as_str()
    .unwrap()
    .to_string()
}

both!(
    each_role_sees_what_it_may_and_every_sight_is_logged,
    |b| async move {
        let store = Store::new(b).await;
        let w = world(&store, None).await;
        let t = &w.t;
        let id = register(&w, "张建华", "13895412345").await;
        let case = open_case(&w, &id).await;
        let path = format!("/api/v1/parties/{id}");
        let clear = t
            .call("GET", &path, Some(&w.member), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(clear.json["visibility"], "clear");
        assert_eq!(clear.json["data"]["name"], "张建华");
        assert_eq!(clear.json["data"]["phone"], "13895412345");
        let masked = t
            .call("GET", &path, Some(&w.supervisor), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(masked.json["visibility"], "masked");
        assert_eq!(masked.json["data"]["name"], "张**");
        assert_eq!(masked.json["data"]["phone"], "138****2345");
        assert!(masked.json["data"]["household"].is_null());
        let revealed = t
            .call(
                "GET",
                &format!("{path}?reveal_reason=%E6%A0%B8%E5%AE%9E%E6%8A%95%E8%AF%89"),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(revealed.json["visibility"], "clear");
        assert_eq!(revealed.json["data"]["name"], "张建华");
        t.call("GET", &path, Some(&w.dashboard), None)
            .await
            .expect(StatusCode::FORBIDDEN);
        t.call("GET", &path, Some(&w.admin), None)
            .await
            .expect(StatusCode::FORBIDDEN);
        t.call("GET", &path, Some(&w.outsider), None)
            .await
            .expect(StatusCode::FORBIDDEN);
        // The case's parties, by role.
        let cp = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/parties"),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(cp.json[0]["party"]["data"]["name"], "张**");
        assert_eq!(cp.json[0]["role"], "complainant");
        // Free text is in clear for the group and for supervisors, never for dashboards.
        let v = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert!(v.json["summary"].as_str().unwrap().contains("屋面漏水"));
        // Search by phone and by name, within the caller's communities.
        let found = t
            .call(
                "GET",
                "/api/v1/parties?phone=138-9541-2345",
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(found.json.as_array().unwrap().len(), 1);
        let found = t
            .call(
                "GET",
                "/api/v1/parties?name=%E5%BC%A0%E5%BB%BA%E5%8D%8E",
                Some(&w.outsider),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            found.json.as_array().unwrap().len(),
            0,
            "not in the outsider's communities"
        );
        // Corrections are logged with their reason.
        let fixed = t
            .call(
                "PATCH",
                &path,
                Some(&w.member),
                Some(json!({"phone": "13895400000", "reason": "电话有误"})),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(fixed.json["data"]["phone"], "13895400000");
        t.call(
            "PATCH",
            &path,
            Some(&w.member),
            Some(json!({"name": "110101199003077777"})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
        // The access log: who saw or changed whose data, when and why; supervisors only.
        t.call("GET", "/api/v1/access-log", Some(&w.member), None)
            .await
            .expect(StatusCode::FORBIDDEN);
        let log = t
            .call(
                "GET",
                &format!("/api/v1/access-log?party={id}"),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let actions: Vec<&str> = log
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in ["create", "view", "reveal", "correct"] {
            assert!(actions.contains(&a), "{a} missing from {actions:?}");
        }
        let reveal = log
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "reveal")
            .unwrap();
        assert_eq!(reveal["reason"], "核实投诉");
        assert_eq!(reveal["role"], "supervisor");
        // The right to a copy.
        let export = t
            .call(
                "GET",
                &format!("{path}/export?reason=%E6%9C%AC%E4%BA%BA%E7%94%B3%E8%AF%B7"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert!(export
            .header("content-disposition")
            .unwrap()
            .contains("attachment"));
        assert_eq!(export.json["party"]["data"]["name"], "张建华");
        // Once every read model includes the case's opening, the copy lists the case.
        t.call(
            "GET",
            &format!("/api/v1/cases/{case}?consistent_with=Case:{case}:1"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
        let e = t
            .call(
                "GET",
                &format!("{path}/export?reason=%E6%9C%AC%E4%BA%BA%E7%94%B3%E8%AF%B7"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            e.json["cases"].as_array().map(Vec::len),
            Some(1),
            "{}",
            e.json
        );
        assert_eq!(e.json["cases"][0]["case_id"], case.as_str());
        w.t.stop().await;
    }
);

// A supervisor's case page masks every party the case names when the page is drawn,
// one added after the opening included: the parties come from the case at the page's
// version or later, whether kept in memory or read from the store.
both!(
    a_party_added_later_is_masked_on_the_case_page,
    |b| async move {
        let store = Store::new(b).await;
        let w = world(&store, None).await;
        let t = &w.t;
        let first = register(&w, "李秀英", "13995401122").await;
        let case = open_case(&w, &first).await;
        let page = |token: String| {
            let path = format!("/api/v1/cases/{case}?consistent_with={token}");
            let supervisor = w.supervisor.clone();
            async move {
                t.call("GET", &path, Some(&supervisor), None)
                    .await
                    .expect(StatusCode::OK)
                    .json["summary"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let before = page(format!("Case:{case}:1")).await;
        assert!(before.contains("张建华"), "not a party yet: {before}");
        assert!(
            before.contains("138****2345"),
            "numbers are masked: {before}"
        );
        let second = register(&w, "张建华", "13700001111").await;
        let added = t
            .call(
                "POST",
                &format!("/api/v1/cases/{case}/parties"),
                Some(&w.member),
                Some(json!({"party": {"party_id": second, "role": "respondent"}})),
            )
            .await
            .expect(StatusCode::OK);
        let token = added.json["consistency_token"]
            .as_str()
            .unwrap()
            .to_string();
        let after = page(token.clone()).await;
        assert!(!after.contains("张建华"), "{after}");
        assert!(after.contains("张**反映屋面漏水"), "{after}");
        // A second instance, which never decided on this case, reads it from the store.
        let other = TestApp::start(&store, None).await;
        let path = format!("/api/v1/cases/{case}?consistent_with={token}");
        let elsewhere = other
            .call("GET", &path, Some(&w.supervisor), None)
            .await
            .expect(StatusCode::OK);
        assert!(elsewhere.json["summary"]
            .as_str()
            .unwrap()
            .contains("张**反映屋面漏水"));
        other.stop().await;
        w.t.stop().await;
    }
);

both!(
    erasure_makes_the_data_unreadable_and_keeps_the_chain_and_counts,
    |b| async move {
        let store = Store::new(b).await;
        let w = world(&store, None).await;
        let t = &w.t;
        let id = register(&w, "李秀英", "13995401122").await;
        let case = open_case(&w, &id).await;
        t.app.read.catch_up().await.unwrap();
        let heat_before = t
            .call("GET", "/api/v1/heat/communities", Some(&w.dashboard), None)
            .await
            .expect(StatusCode::OK)
            .json["items"]
            .clone();
        t.call(
            "POST",
            &format!("/api/v1/parties/{id}/erasure"),
            Some(&w.member),
            Some(json!({})),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
        let erased = t
            .call(
                "POST",
                &format!("/api/v1/parties/{id}/erasure"),
                Some(&w.admin),
                Some(json!({"reason": "本人申请删除"})),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(erased.json["erased"], true);
        let v = t
            .call(
                "GET",
                &format!("/api/v1/parties/{id}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(v.json["visibility"], "erased");
        assert_eq!(v.json["data"]["name"], "[已删除 erased]");
        let cp = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/parties"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(cp.json[0]["party"]["visibility"], "erased");
        let found = t
            .call(
                "GET",
                "/api/v1/parties?phone=13995401122",
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(found.json.as_array().unwrap().len(), 0);
        // The record is untouched: the chain verifies; heat and counts are unchanged; the
        // read models rebuild to what they were.
        let v = t
            .call("GET", "/api/v1/audit/verify", Some(&w.supervisor), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(v.json["ok"], true);
        let heat_after = t
            .call("GET", "/api/v1/heat/communities", Some(&w.dashboard), None)
            .await
            .expect(StatusCode::OK)
            .json["items"]
            .clone();
        assert_eq!(heat_before, heat_after);
        let before = dump_views(&t.app).await;
        assert_eq!(before, rebuild_all(&t.app).await);
        let bytes = store_bytes(&store).await;
        assert!(!contains(&bytes, "李秀英") && !contains(&bytes, "13995401122"));
        // An erased party is named on no new case, nor added to one: refused beside the
        // field, and nothing is stored.
        let other = open_case(&w, &register(&w, "周桂兰", "13709512288").await).await;
        let events_before: i64 = on_db!(&t.app.db, p => sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(p)
            .await
            .unwrap());
        let refused = t
            .call(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(json!({"kind": "resident_objection", "community": "meiyuan", "category": "cause.cost-sharing", "summary": "再次反映屋面漏水", "channel": "visit", "parties": [{"party_id": id, "role": "complainant"}]})),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json["code"], "party_erased", "{}", refused.json);
        assert_eq!(refused.json["errors"][0]["field"], "parties");
        let refused = t
            .call(
                "POST",
                &format!("/api/v1/cases/{other}/parties"),
                Some(&w.member),
                Some(json!({"party": {"party_id": id, "role": "respondent"}})),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json["code"], "party_erased", "{}", refused.json);
        let events_after: i64 = on_db!(&t.app.db, p => sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(p)
            .await
            .unwrap());
        assert_eq!(events_before, events_after);
        w.t.stop().await;
    }
);

both!(
    retention_erases_what_is_older_than_the_period,
    |b| async move {
        let store = Store::new(b).await;
        let clock = Arc::new(ManualClock::new(t0()));
        let w = world(&store, Some(clock.clone())).await;
        let t = &w.t;
        let old_party = register(&w, "王志强", "15809547733").await;
        let old_case = open_case(&w, &old_party).await;
        let leader = {
            let groups = t
                .call("GET", "/api/v1/mediation-groups", Some(&w.admin), None)
                .await
                .expect(StatusCode::OK);
            let gid = groups
                .json
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["name"] == "梅园小组")
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            t.token(Role::Leader, Some(GroupId::parse(&gid).unwrap()))
                .await
        };
        t.call(
            "POST",
            &format!("/api/v1/cases/{old_case}/closure"),
            Some(&leader),
            Some(json!({"outcome": "not_admissible"})),
        )
        .await
        .expect(StatusCode::OK);
        // Four years later a new case names someone else.
        clock.advance(time::Duration::days(4 * 365));
        let new_party = register(&w, "刘桂兰", "18095418866").await;
        let new_case = open_case(&w, &new_party).await;
        t.app.read.catch_up().await.unwrap();
        let r = tiaojie::parties::retention(&t.app, 3).await.unwrap();
        assert_eq!((r.cases_erased, r.parties_erased), (1, 1));
        let old = t
            .call(
                "GET",
                &format!("/api/v1/cases/{old_case}/history"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(old.json[0]["event"]["summary"], "[已删除 erased]");
        let new = t
            .call(
                "GET",
                &format!("/api/v1/cases/{new_case}/history"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert!(new.json[0]["event"]["summary"]
            .as_str()
            .unwrap()
            .contains("屋面漏水"));
        assert_eq!(
            t.call(
                "GET",
                &format!("/api/v1/parties/{old_party}"),
                Some(&w.member),
                None
            )
            .await
            .json["visibility"],
            "erased"
        );
        assert_eq!(
            t.call(
                "GET",
                &format!("/api/v1/parties/{new_party}"),
                Some(&w.member),
                None
            )
            .await
            .json["visibility"],
            "clear"
        );
        let log = t
            .call("GET", "/api/v1/access-log", Some(&w.supervisor), None)
            .await
            .expect(StatusCode::OK);
        assert!(log
            .json
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "retention_erase_case"));
        assert_eq!(
            t.call("GET", "/api/v1/audit/verify", Some(&w.supervisor), None)
                .await
                .json["ok"],
            true
        );
        w.t.stop().await;
    }
);

both!(a_key_rotation_under_load_loses_nothing, |b| async move {
    let store = Store::new(b).await;
    let old_key = TEST_MASTER_KEY.to_string();
    let w = world(&store, None).await;
    let mut parties = Vec::new();
    let mut cases = Vec::new();
    for i in 0..5 {
        let p = register(&w, &format!("测试居民{i}"), &format!("1390000000{i}")).await;
        cases.push(open_case(&w, &p).await);
        parties.push(p);
    }
    let member = w.member.clone();
    w.t.stop().await;
    // Restart with a new master key, the old one as previous; write while rotating.
    let (_, new_key) = tiaojie_projections::crypto::MasterKey::generate();
    let mut s = settings(&store.url);
    s.master_key = Some(new_key.clone().into());
    s.previous_master_keys = vec![old_key.into()];
    let t = TestApp::start_with(&store, None, s, true).await;
    let writer = {
        let router = t.router.clone();
        let member = member.clone();
        let case = cases[0].clone();
        tokio::spawn(async move {
            let mut ok = 0;
            for i in 0..60 {
                let req = axum::http::Request::builder()
                    .method("POST")
                    .uri(format!("/api/v1/cases/{case}/notes"))
                    .header("authorization", format!("Bearer {member}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(
                        json!({"note": format!("轮换期间备注{i}")}).to_string(),
                    ))
                    .unwrap();
                let r = tower::ServiceExt::oneshot(router.clone(), req)
                    .await
                    .unwrap();
                if r.status().is_success() {
                    ok += 1;
                }
            }
            ok
        })
    };
    let rotated = t.app.keys.rotate().await.unwrap();
    assert!(
        rotated >= 10,
        "cases, parties and the search key: {rotated}"
    );
    assert_eq!(
        writer.await.unwrap(),
        60,
        "every write during the rotation succeeded"
    );
    t.app.keys.rotate().await.unwrap();
    t.stop().await;
    // With the new key alone, everything opens.
    let mut s = settings(&store.url);
    s.master_key = Some(new_key.into());
    let t = TestApp::start_with(&store, None, s, true).await;
    let usage = t.app.keys.master_usage().await.unwrap();
    assert_eq!(
        usage.len(),
        1,
        "every live key is under the new master key: {usage:?}"
    );
    for (p, c) in parties.iter().zip(&cases) {
        let v = t
            .call("GET", &format!("/api/v1/parties/{p}"), Some(&member), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(v.json["visibility"], "clear");
        let h = t
            .call(
                "GET",
                &format!("/api/v1/cases/{c}/history"),
                Some(&member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert!(
            h.json
                .as_array()
                .unwrap()
                .iter()
                .all(|e| !e["event"].to_string().contains("已删除")),
            "{}",
            h.json
        );
    }
    let h = t
        .call(
            "GET",
            &format!("/api/v1/cases/{}/history", cases[0]),
            Some(&member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(h.json.as_array().unwrap().len(), 61);
    let n: i64 = on_db!(&t.app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'NoteAdded'").fetch_one(p).await.unwrap());
    assert_eq!(n, 60);
    t.stop().await;
});
