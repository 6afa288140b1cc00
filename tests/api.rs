//! The HTTP API, black-box through the real router, on SQLite and PostgreSQL.

use axum::http::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;
use tiaojie_events::metadata::Role;
use tiaojie_events::{GroupId, PartyId};
use tiaojie_projections::on_db;
use tiaojie_tests::*;

/// Method, path, body, headers, expected status.
type Hostile<'a> = (
    &'a str,
    String,
    Vec<u8>,
    Vec<(&'a str, &'a str)>,
    StatusCode,
);

/// A session is planned after the case happened and was accepted: tomorrow.
fn tomorrow() -> String {
    tiaojie_events::Timestamp::from_offset(time::OffsetDateTime::now_utc())
        .plus_days(1)
        .to_canonical()
}

async fn event_count(w: &World) -> i64 {
    on_db!(&w.t.app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap())
}

/// An obstruction opened in 梅园小区, naming `party` as the obstructor of its incident.
fn obstruction(w: &World, party: &str, minutes: i64, police: bool) -> Value {
    let mut body = w.objection("meiyuan");
    body["kind"] = json!("construction_obstruction");
    body["category"] = json!("work.roof");
    body["parties"] = json!([{"party_id": party, "role": "obstructor"}]);
    body["incident"] = json!({"location": "3号楼", "work_item": "work.roof", "obstructing_parties": [party], "work_stopped_minutes": minutes, "police_called": police, "description": "阻止吊车进场"});
    body
}

/// One community's entry in a heat answer.
fn heat_item(heat: &Value, id: &str) -> Value {
    heat["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
        .clone()
}

both!(a_whole_mediation_story, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    // An objection: opened, accepted, session held, agreement, follow-up, closure.
    let opened = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&w.member),
            Some(w.objection("jingfeng-yuan")),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = opened.json["id"].as_str().unwrap().to_string();
    assert_eq!(opened.json["version"], 1);
    assert_eq!(opened.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(
        opened.header("location"),
        Some(format!("/api/v1/cases/{id}"))
    );
    let base = format!("/api/v1/cases/{id}");
    t.call(
        "POST",
        &format!("{base}/acceptance"),
        Some(&w.member),
        Some(json!({})),
    )
    .await
    .expect(StatusCode::OK);
    t.call(
        "POST",
        &format!("{base}/assignment"),
        Some(&w.leader),
        Some(json!({"assignee": w.members[1]})),
    )
    .await
    .expect(StatusCode::OK);
    let s = t
        .call(
            "POST",
            &format!("{base}/sessions"),
            Some(&w.member),
            Some(json!({"scheduled_for": tomorrow(), "location": "社区会议室"})),
        )
        .await
        .expect(StatusCode::OK);
    let sid = s.json["created_id"].as_str().unwrap().to_string();
    t.call(
        "POST",
        &format!("{base}/sessions/{sid}/record"),
        Some(&w.member),
        Some(json!({"attendees": [{"kind": "group_member", "member_id": w.members[0]}, {"kind": "other", "role": "施工单位项目经理"}], "minutes_summary": "双方陈述意见"})),
    )
    .await
    .expect(StatusCode::OK);
    t.call(
        "POST",
        &format!("{base}/agreement"),
        Some(&w.member),
        Some(json!({"session_id": sid, "terms": "分期缴纳"})),
    )
    .await
    .expect(StatusCode::OK);
    t.call(
        "POST",
        &format!("{base}/follow-ups"),
        Some(&w.member),
        Some(json!({"satisfaction": "satisfied"})),
    )
    .await
    .expect(StatusCode::OK);
    // Closing is the leader's; a member is refused.
    t.call(
        "POST",
        &format!("{base}/closure"),
        Some(&w.member),
        Some(json!({"outcome": "resolved_by_agreement"})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let closed = t
        .call(
            "POST",
            &format!("{base}/closure"),
            Some(&w.leader),
            Some(json!({"outcome": "resolved_by_agreement"})),
        )
        .await
        .expect(StatusCode::OK);
    let token = closed.json["consistency_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(closed.json["version"], 8);
    // Nothing happens to a closed case but reopening: a precise 422 in both languages.
    let refused = t
        .call(
            "POST",
            &format!("{base}/notes"),
            Some(&w.member),
            Some(json!({"note": "x"})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.is_problem());
    assert_eq!(refused.json["code"], "case_closed");
    assert!(refused.json["detail"].as_str().unwrap().contains("结案"));
    let view = t
        .call(
            "GET",
            &format!("{base}?consistent_with={token}"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(view.json["status"], "closed");
    assert_eq!(view.json["outcome"], "resolved_by_agreement");
    assert_eq!(view.json["sessions_held"], 1);
    assert_eq!(view.json["version"], 8);
    let history = t
        .call("GET", &format!("{base}/history"), Some(&w.supervisor), None)
        .await
        .expect(StatusCode::OK);
    let types: Vec<&str> = history
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "CaseOpened",
            "CaseAccepted",
            "CaseAssigned",
            "SessionScheduled",
            "SessionHeld",
            "AgreementReached",
            "FollowUpVisitRecorded",
            "CaseClosed"
        ]
    );
    assert_eq!(history.json[7]["role"], "leader");

    // An obstruction with work stoppage, police, escalation.
    let obstructor = register_party_via_api(t, &w.member, "meiyuan", "李建军").await;
    let o = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&w.member),
            Some(obstruction(&w, &obstructor, 180, true)),
        )
        .await
        .expect(StatusCode::CREATED);
    let oid = o.json["id"].as_str().unwrap().to_string();
    let incident = o.json["created_id"].as_str().unwrap().to_string();
    t.call(
        "POST",
        &format!("/api/v1/cases/{oid}/police-interventions"),
        Some(&w.member),
        Some(json!({"incident_id": incident, "police_unit": "古雁派出所", "outcome": "劝离"})),
    )
    .await
    .expect(StatusCode::OK);
    t.call(
        "POST",
        &format!("/api/v1/cases/{oid}/acceptance"),
        Some(&w.member),
        Some(json!({})),
    )
    .await
    .expect(StatusCode::OK);
    let esc = t
        .call(
            "POST",
            &format!("/api/v1/cases/{oid}/escalations"),
            Some(&w.leader),
            Some(json!({"route": "police", "reason": "多次阻挡施工"})),
        )
        .await
        .expect(StatusCode::OK);
    let token = esc.json["consistency_token"].as_str().unwrap().to_string();
    // Heat and audit reflect it.
    let heat = t
        .call(
            "GET",
            &format!("/api/v1/heat/communities?consistent_with={token}"),
            Some(&w.dashboard),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let mei = heat_item(&heat.json, "meiyuan");
    assert_eq!(mei["name_zh"], "梅园小区");
    assert_eq!(mei["district_name_zh"], "南城路片区");
    assert_eq!(mei["incidents"], 1);
    assert_eq!(mei["work_stopped_hours"], 3.0);
    assert_eq!(mei["police_interventions"], 1);
    assert_eq!(mei["escalations"], 1);
    assert_eq!(mei["band"], "amber");
    let quiet = heat_item(&heat.json, "fuyou");
    assert_eq!(quiet["reports"], false);
    assert_eq!(quiet["band"], "no_reports");
    let districts = t
        .call("GET", "/api/v1/heat/districts", Some(&w.dashboard), None)
        .await
        .expect(StatusCode::OK);
    assert!(districts.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name_zh"] == "南城路片区" && d["reports"] == true));
    let audit = t
        .call(
            "GET",
            &format!("/api/v1/audit?case={oid}&ascending=true"),
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let items = audit.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[4]["event_type"], "CaseEscalated");
    assert_eq!(items[4]["role"], "leader");
    assert!(items[1]["summary_zh"]
        .as_str()
        .unwrap()
        .contains("停工3小时"));
    let verify = t
        .call("GET", "/api/v1/audit/verify", Some(&w.supervisor), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(verify.json["ok"], true);
    let daily = t
        .call("GET", "/api/v1/stats/daily", Some(&w.dashboard), None)
        .await
        .expect(StatusCode::OK);
    let incidents: i64 = daily.json["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["incidents"].as_i64().unwrap())
        .sum();
    assert_eq!(incidents, 1);
    let summary = t
        .call("GET", "/api/v1/stats/summary", Some(&w.dashboard), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(summary.json["counts"]["total"], 2);
    assert_eq!(summary.json["counts"]["open"], 1);
    let csv = t
        .call(
            "GET",
            &format!("/api/v1/audit/export?case={oid}"),
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(
        csv.bytes.starts_with("\u{feff}".as_bytes()),
        "UTF-8 BOM first"
    );
    let text = String::from_utf8(csv.bytes.clone()).unwrap();
    assert_eq!(text.lines().count(), 6, "header and five rows");
    let head = text.lines().next().unwrap();
    assert!(
        head.contains("录入时间（UTC+08:00）"),
        "Beijing time by default: {head}"
    );
    assert!(
        head.contains("案号") && head.contains("小区") && head.contains("链哈希"),
        "{head}"
    );
    assert!(
        text.lines().skip(1).any(|l| l.contains("调〔")),
        "rows about cases carry the case number: {text}"
    );
    assert!(
        text.lines()
            .skip(1)
            .all(|l| !l.contains("\"jingfeng-yuan\"") || l.contains("景峰")),
        "communities by name: {text}"
    );
    // In English and UTC on request; a bad zone or language is refused, naming it.
    let en = t
        .call(
            "GET",
            &format!("/api/v1/audit/export?case={oid}&lang=en&tz=UTC"),
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let en = String::from_utf8(en.bytes).unwrap();
    assert!(
        en.lines().next().unwrap().contains("Recorded (UTC)"),
        "{en}"
    );
    let recorded = |csv: &str| -> String {
        csv.lines()
            .nth(1)
            .unwrap()
            .split("\",\"")
            .nth(1)
            .unwrap()
            .to_string()
    };
    let (bj, utc) = (recorded(&text), recorded(&en));
    let parse = |s: &str| {
        time::PrimitiveDateTime::parse(
            s,
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        )
        .unwrap()
    };
    assert_eq!(
        parse(&bj) - parse(&utc),
        time::Duration::hours(8),
        "{bj} vs {utc}"
    );
    for bad in ["tz=Mars", "tz=%2B25:00", "lang=fr"] {
        let r = t
            .call(
                "GET",
                &format!("/api/v1/audit/export?case={oid}&{bad}"),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert!(r.is_problem(), "{bad}");
    }
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    // Lists: members see their group's cases only.
    let mine = t
        .call("GET", "/api/v1/cases?limit=1", Some(&w.member), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(mine.json["items"].as_array().unwrap().len(), 1);
    let next = mine.json["next_cursor"].as_str().unwrap().to_string();
    let page2 = t
        .call(
            "GET",
            &format!("/api/v1/cases?limit=1&cursor={next}"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(page2.json["items"].as_array().unwrap().len(), 1);
    assert!(page2.json["next_cursor"].is_null());
    assert_ne!(
        mine.json["items"][0]["case_id"],
        page2.json["items"][0]["case_id"]
    );
    let theirs = t
        .call("GET", "/api/v1/cases", Some(&w.other_member), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(theirs.json["items"].as_array().unwrap().len(), 0);
    t.call("GET", &base, Some(&w.other_member), None)
        .await
        .expect(StatusCode::FORBIDDEN);
    t.call(
        "POST",
        &format!("{base}/reopening"),
        Some(&w.other_member),
        Some(json!({"reason": "x"})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let escalated = t
        .call(
            "GET",
            "/api/v1/cases?status=escalated&community=meiyuan",
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(escalated.json["items"].as_array().unwrap().len(), 1);
    let found = t
        .call(
            "GET",
            "/api/v1/cases?text=%E5%B1%8B%E9%9D%A2",
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        found.json["items"].as_array().unwrap().len(),
        2,
        "both summaries mention 屋面"
    );
    let _ = &w.admin;
    w.t.stop().await;
});

both!(supervision_orders_are_for_supervisors, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let id = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&w.member),
            Some(w.objection("meiyuan")),
        )
        .await
        .expect(StatusCode::CREATED)
        .json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let respond_by = tiaojie_events::Timestamp::from_offset(time::OffsetDateTime::now_utc())
        .plus_days(10)
        .to_canonical();
    let order = json!({"instructions": "请于5日内报告进展", "respond_by": respond_by});
    t.call(
        "POST",
        &format!("/api/v1/cases/{id}/supervision-orders"),
        Some(&w.member),
        Some(order.clone()),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    t.call(
        "POST",
        &format!("/api/v1/cases/{id}/acceptance"),
        Some(&w.supervisor),
        Some(json!({})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let issued = t
        .call(
            "POST",
            &format!("/api/v1/cases/{id}/supervision-orders"),
            Some(&w.supervisor),
            Some(order),
        )
        .await
        .expect(StatusCode::OK);
    let oid = issued.json["created_id"].as_str().unwrap().to_string();
    let history = t
        .call(
            "GET",
            &format!("/api/v1/cases/{id}/history"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        history.json[1]["event"]["office"], "区委督查室",
        "the office comes from the supervisor's token"
    );
    assert_eq!(history.json[1]["organisation"], "区委督查室");
    t.call(
        "POST",
        &format!("/api/v1/cases/{id}/supervision-orders/{oid}/answer"),
        Some(&w.leader),
        Some(json!({"answer": "已召开调解会"})),
    )
    .await
    .expect(StatusCode::OK);
    t.call(
        "POST",
        &format!("/api/v1/cases/{id}/supervision-orders/{oid}/answer"),
        Some(&w.leader),
        Some(json!({"answer": "再答"})),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    w.t.stop().await;
});

both!(
    idempotency_keys_return_the_first_answer_even_after_a_restart,
    |b| async move {
        let (store, w) = world(b).await;
        let t = &w.t;
        let body = w.objection("jingfeng-yuan").to_string().into_bytes();
        let key = [("idempotency-key", "open-42")];
        let first = t
            .call_with(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(body.clone()),
                &key,
            )
            .await
            .expect(StatusCode::CREATED);
        let before = event_count(&w).await;
        let again = t
            .call_with(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(body.clone()),
                &key,
            )
            .await
            .expect(StatusCode::CREATED);
        assert_eq!(again.json, first.json);
        assert_eq!(again.header("etag"), first.header("etag"));
        assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
        assert_eq!(event_count(&w).await, before, "a repeat writes nothing");
        let mut other = w.objection("jingfeng-yuan");
        other["summary"] = json!("另一件事");
        let clash = t
            .call_with(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(other.to_string().into_bytes()),
                &key,
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(clash.json["code"], "idempotency_key_reused");
        // A refused command is answered the same way again.
        let id = first.json["id"].as_str().unwrap();
        let bad_key = [("idempotency-key", "close-1")];
        let close = json!({"outcome": "resolved_by_agreement"})
            .to_string()
            .into_bytes();
        let r1 = t
            .call_with(
                "POST",
                &format!("/api/v1/cases/{id}/closure"),
                Some(&w.leader),
                Some(close.clone()),
                &bad_key,
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        let r2 = t
            .call_with(
                "POST",
                &format!("/api/v1/cases/{id}/closure"),
                Some(&w.leader),
                Some(close),
                &bad_key,
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r1.json["code"], r2.json["code"]);
        // Keys survive a restart.
        let World { t, member, .. } = w;
        t.stop().await;
        let t2 = TestApp::start(&store, None).await;
        let after = t2
            .call_with("POST", "/api/v1/cases", Some(&member), Some(body), &key)
            .await
            .expect(StatusCode::CREATED);
        assert_eq!(after.json, first.json);
        let n: i64 = on_db!(&t2.app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap());
        assert_eq!(n, before);
        t2.stop().await;
    }
);

both!(if_match_guards_against_lost_updates, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let id = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&w.member),
            Some(w.objection("meiyuan")),
        )
        .await
        .expect(StatusCode::CREATED)
        .json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let note = json!({"note": "第一条"}).to_string().into_bytes();
    let ok = t
        .call_with(
            "POST",
            &format!("/api/v1/cases/{id}/notes"),
            Some(&w.member),
            Some(note.clone()),
            &[("if-match", "\"1\"")],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(ok.header("etag").as_deref(), Some("\"2\""));
    let stale = t
        .call_with(
            "POST",
            &format!("/api/v1/cases/{id}/notes"),
            Some(&w.member),
            Some(note.clone()),
            &[("if-match", "\"1\"")],
        )
        .await
        .expect(StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.json["code"], "version_mismatch");
    t.call_with(
        "POST",
        &format!("/api/v1/cases/{id}/notes"),
        Some(&w.member),
        Some(note),
        &[("if-match", "banana")],
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    let view = t
        .call(
            "GET",
            &format!("/api/v1/cases/{id}?consistent_with=Case:{id}:2"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(view.header("etag").as_deref(), Some("\"2\""));
    w.t.stop().await;
});

both!(reads_can_wait_for_their_own_writes, |b| async move {
    let store = Store::new(b).await;
    let mut s = settings(&store.url);
    s.consistency_wait_ms = 3000;
    // The read side is stopped: writes are stored but not yet projected.
    let t = TestApp::start_with(&store, None, s, false).await;
    let admin = t.token(Role::Admin, None).await;
    let g = t
        .call("POST", "/api/v1/mediation-groups", Some(&admin), Some(json!({"name": "小组", "street_office": "南关街道办事处", "communities": ["defu"], "leader": {"name": "组长", "org_role": "street_office", "organisation": "南关街道办事处"}})))
        .await
        .expect(StatusCode::CREATED);
    let member = t
        .token(
            Role::Member,
            Some(GroupId::parse(g.json["id"].as_str().unwrap()).unwrap()),
        )
        .await;
    let party = register_party_via_api(&t, &member, "defu", "张桂兰").await;
    let opened = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&member),
            Some(objection_naming("defu", &party)),
        )
        .await
        .expect(StatusCode::CREATED);
    let token = opened.json["consistency_token"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = t
        .call("GET", "/api/v1/cases", Some(&member), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        plain.json["items"].as_array().unwrap().len(),
        0,
        "not projected yet"
    );
    // Start the read side a little later; a query that asks to wait sees the write.
    let app = t.app.clone();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let late = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        app.read.spawn(rx)
    });
    let started = std::time::Instant::now();
    let waited = t
        .call(
            "GET",
            &format!("/api/v1/cases?consistent_with={token}"),
            Some(&member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(waited.json["items"].as_array().unwrap().len(), 1);
    let _tasks = late.await.unwrap();
    t.call(
        "GET",
        "/api/v1/cases?consistent_with=nonsense",
        Some(&member),
        None,
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    t.stop().await;
});

// The heat answer keeps its inputs while the read model stands still; a new incident
// moves the checkpoint, and the next answer counts it.
both!(the_heat_answer_follows_new_incidents, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let obstructor = register_party_via_api(t, &w.member, "meiyuan", "李建军").await;
    let o = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&w.member),
            Some(obstruction(&w, &obstructor, 60, false)),
        )
        .await
        .expect(StatusCode::CREATED);
    let oid = o.json["id"].as_str().unwrap().to_string();
    let token = o.json["consistency_token"].as_str().unwrap().to_string();
    for url in [
        format!("/api/v1/heat/communities?consistent_with={token}"),
        "/api/v1/heat/communities".to_string(),
    ] {
        let heat = t
            .call("GET", &url, Some(&w.dashboard), None)
            .await
            .expect(StatusCode::OK);
        let mei = heat_item(&heat.json, "meiyuan");
        assert_eq!(mei["incidents"], 1);
        assert_eq!(mei["repeat_obstructors"], 0);
    }
    let second = t
        .call(
            "POST",
            &format!("/api/v1/cases/{oid}/incidents"),
            Some(&w.member),
            Some(json!({"location": "3号楼", "work_item": "work.roof", "obstructing_parties": [obstructor], "work_stopped_minutes": 30, "description": "再次阻工"})),
        )
        .await
        .expect(StatusCode::OK);
    let token = second.json["consistency_token"]
        .as_str()
        .unwrap()
        .to_string();
    let heat = t
        .call(
            "GET",
            &format!("/api/v1/heat/communities?consistent_with={token}"),
            Some(&w.dashboard),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let mei = heat_item(&heat.json, "meiyuan");
    assert_eq!(mei["incidents"], 2);
    assert_eq!(mei["work_stopped_hours"], 1.5);
    assert_eq!(
        mei["repeat_obstructors"], 1,
        "two incidents make a repeat obstructor"
    );
});

both!(
    a_read_that_cannot_be_consistent_in_time_says_so,
    |b| async move {
        let store = Store::new(b).await;
        let mut s = settings(&store.url);
        s.consistency_wait_ms = 300;
        let t = TestApp::start_with(&store, None, s, false).await;
        let admin = t.token(Role::Admin, None).await;
        let g = t
        .call("POST", "/api/v1/mediation-groups", Some(&admin), Some(json!({"name": "小组", "street_office": "南关街道办事处", "communities": ["defu"], "leader": {"name": "组长", "org_role": "street_office", "organisation": "南关街道办事处"}})))
        .await
        .expect(StatusCode::CREATED);
        let token = g.json["consistency_token"].as_str().unwrap().to_string();
        let r = t
            .call(
                "GET",
                &format!("/api/v1/heat/districts?consistent_with={token}"),
                Some(&admin),
                None,
            )
            .await
            .expect(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.json["code"], "not_yet_consistent");
        t.stop().await;
    }
);

/// Every route, with a body that parses, for the role table and the OpenAPI check.
fn routes(case: &str, group: &str, member: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let c = |s: &str| format!("/api/v1/cases/{case}/{s}");
    let sid = uuid::Uuid::now_v7().to_string();
    vec![
        ("GET", "/api/v1/districts".into(), None),
        ("GET", "/api/v1/communities".into(), None),
        ("GET", "/api/v1/categories".into(), None),
        ("GET", "/api/v1/mediation-groups".into(), None),
        (
            "POST",
            "/api/v1/mediation-groups".into(),
            Some(
                json!({"name": "新小组", "street_office": "南关街道办事处", "communities": ["baxiao"], "leader": {"name": "组长", "org_role": "street_office", "organisation": "南关街道办事处"}}),
            ),
        ),
        (
            "POST",
            format!("/api/v1/mediation-groups/{group}/members"),
            Some(json!({"name": "新成员", "org_role": "enterprise", "organisation": "施工单位"})),
        ),
        (
            "DELETE",
            format!("/api/v1/mediation-groups/{group}/members/{member}"),
            None,
        ),
        (
            "PUT",
            format!("/api/v1/mediation-groups/{group}/leader"),
            Some(json!({"member_id": member})),
        ),
        (
            "PUT",
            format!("/api/v1/mediation-groups/{group}/communities"),
            Some(json!({"add": ["defu"]})),
        ),
        (
            "POST",
            "/api/v1/cases".into(),
            Some(objection_naming(
                "jingfeng-yuan",
                &PartyId::new().to_string(),
            )),
        ),
        ("GET", "/api/v1/cases".into(), None),
        ("GET", format!("/api/v1/cases/{case}"), None),
        ("GET", c("history"), None),
        ("POST", c("acceptance"), Some(json!({}))),
        ("POST", c("assignment"), Some(json!({"assignee": member}))),
        (
            "POST",
            c("parties"),
            Some(json!({"party": {"party_id": PartyId::new().to_string(), "role": "respondent"}})),
        ),
        (
            "POST",
            c("sessions"),
            Some(json!({"scheduled_for": tomorrow(), "location": "会议室"})),
        ),
        (
            "POST",
            c(&format!("sessions/{sid}/record")),
            Some(json!({"attendees": [], "minutes_summary": "纪要"})),
        ),
        (
            "POST",
            c("deadline-extensions"),
            Some(
                json!({"new_due": "2099-01-01T00:00:00Z", "reason": "等待", "consenting_parties": []}),
            ),
        ),
        (
            "POST",
            c("agreement"),
            Some(json!({"session_id": sid, "terms": "协议"})),
        ),
        (
            "POST",
            c("failure"),
            Some(json!({"reason": "分歧", "next_route": "court"})),
        ),
        (
            "POST",
            c("escalations"),
            Some(json!({"route": "police", "reason": "阻工"})),
        ),
        (
            "POST",
            c("incidents"),
            Some(json!({"location": "工地", "work_item": "work.roof", "description": "阻工"})),
        ),
        (
            "POST",
            c("police-interventions"),
            Some(json!({"police_unit": "派出所", "outcome": "劝离"})),
        ),
        (
            "POST",
            c("work-resumptions"),
            Some(json!({"incident_id": sid})),
        ),
        (
            "POST",
            c("follow-ups"),
            Some(json!({"satisfaction": "satisfied"})),
        ),
        (
            "POST",
            c("supervision-orders"),
            Some(json!({"instructions": "督办", "respond_by": "2099-01-01T00:00:00Z"})),
        ),
        (
            "POST",
            c(&format!("supervision-orders/{sid}/answer")),
            Some(json!({"answer": "已办"})),
        ),
        ("POST", c("notes"), Some(json!({"note": "备注"}))),
        (
            "POST",
            c("corrections"),
            Some(
                json!({"corrects_sequence": 1, "field": "summary", "corrected_value": "更正", "reason": "笔误"}),
            ),
        ),
        ("POST", c("withdrawal"), Some(json!({"reason": "撤回"}))),
        (
            "POST",
            c("closure"),
            Some(json!({"outcome": "not_admissible"})),
        ),
        ("POST", c("reopening"), Some(json!({"reason": "重启"}))),
        ("GET", "/api/v1/heat/communities".into(), None),
        ("GET", "/api/v1/heat/districts".into(), None),
        ("GET", "/api/v1/stats/daily".into(), None),
        ("GET", "/api/v1/stats/summary".into(), None),
        ("GET", "/api/v1/audit".into(), None),
        ("GET", "/api/v1/audit/verify".into(), None),
        ("GET", "/api/v1/audit/export".into(), None),
        ("GET", "/api/v1/openapi.json".into(), None),
        ("GET", "/healthz".into(), None),
        ("GET", "/readyz".into(), None),
        ("GET", "/metrics".into(), None),
    ]
}

/// Which roles may use a route: "all" (even without a token), "auth" (any token), or a list.
fn allowed(method: &str, path: &str) -> &'static [&'static str] {
    let tail = path.rsplit('/').next().unwrap_or("");
    match (method, path) {
        (_, "/api/v1/openapi.json" | "/healthz" | "/readyz" | "/metrics") => &[
            "none",
            "member",
            "leader",
            "supervisor",
            "dashboard",
            "admin",
        ],
        ("GET", p)
            if p.starts_with("/api/v1/districts")
                || p.starts_with("/api/v1/communities")
                || p.starts_with("/api/v1/categories") =>
        {
            &["member", "leader", "supervisor", "dashboard", "admin"]
        }
        ("GET", p) if p.starts_with("/api/v1/heat") || p.starts_with("/api/v1/stats") => {
            &["member", "leader", "supervisor", "dashboard", "admin"]
        }
        ("GET", "/api/v1/mediation-groups") => &["member", "leader", "supervisor", "admin"],
        (_, p) if p.starts_with("/api/v1/mediation-groups") => &["admin"],
        ("GET", p) if p.starts_with("/api/v1/audit") => &["supervisor"],
        ("GET", _) => &["member", "leader", "supervisor"],
        ("POST", _) if tail == "supervision-orders" => &["supervisor"],
        ("POST", _) if matches!(tail, "assignment" | "escalations" | "closure" | "reopening") => {
            &["leader"]
        }
        ("POST", _) => &["member", "leader"],
        _ => &[],
    }
}

both!(every_route_against_every_role, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    for role in [
        "none",
        "member",
        "leader",
        "supervisor",
        "dashboard",
        "admin",
    ] {
        // A fresh case and group member for each role, so one role's changes do not decide another's.
        let case = t
            .call(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(w.objection("jingfeng-yuan")),
            )
            .await
            .expect(StatusCode::CREATED)
            .json["id"]
            .as_str()
            .unwrap()
            .to_string();
        let added = t
            .call("POST", &format!("/api/v1/mediation-groups/{}/members", w.group), Some(&w.admin), Some(json!({"name": "临时成员", "org_role": "street_office", "organisation": "南关街道办事处"})))
            .await
            .expect(StatusCode::OK);
        let member = added.json["created_id"].as_str().unwrap().to_string();
        let token = match role {
            "member" => Some(w.member.as_str()),
            "leader" => Some(w.leader.as_str()),
            "supervisor" => Some(w.supervisor.as_str()),
            "dashboard" => Some(w.dashboard.as_str()),
            "admin" => Some(w.admin.as_str()),
            _ => None,
        };
        for (method, path, body) in routes(&case, &w.group.to_string(), &member) {
            let r = t.call(method, &path, token, body).await;
            let ok = allowed(method, &path).contains(&role);
            let what = format!(
                "{role} {method} {path}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
            if ok {
                assert!(
                    r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN,
                    "should be allowed: {what}"
                );
                assert!(
                    r.status != StatusCode::INTERNAL_SERVER_ERROR
                        && r.status != StatusCode::BAD_REQUEST,
                    "a well-formed request: {what}"
                );
            } else if role == "none" {
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
                assert!(r.is_problem(), "{what}");
            } else {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
                assert!(r.is_problem(), "{what}");
            }
        }
    }
    w.t.stop().await;
});

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let doc = serde_json::to_value(tiaojie::http::openapi()).unwrap();
    assert_eq!(doc["openapi"].as_str().unwrap(), "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let id = "ID";
    for (method, path, _) in routes(id, id, id) {
        // Turn concrete paths back into templates.
        let template = path
            .replace("/cases/ID", "/cases/{id}")
            .replace(
                "/mediation-groups/ID/members/ID",
                "/mediation-groups/{id}/members/{member_id}",
            )
            .replace("/mediation-groups/ID", "/mediation-groups/{id}");
        let template = regex_like(&template);
        let op = paths
            .get(&template)
            .unwrap_or_else(|| panic!("{template} is not in the OpenAPI document"));
        let m = method.to_lowercase();
        assert!(
            op.get(&m).is_some(),
            "{method} {template} is not documented"
        );
        if method != "GET" && template.starts_with("/api/v1/cases") {
            let responses = op[&m]["responses"].as_object().unwrap();
            for code in [
                "400", "401", "403", "404", "409", "412", "413", "415", "422", "429", "503",
            ] {
                assert!(
                    responses.contains_key(code),
                    "{method} {template} lacks {code}"
                );
            }
        }
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

fn regex_like(p: &str) -> String {
    // sessions/<uuid>/record and supervision-orders/<uuid>/answer
    let parts: Vec<&str> = p.split('/').collect();
    let mut out = Vec::new();
    for (i, s) in parts.iter().enumerate() {
        if i > 0 && uuid::Uuid::parse_str(s).is_ok() {
            out.push(match parts[i - 1] {
                "sessions" => "{sid}",
                "supervision-orders" => "{oid}",
                _ => "{id}",
            });
        } else {
            out.push(s);
        }
    }
    out.join("/")
}

both!(
    hostile_and_malformed_input_gets_a_4xx_problem_and_changes_nothing,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let id = t
            .call(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(w.objection("meiyuan")),
            )
            .await
            .expect(StatusCode::CREATED)
            .json["id"]
            .as_str()
            .unwrap()
            .to_string();
        let events_before = event_count(&w).await;
        let huge = "长".repeat(70_000);
        let long_key = "k".repeat(201);
        let long = "长".repeat(5_000);
        // Opening a case with one field changed to something hostile.
        let opening_with = |field: &str, value: Value, status: StatusCode| -> Hostile {
            let mut o = w.objection("meiyuan");
            o[field] = value;
            (
                "POST",
                "/api/v1/cases".into(),
                o.to_string().into_bytes(),
                vec![],
                status,
            )
        };
        // A request without a body.
        let bare = |method: &'static str, path: &str, status: StatusCode| -> Hostile {
            (method, path.into(), vec![], vec![], status)
        };
        let mut cases: Vec<Hostile> = vec![
            (
                "POST",
                "/api/v1/cases".into(),
                b"{not json".to_vec(),
                vec![],
                StatusCode::BAD_REQUEST,
            ),
            (
                "POST",
                "/api/v1/cases".into(),
                json!({"kind": 5}).to_string().into_bytes(),
                vec![],
                StatusCode::BAD_REQUEST,
            ),
            opening_with("admin", json!(true), StatusCode::BAD_REQUEST),
            opening_with(
                "community",
                json!("x'; DROP TABLE events; --"),
                StatusCode::BAD_REQUEST,
            ),
            opening_with(
                "category",
                json!("<script>alert(1)</script>"),
                StatusCode::BAD_REQUEST,
            ),
            opening_with("occurred_at", json!("2022-13-45"), StatusCode::BAD_REQUEST),
            opening_with("summary", json!(long), StatusCode::UNPROCESSABLE_ENTITY),
            opening_with("summary", json!(huge), StatusCode::PAYLOAD_TOO_LARGE),
            opening_with(
                "summary",
                json!("a\u{0}b"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "POST",
                "/api/v1/cases".into(),
                {
                    let mut v = b"{\"kind\":\"resident_objection\",\"summary\":\"".to_vec();
                    v.extend([0xff, 0xfe, 0xfd]);
                    v.extend(b"\"}");
                    v
                },
                vec![],
                StatusCode::BAD_REQUEST,
            ),
            (
                "POST",
                "/api/v1/cases".into(),
                w.objection("meiyuan").to_string().into_bytes(),
                vec![("content-type", "text/plain")],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                "POST",
                "/api/v1/cases".into(),
                w.objection("atlantis").to_string().into_bytes(),
                vec![],
                StatusCode::FORBIDDEN,
            ),
            (
                "POST",
                format!("/api/v1/cases/{id}/notes"),
                json!({"note": ["a"]}).to_string().into_bytes(),
                vec![],
                StatusCode::BAD_REQUEST,
            ),
            (
                "POST",
                format!("/api/v1/cases/{id}/notes"),
                json!({"note": "x"}).to_string().into_bytes(),
                vec![("idempotency-key", long_key.as_str())],
                StatusCode::BAD_REQUEST,
            ),
            (
                "POST",
                "/api/v1/cases/1%27%20OR%201=1/notes".into(),
                json!({"note": "x"}).to_string().into_bytes(),
                vec![],
                StatusCode::NOT_FOUND,
            ),
            (
                "POST",
                format!("/api/v1/cases/{}/notes", uuid::Uuid::now_v7()),
                json!({"note": "x"}).to_string().into_bytes(),
                vec![],
                StatusCode::NOT_FOUND,
            ),
            bare(
                "GET",
                "/api/v1/cases?status=open%27;DROP%20TABLE%20events",
                StatusCode::BAD_REQUEST,
            ),
            bare("GET", "/api/v1/cases?limit=abc", StatusCode::BAD_REQUEST),
            bare(
                "GET",
                "/api/v1/cases?cursor=%27%20OR%201=1",
                StatusCode::BAD_REQUEST,
            ),
            bare("GET", "/api/v1/cases?nonsense=1", StatusCode::BAD_REQUEST),
            bare("GET", "/api/v1/nowhere", StatusCode::NOT_FOUND),
            bare("DELETE", "/api/v1/cases", StatusCode::METHOD_NOT_ALLOWED),
        ];
        cases.push(bare(
            "GET",
            "/api/v1/audit?from=yesterday",
            StatusCode::BAD_REQUEST,
        ));
        for (method, path, body, headers, expected) in cases {
            let token = if path.starts_with("/api/v1/audit") {
                &w.supervisor
            } else {
                &w.member
            };
            let body = if body.is_empty() { None } else { Some(body) };
            let r = t
                .call_with(method, &path, Some(token), body, &headers)
                .await;
            assert_eq!(
                r.status,
                expected,
                "{method} {path}: {}",
                String::from_utf8_lossy(&r.bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
            assert!(r.is_problem(), "{method} {path}: not a problem document");
            assert!(r.json["request_id"].is_string());
            let detail = r.json["detail"].as_str().unwrap_or("");
            assert!(
                !detail.to_lowercase().contains("sqlx") && !detail.contains("SELECT"),
                "no internals: {detail}"
            );
        }
        t.call("GET", "/api/v1/cases", None, None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
        t.call("GET", "/api/v1/cases", Some("tj_not_a_real_token"), None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
        assert_eq!(event_count(&w).await, events_before, "nothing was stored");
        let v = t
            .call("GET", "/api/v1/audit/verify", Some(&w.supervisor), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(v.json["ok"], true, "{:?}", v.json);
        w.t.stop().await;
    }
);

both!(readiness_tells_the_truth, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = t.call("GET", "/readyz", None, None).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.json["ready"], true);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {:?}",
            r.json
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // An event this release cannot read (as a newer release might write) stops the read
    // models that need it, at its position. The node stays ready: the write side and the
    // audit trail go on, and readiness names the position and the reason.
    let json = if b == Backend::Postgres {
        "$1::json"
    } else {
        "$1"
    };
    on_db!(&t.app.db, p => {
        sqlx::query(&format!("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('Case', $2, 1, 'Teleported', '1', {json}, '{{}}')"))
            .bind(r#"{"type":"Teleported"}"#).bind(uuid::Uuid::now_v7().to_string()).execute(p).await.unwrap();
    });
    t.app.stores.committed.notify_one();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let failed_at = loop {
        let r = t.call("GET", "/readyz", None, None).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "a stuck read model does not make the node unready: {:?}",
            r.json
        );
        assert_eq!(r.json["ready"], true);
        let stuck = r.json["stuck"].as_array().cloned().unwrap_or_default();
        if let Some(case_status) = stuck
            .iter()
            .find(|p| p["name"] == "case_status" && p["failed_position"].as_i64().is_some())
        {
            assert_eq!(r.json["degraded"], true);
            assert!(case_status["reason"]
                .as_str()
                .unwrap()
                .contains("Teleported"));
            assert!(case_status["failed_position"].as_i64().is_some());
            assert!(
                !stuck.iter().any(|p| p["name"] == "audit_trail"),
                "the audit trail goes on: {stuck:?}"
            );
            break case_status["failed_position"].as_i64().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reported: {:?}",
            r.json
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The write side goes on, and so does the audit trail, past the bad event.
    let opened = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&w.member),
            Some(w.objection("jingfeng-yuan")),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = opened.json["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let a = t
            .call(
                "GET",
                &format!("/api/v1/audit?case={id}"),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        if a.json["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the audit trail stopped: {:?}",
            a.json
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let bad = t
        .call("GET", "/api/v1/audit?limit=500", Some(&w.supervisor), None)
        .await
        .expect(StatusCode::OK);
    assert!(
        bad.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["position"].as_i64() == Some(failed_at)
                && e["summary_zh"]
                    .as_str()
                    .is_some_and(|s| s.contains("无法读取"))),
        "the unreadable event is in the trail, marked: {:?}",
        bad.json
    );
    // The stuck read model stays at the event before it.
    let status = tiaojie_projections::runtime::status(&t.app.db, &t.app.read.projectors)
        .await
        .unwrap()
        .2;
    let cs = status.iter().find(|p| p.name == "case_status").unwrap();
    assert_eq!(cs.failed_position, Some(failed_at));
    assert_eq!(cs.position, failed_at - 1);
    let m = t
        .call("GET", "/metrics", None, None)
        .await
        .expect(StatusCode::OK);
    let text = String::from_utf8(m.bytes).unwrap();
    assert!(text.contains("tiaojie_http_requests_total{method=\"POST\",route=\"/api/v1/mediation-groups\",status=\"201\"}"), "{text}");
    assert!(text.contains("tiaojie_projection_lag_events{projection=\"case_status\"}"));
    assert!(
        text.contains("\ntiaojie_projection_cycles_total "),
        "{text}"
    );
    assert!(
        text.contains("\ntiaojie_projection_cycle_seconds_total "),
        "{text}"
    );
    w.t.stop().await;
});

/// Each app counts its own requests: a request to one app never shows in another's
/// metrics, so an assertion on one app's metrics cannot be met by another test.
#[tokio::test]
async fn metrics_are_counted_per_app() {
    let store_a = Store::new(Backend::Sqlite).await;
    let store_b = Store::new(Backend::Sqlite).await;
    let a = TestApp::start(&store_a, None).await;
    let b = TestApp::start(&store_b, None).await;
    let token = a.token(Role::Supervisor, None).await;
    for _ in 0..3 {
        a.call("GET", "/api/v1/districts", Some(&token), None)
            .await
            .expect(StatusCode::OK);
    }
    let text = |r: Reply| String::from_utf8(r.bytes).unwrap();
    let line =
        "tiaojie_http_requests_total{method=\"GET\",route=\"/api/v1/districts\",status=\"200\"}";
    let ma = text(
        a.call("GET", "/metrics", None, None)
            .await
            .expect(StatusCode::OK),
    );
    assert!(ma.contains(&format!("{line} 3")), "{ma}");
    let mb = text(
        b.call("GET", "/metrics", None, None)
            .await
            .expect(StatusCode::OK),
    );
    assert!(!mb.contains(line), "{mb}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn overload_is_answered_with_429() {
    let store = Store::new(Backend::Sqlite).await;
    let mut s = settings(&store.url);
    s.max_in_flight = 0;
    let t = TestApp::start_with(&store, None, s, false).await;
    let r = t
        .call("GET", "/api/v1/districts", None, None)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json["code"], "overloaded");
    assert!(r.header("retry-after").is_some());
    // Health checks are never shed.
    t.call("GET", "/healthz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_ne!(
        t.call("GET", "/readyz", None, None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    t.stop().await;
}

both!(
    member_cannot_act_outside_the_groups_communities,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let r = t
            .call(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(w.objection("donghai-yuanqu")),
            )
            .await
            .expect(StatusCode::FORBIDDEN);
        assert!(r.is_problem());
        // The admin writes no case, whatever the community.
        t.call(
            "POST",
            "/api/v1/cases",
            Some(&w.admin),
            Some(w.objection("jingfeng-yuan")),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
        // Every event records the token's actor; a body cannot claim another: an actor in
        // the body is an unknown field (400), and headers that name an actor or a role
        // are ignored by a command that succeeds.
        let mut body = w.objection("jingfeng-yuan");
        body["actor_id"] = json!("someone-else");
        t.call("POST", "/api/v1/cases", Some(&w.member), Some(body))
            .await
            .expect(StatusCode::BAD_REQUEST);
        let body = serde_json::to_vec(&w.objection("jingfeng-yuan")).unwrap();
        let created = t
            .call_with(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(body),
                &[
                    ("x-actor-id", "someone-else"),
                    ("x-actor-name", "someone-else"),
                    ("x-role", "admin"),
                    ("x-forwarded-user", "someone-else"),
                    ("x-remote-user", "someone-else"),
                ],
            )
            .await
            .expect(StatusCode::CREATED);
        let case = created.json["id"].as_str().unwrap().to_string();
        let rows: Vec<String> = on_db!(&t.app.db, p => {
            let sql = if b == Backend::Postgres { "SELECT metadata::text FROM events WHERE aggregate_id = $1" } else { "SELECT metadata FROM events WHERE aggregate_id = $1" };
            sqlx::query(sql).bind(&case).fetch_all(p).await.unwrap().into_iter().map(|r| r.get::<String, _>(0)).collect()
        });
        assert!(!rows.is_empty(), "the case's events were not found");
        for m in &rows {
            let m: serde_json::Value = serde_json::from_str(m).unwrap();
            assert_eq!(m["role"], "member", "{m}");
            assert_eq!(m["actor_name"], "test member", "{m}");
            assert_eq!(m["organisation"], "测试单位", "{m}");
            assert!(!m.to_string().contains("someone-else"), "{m}");
        }
        w.t.stop().await;
    }
);

both!(
    group_steps_come_from_their_table_and_a_removal_keeps_its_reason,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let group = w.group.to_string();
        let add = |name: &str| json!({"name": name, "org_role": "street_office", "organisation": "南关街道办事处"});
        let path = format!("/api/v1/mediation-groups/{group}/members");
        let first = t
            .call("POST", &path, Some(&w.admin), Some(add("临时成员甲")))
            .await
            .expect(StatusCode::OK);
        let second = t
            .call("POST", &path, Some(&w.admin), Some(add("临时成员乙")))
            .await
            .expect(StatusCode::OK);
        // Only administrators, checked before the body is read.
        t.call("POST", &path, Some(&w.leader), Some(json!({"nonsense": 1})))
            .await
            .expect(StatusCode::FORBIDDEN);
        // A removal with a reason in its body, and one without a body, as before.
        let member = |a: &tiaojie_tests::Reply| a.json["created_id"].as_str().unwrap().to_string();
        let with_reason = member(&first);
        t.call(
            "DELETE",
            &format!("{path}/{with_reason}"),
            Some(&w.admin),
            Some(json!({"reason": "调离本街道"})),
        )
        .await
        .expect(StatusCode::OK);
        t.call(
            "DELETE",
            &format!("{path}/{}", member(&second)),
            Some(&w.admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
        // A body that does not fit is refused naming its field, and changes nothing.
        let before = event_count(&w).await;
        let r = t
            .call(
                "DELETE",
                &format!("{path}/{with_reason}"),
                Some(&w.admin),
                Some(json!({"reason": 5})),
            )
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(r.json["errors"][0]["field"], "reason", "{:?}", r.json);
        t.call(
            "DELETE",
            &format!("{path}/not-a-member"),
            Some(&w.admin),
            None,
        )
        .await
        .expect(StatusCode::NOT_FOUND);
        assert_eq!(event_count(&w).await, before);
        let reasons: Vec<String> = on_db!(&t.app.db, p => sqlx::query_scalar(
            "SELECT CAST(payload AS TEXT) FROM events WHERE event_type = 'MemberRemoved' ORDER BY sequence"
        ).fetch_all(p).await.unwrap());
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].contains("调离本街道"), "{reasons:?}");
        assert!(!reasons[1].contains("调离本街道"));
        w.t.stop().await;
    }
);
