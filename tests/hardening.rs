//! What a hostile user or an API fuzzer tries, class by class: nothing a caller sends may
//! halt the read side, panic a handler, lead off the site, or read around the masking.
//! Through the real router, on SQLite and PostgreSQL where the store matters.

use axum::http::StatusCode;
use serde_json::{json, Value};
use tiaojie_events::metadata::Role;
use tiaojie_events::PartyId;
use tiaojie_projections::crypto::KeyKind;
use tiaojie_projections::on_db;
use tiaojie_tests::*;

async fn event_count(t: &TestApp) -> i64 {
    on_db!(&t.app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap())
}

async fn open(w: &World, body: Value) -> (String, String) {
    let r =
        w.t.call("POST", "/api/v1/cases", Some(&w.member), Some(body))
            .await
            .expect(StatusCode::CREATED);
    (
        r.json["id"].as_str().unwrap().to_string(),
        r.json["consistency_token"].as_str().unwrap().to_string(),
    )
}

/// A case taken as far as a held session; answers (case id, session id).
async fn case_with_held_session(w: &World) -> (String, String) {
    let t = &w.t;
    let (id, _) = open(w, w.objection("jingfeng-yuan")).await;
    let c = |s: &str| format!("/api/v1/cases/{id}/{s}");
    t.call("POST", &c("acceptance"), Some(&w.member), Some(json!({})))
        .await
        .expect(StatusCode::OK);
    let s = t
        .call(
            "POST",
            &c("sessions"),
            Some(&w.member),
            Some(json!({"scheduled_for": tiaojie_events::Timestamp::from_offset(time::OffsetDateTime::now_utc()).plus_days(1).to_canonical(), "location": "居委会"})),
        )
        .await
        .expect(StatusCode::OK);
    let sid = s.json["created_id"].as_str().unwrap().to_string();
    t.call(
        "POST",
        &c(&format!("sessions/{sid}/record")),
        Some(&w.member),
        Some(json!({"attendees": [{"kind": "group_member", "member_id": w.members[0]}], "minutes_summary": "纪要"})),
    )
    .await
    .expect(StatusCode::OK);
    (id, sid)
}

both!(
    times_outside_their_range_are_refused_and_the_read_side_goes_on,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let before = event_count(t).await;
        for (at, status, code) in [
            // The year -1 once it is in UTC: it was stored, and no projector could read it back.
            (
                "0000-01-01T00:00:00+01:00",
                StatusCode::UNPROCESSABLE_ENTITY,
                "time_out_of_range",
            ),
            (
                "9999-12-31T23:59:59-01:00",
                StatusCode::UNPROCESSABLE_ENTITY,
                "time_out_of_range",
            ),
            (
                "0001-01-01T00:00:00Z",
                StatusCode::UNPROCESSABLE_ENTITY,
                "time_too_early",
            ),
            // Before the programme's start (2021 in the Guyuan reference data).
            (
                "2020-12-31T00:00:00Z",
                StatusCode::UNPROCESSABLE_ENTITY,
                "time_too_early",
            ),
            (
                "9999-12-31T23:59:59Z",
                StatusCode::UNPROCESSABLE_ENTITY,
                "time_in_future",
            ),
            (
                "2022-02-30T00:00:00Z",
                StatusCode::BAD_REQUEST,
                "invalid_body",
            ),
        ] {
            let mut body = w.objection("jingfeng-yuan");
            body["occurred_at"] = json!(at);
            let r = t
                .call("POST", "/api/v1/cases", Some(&w.member), Some(body))
                .await;
            assert_eq!(r.status, status, "{at}: {:?}", r.json);
            assert_eq!(r.json["code"], code, "{at}: {:?}", r.json);
            assert!(r.is_problem());
        }
        assert_eq!(event_count(t).await, before, "nothing was stored");
        // Planned times far out of reach, and time arithmetic at the ends of the range:
        // refused, never a panic (the agreement computes a default follow-up date).
        let (id, sid) = case_with_held_session(&w).await;
        for (path, body) in [
            (
                "agreement",
                json!({"session_id": sid, "terms": "分期缴纳", "agreed_at": "9999-12-31T23:59:59Z"}),
            ),
            (
                "agreement",
                json!({"session_id": sid, "terms": "分期缴纳", "follow_up_due": "9999-12-31T23:59:59.999999Z"}),
            ),
            (
                "deadline-extensions",
                json!({"new_due": "9999-12-31T23:59:59Z", "reason": "等待", "consenting_parties": []}),
            ),
            (
                "sessions",
                json!({"scheduled_for": "9999-12-31T23:59:59Z", "location": "居委会"}),
            ),
        ] {
            let r = t
                .call(
                    "POST",
                    &format!("/api/v1/cases/{id}/{path}"),
                    Some(&w.member),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} {body}: {:?}",
                r.json
            );
        }
        // The read side never stopped: a new case is readable, nothing is stuck.
        let (id, token) = open(&w, w.objection("jingfeng-yuan")).await;
        t.call(
            "GET",
            &format!("/api/v1/cases/{id}?consistent_with={token}"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
        let ready = t
            .call("GET", "/readyz", None, None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(ready.json["degraded"], false, "{:?}", ready.json);
        w.t.stop().await;
    }
);

both!(authorization_comes_before_the_body, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let (id, _) = open(&w, w.objection("jingfeng-yuan")).await;
    // A role that may not run the step is refused before its body is even read.
    for (token, path, body) in [
        (&w.dashboard, "/api/v1/cases".to_string(), b"{}".to_vec()),
        (
            &w.dashboard,
            "/api/v1/cases".to_string(),
            b"not json".to_vec(),
        ),
        (
            &w.dashboard,
            format!("/api/v1/cases/{id}/agreement"),
            br#"{"session_id": "x", "agreed_at": "9999-12-31T23:59:59-01:00"}"#.to_vec(),
        ),
        (
            &w.admin,
            format!("/api/v1/cases/{id}/notes"),
            b"{\"nope\": 1}".to_vec(),
        ),
        (
            &w.member,
            format!("/api/v1/cases/{id}/closure"),
            b"{}".to_vec(),
        ),
        (
            &w.member,
            format!("/api/v1/cases/{id}/supervision-orders"),
            b"[]".to_vec(),
        ),
        (
            &w.supervisor,
            format!("/api/v1/cases/{id}/notes"),
            b"[]".to_vec(),
        ),
        (
            &w.member,
            "/api/v1/mediation-groups".to_string(),
            b"{}".to_vec(),
        ),
        (
            &w.supervisor,
            format!("/api/v1/mediation-groups/{}/members", w.group),
            b"{}".to_vec(),
        ),
        (&w.supervisor, "/api/v1/parties".to_string(), b"{}".to_vec()),
        // Outside the caller's group: refused before the body as well.
        (
            &w.other_member,
            format!("/api/v1/cases/{id}/notes"),
            b"{}".to_vec(),
        ),
    ] {
        let r = t
            .call_with("POST", &path, Some(token), Some(body), &[])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {path}: {:?}", r.json);
        assert!(r.is_problem());
    }
    // 403 before 412: a member of another group learns nothing about the case's version.
    let r = t
        .call_with(
            "POST",
            &format!("/api/v1/cases/{id}/notes"),
            Some(&w.other_member),
            Some(br#"{"note": "x"}"#.to_vec()),
            &[("if-match", "\"999\"")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.json);
    assert!(!String::from_utf8_lossy(&r.bytes).contains("version"));
    w.t.stop().await;
});

#[tokio::test]
async fn no_answer_is_a_500_and_no_redirect_leaves_the_site() {
    let store = Store::new(Backend::Sqlite).await;
    let t = TestApp::start(&store, None).await;
    let (group, _, _, _) = form_group(&t.app, "梅园调解小组", &["meiyuan"]).await;
    let member = t.token(Role::Member, Some(group)).await;
    let hostile = [
        "/%01",
        "/%09/evil.example",
        "/\t/evil.example",
        "//evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%255C%255Cevil.example",
        "https://evil.example/",
        "/%0d%0aSet-Cookie:%20x=1",
    ];
    for back in hostile {
        let r = t
            .call_with(
                "GET",
                &format!("/lang/en?back={}", enc(back)),
                None,
                None,
                &[],
            )
            .await;
        assert!(r.status.is_redirection(), "{back}: {}", r.status);
        assert_eq!(r.header("location").as_deref(), Some("/"), "{back}");
    }
    // Also when the raw query carries the control character itself.
    let r = t
        .call_with("GET", "/lang/en?back=/%01", None, None, &[])
        .await;
    assert_eq!(r.header("location").as_deref(), Some("/"));
    // Signing in with a hostile `next` lands on the role's own page, and never fails.
    for next in hostile {
        let mut b = NoJs::new(&t);
        let page = b.send("GET", "/login", None).await;
        let csrf = hidden(&page.body, "_csrf");
        let r = b
            .send(
                "POST",
                "/login",
                Some(&[("_csrf", &csrf), ("token", &member), ("next", next)]),
            )
            .await;
        assert!(r.status.is_redirection(), "{next}: {}", r.status);
        assert_eq!(r.location, "/desk", "{next}");
    }
    // A same-site path is kept.
    let mut b = NoJs::new(&t);
    let page = b.send("GET", "/login", None).await;
    let csrf = hidden(&page.body, "_csrf");
    let r = b
        .send(
            "POST",
            "/login",
            Some(&[
                ("_csrf", &csrf),
                ("token", &member),
                ("next", "/desk?status=open"),
            ]),
        )
        .await;
    assert_eq!(r.location, "/desk?status=open");
    t.stop().await;
}

both!(unknown_fields_are_refused_at_every_level, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let before = event_count(t).await;
    let party = w.parties["jingfeng-yuan"].clone();
    let mut top = w.objection("jingfeng-yuan");
    top["actor_id"] = json!("someone-else");
    let mut in_party = w.objection("jingfeng-yuan");
    in_party["parties"][0]["name"] = json!("张三");
    let mut in_incident = w.objection("jingfeng-yuan");
    in_incident["kind"] = json!("construction_obstruction");
    in_incident["category"] = json!("work.roof");
    in_incident["incident"] = json!({"location": "3号楼", "work_item": "work.roof", "obstructing_parties": [party], "description": "阻工", "severity": 3});
    for (what, body) in [
        ("top level", top),
        ("parties[0]", in_party),
        ("incident", in_incident),
    ] {
        let r = t
            .call("POST", "/api/v1/cases", Some(&w.member), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.json);
        assert_eq!(r.json["code"], "invalid_body");
    }
    let (id, sid) = case_with_held_session(&w).await;
    let r = t
        .call(
            "POST",
            &format!("/api/v1/cases/{id}/sessions/{sid}/record"),
            Some(&w.member),
            Some(json!({"attendees": [{"kind": "other", "role": "律师", "phone": "13800000000"}], "minutes_summary": "纪要"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "attendees[0]: {:?}",
        r.json
    );
    let r = t
        .call(
            "POST",
            &format!("/api/v1/cases/{id}/parties"),
            Some(&w.member),
            Some(json!({"party": {"party_id": party, "role": "respondent", "phone": "1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "party: {:?}", r.json);
    assert!(event_count(t).await > before);
    w.t.stop().await;
});

#[tokio::test]
async fn page_sizes_and_text_filters_out_of_range_are_refused() {
    let (_s, w) = world(Backend::Sqlite).await;
    let t = &w.t;
    let long = "费".repeat(101);
    for (token, path) in [
        (&w.member, "/api/v1/cases?limit=0".to_string()),
        (&w.member, "/api/v1/cases?limit=-1".to_string()),
        (&w.member, "/api/v1/cases?limit=501".to_string()),
        (&w.member, format!("/api/v1/cases?text={}", enc(&long))),
        (&w.supervisor, "/api/v1/audit?limit=0".to_string()),
        (&w.supervisor, "/api/v1/audit?limit=-5".to_string()),
        (&w.supervisor, "/api/v1/access-log?limit=0".to_string()),
    ] {
        let r = t.call("GET", &path, Some(token), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {:?}", r.json);
        assert!(r.is_problem());
    }
    t.call(
        "GET",
        &format!("/api/v1/cases?limit=500&text={}", enc(&"费".repeat(100))),
        Some(&w.member),
        None,
    )
    .await
    .expect(StatusCode::OK);
    w.t.stop().await;
}

both!(the_masking_cannot_be_walked_around, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let party = w.parties["jingfeng-yuan"].clone();
    let mut body = w.objection("jingfeng-yuan");
    body["summary"] = json!("马秀英（电话13895412345，身份证640402199001011234）反映屋面漏水");
    let (id, token) = open(&w, body).await;
    t.call(
        "POST",
        &format!("/api/v1/cases/{id}/notes"),
        Some(&w.member),
        Some(json!({"note": "已电话联系马秀英"})),
    )
    .await
    .expect(StatusCode::OK);
    // Members see their cases in clear.
    let view = t
        .call(
            "GET",
            &format!("/api/v1/cases/{id}?consistent_with={token}"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(view.json["summary"].as_str().unwrap().contains("马秀英"));
    // A supervisor sees the free text with the party masked, everywhere.
    let sup = |path: String| {
        let t = &w.t;
        let s = w.supervisor.clone();
        async move {
            t.call("GET", &path, Some(&s), None)
                .await
                .expect(StatusCode::OK)
        }
    };
    for r in [
        sup(format!("/api/v1/cases/{id}")).await,
        sup(format!("/api/v1/cases/{id}/history")).await,
        sup("/api/v1/cases?limit=100".to_string()).await,
    ] {
        let text = String::from_utf8_lossy(&r.bytes).to_string();
        for secret in ["马秀英", "13895412345", "640402199001011234"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("马**"), "{text}");
    }
    // A text search cannot confirm what the masking hides.
    let found = sup(format!("/api/v1/cases?text={}", enc("马秀英"))).await;
    assert_eq!(found.json["items"].as_array().unwrap().len(), 0);
    let found = t
        .call(
            "GET",
            &format!("/api/v1/cases?text={}", enc("马秀英")),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(found.json["items"].as_array().unwrap().len(), 1);
    // The web pages too.
    let mut browser = NoJs::new(t);
    browser.sign_in(&w.supervisor).await;
    for path in [format!("/cases/{id}"), format!("/cases/{id}/print")] {
        let page = browser.send("GET", &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("马秀英"), "{path}");
        assert!(!page.body.contains("13895412345"), "{path}");
    }
    // A search by phone number: a supervisor must give a reason, logged with the search.
    let r = t
        .call(
            "GET",
            "/api/v1/parties?phone=13895412345",
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(r.json["detail"].as_str().unwrap().contains("理由"));
    let r = t
        .call(
            "GET",
            &format!(
                "/api/v1/parties?phone=13895412345&reason={}",
                enc("督办核查")
            ),
            Some(&w.supervisor),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.json[0]["data"]["phone"], "138****2345");
    let log = t
        .call("GET", "/api/v1/access-log", Some(&w.supervisor), None)
        .await
        .expect(StatusCode::OK);
    assert!(log
        .json
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "search"
            && e["reason"].as_str().is_some_and(|r| r.contains("督办核查"))));
    // A sweep of guesses is stopped.
    let mut limited = false;
    for n in 0..40 {
        let r = t
            .call(
                "GET",
                &format!("/api/v1/parties?phone=1380000{n:04}&reason=x"),
                Some(&w.supervisor),
                None,
            )
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.header("retry-after").is_some());
            limited = true;
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
    }
    assert!(limited, "a sweep of phone guesses is rate-limited");
    // The right of access: an explicit act with a reason, logged with it.
    let path = format!("/api/v1/parties/{party}/export");
    let r = t
        .call("GET", &path, Some(&w.admin), None)
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.json["code"], "reason_required");
    t.call("GET", &path, Some(&w.supervisor), None)
        .await
        .expect(StatusCode::FORBIDDEN);
    t.call(
        "GET",
        &format!("{path}?reason={}", enc("本人书面申请")),
        Some(&w.admin),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let log = t
        .call("GET", "/api/v1/access-log", Some(&w.supervisor), None)
        .await
        .expect(StatusCode::OK);
    assert!(log
        .json
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "export" && e["reason"] == "本人书面申请" && e["role"] == "admin"));
    w.t.stop().await;
});

#[tokio::test]
async fn waits_cannot_lock_anyone_out() {
    let store = Store::new(Backend::Sqlite).await;
    let mut s = settings(&store.url);
    s.max_in_flight = 4;
    s.consistency_wait_ms = 3000;
    // No read side: nothing ever becomes consistent, so every wait runs its full course.
    let t = std::sync::Arc::new(TestApp::start_with(&store, None, s, false).await);
    let (group, _, _, _) = form_group(&t.app, "梅园调解小组", &["meiyuan"]).await;
    let member = t.token(Role::Member, Some(group)).await;
    let party = register_party(&t.app, "meiyuan", "马秀英").await;
    let opened = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&member),
            Some(objection_naming("meiyuan", &party.to_string())),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = opened.json["id"].as_str().unwrap().to_string();
    let token = opened.json["consistency_token"]
        .as_str()
        .unwrap()
        .to_string();
    // A position past the case's version is answered at once.
    let r = t
        .call(
            "GET",
            &format!("/api/v1/cases?consistent_with=Case:{id}:999"),
            Some(&member),
            None,
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.json["code"], "unknown_write");
    // Real waits take a budget of their own: past it they are refused, while commands,
    // other queries and the health checks go on.
    let waiting = {
        let t = t.clone();
        let member = member.clone();
        let token = token.clone();
        tokio::spawn(async move {
            t.call(
                "GET",
                &format!("/api/v1/cases?consistent_with={token}"),
                Some(&member),
                None,
            )
            .await
            .status
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = t
        .call(
            "GET",
            &format!("/api/v1/cases?consistent_with={token}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(
        second.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        second.json
    );
    t.call("GET", "/api/v1/cases", Some(&member), None)
        .await
        .expect(StatusCode::OK);
    t.call(
        "POST",
        &format!("/api/v1/cases/{id}/notes"),
        Some(&member),
        Some(json!({"note": "备注"})),
    )
    .await
    .expect(StatusCode::OK);
    t.call("GET", "/healthz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(waiting.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn failed_tokens_are_limited_per_address() {
    let store = Store::new(Backend::Sqlite).await;
    let t = TestApp::start(&store, None).await;
    let good = t.token(Role::Supervisor, None).await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    // Without trust in the proxy header, every test call comes from one address.
    let mut refused_at = None;
    for n in 0..30 {
        let r = t
            .call("GET", "/api/v1/audit", Some(&format!("tj_wrong_{n}")), None)
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
            assert_eq!(r.json["code"], "too_many_failures");
            refused_at = Some(n);
            break;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(refused_at, Some(20), "20 failures are allowed, then 429");
    // Past the limit, the address is refused even a good token, until the window ends.
    t.call_with("GET", "/api/v1/audit", Some(&good), None, &from("10.0.0.9"))
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    t.stop().await;
    // Behind a trusted proxy the limit is per forwarded address.
    let store = Store::new(Backend::Sqlite).await;
    let mut s = settings(&store.url);
    s.trust_forwarded_for = true;
    let t = TestApp::start_with(&store, None, s, true).await;
    let good = t.token(Role::Supervisor, None).await;
    for n in 0..21 {
        t.call_with(
            "GET",
            "/api/v1/audit",
            Some(&format!("tj_wrong_{n}")),
            None,
            &from("10.0.0.1"),
        )
        .await;
    }
    t.call_with("GET", "/api/v1/audit", Some(&good), None, &from("10.0.0.1"))
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    t.call_with("GET", "/api/v1/audit", Some(&good), None, &from("10.0.0.2"))
        .await
        .expect(StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn every_answer_says_nosniff_and_personal_answers_are_not_cached() {
    let (_s, w) = world(Backend::Sqlite).await;
    let t = &w.t;
    let (id, _) = open(&w, w.objection("jingfeng-yuan")).await;
    for (token, path) in [
        (None, "/healthz".to_string()),
        (None, "/assets/app.css".to_string()),
        (None, "/assets/app.js".to_string()),
        (None, "/api/v1/openapi.json".to_string()),
        (None, "/login".to_string()),
        (None, "/no/such/page".to_string()),
        (Some(&w.member), format!("/api/v1/cases/{id}")),
        (Some(&w.member), format!("/api/v1/cases/{id}/history")),
        (Some(&w.member), format!("/api/v1/cases/{id}/parties")),
        (Some(&w.member), "/api/v1/cases".to_string()),
        (Some(&w.supervisor), "/api/v1/audit/export".to_string()),
        (Some(&w.supervisor), "/api/v1/access-log".to_string()),
    ] {
        let r = t.call("GET", &path, token.map(|s| s.as_str()), None).await;
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        if !path.starts_with("/assets/") {
            assert_eq!(
                r.header("cache-control").as_deref(),
                Some("no-store"),
                "{path}"
            );
        }
    }
    w.t.stop().await;
}

both!(an_erased_case_takes_no_new_text, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let (id, _) = open(&w, w.objection("jingfeng-yuan")).await;
    assert!(t.app.keys.erase(KeyKind::Case, &id).await.unwrap());
    let before = event_count(t).await;
    for (path, body) in [
        ("notes", json!({"note": "补充说明"})),
        ("acceptance", json!({})),
    ] {
        let r = t
            .call(
                "POST",
                &format!("/api/v1/cases/{id}/{path}"),
                Some(&w.member),
                Some(body),
            )
            .await;
        if path == "notes" {
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.json);
            assert_eq!(r.json["code"], "case_erased");
            assert_eq!(event_count(t).await, before, "nothing was stored");
        } else {
            // A step without free text is still recorded.
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        }
    }
    // Refused again on a repeat, with the same answer.
    let r = t
        .call(
            "POST",
            &format!("/api/v1/cases/{id}/notes"),
            Some(&w.member),
            Some(json!({"note": "补充说明"})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["code"], "case_erased");
    w.t.stop().await;
});

both!(cases_name_registered_parties_only, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    let before = event_count(t).await;
    let r = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&w.member),
            Some(objection_naming(
                "jingfeng-yuan",
                &PartyId::new().to_string(),
            )),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["code"], "unregistered_party");
    assert_eq!(r.json["errors"][0]["field"], "parties");
    assert_eq!(event_count(t).await, before);
    let (id, _) = open(&w, w.objection("jingfeng-yuan")).await;
    t.call(
        "POST",
        &format!("/api/v1/cases/{id}/parties"),
        Some(&w.member),
        Some(json!({"party": {"party_id": PartyId::new(), "role": "respondent"}})),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    // A party registered in another group's community may be named on the case, and the
    // case's own group still sees the case, its parties and its printed file.
    let outsider = w.parties["donghai-yuanqu"].clone();
    t.call(
        "POST",
        &format!("/api/v1/cases/{id}/parties"),
        Some(&w.member),
        Some(json!({"party": {"party_id": outsider, "role": "respondent"}})),
    )
    .await
    .expect(StatusCode::OK);
    let parties = t
        .call(
            "GET",
            &format!("/api/v1/cases/{id}/parties"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let listed = parties.json.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(
        |p| p["party"]["party_id"] == outsider.as_str() && p["party"]["visibility"] == "clear"
    ));
    // ...but not the outsider's record on its own, outside a case of theirs.
    t.call(
        "GET",
        &format!("/api/v1/parties/{outsider}"),
        Some(&w.member),
        None,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let mut browser = NoJs::new(t);
    browser.sign_in(&w.member).await;
    for path in [format!("/cases/{id}"), format!("/cases/{id}/print")] {
        let page = browser.send("GET", &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    }
    w.t.stop().await;
});

#[tokio::test]
async fn a_master_key_that_does_not_fit_is_a_sentence_not_a_500() {
    let store = Store::new(Backend::Sqlite).await;
    let t = TestApp::start(&store, None).await;
    let (group, _, _, _) = form_group(&t.app, "梅园调解小组", &["meiyuan"]).await;
    let _ = group;
    register_party(&t.app, "meiyuan", "马秀英").await;
    let dir = TempDir::new("tiaojie-backup");
    let backup = dir.0.join("backup.db");
    tiaojie::backup::backup(&t.app.db, &backup).await.unwrap();
    t.stop().await;
    let mut wrong = settings(&store.url);
    wrong.master_key = Some(tiaojie_projections::crypto::MasterKey::generate().1.into());
    let err = match tiaojie::app::App::open(
        wrong.clone(),
        std::sync::Arc::new(tiaojie_events::SystemClock),
        Default::default(),
    )
    .await
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a store opened with a master key that does not fit it"),
    };
    assert!(err.contains("master key does not open"), "{err}");
    // A restore checks the key before it replaces anything.
    let target = TempDir::new("tiaojie-restore");
    let mut restore_to = wrong.clone();
    restore_to.database_url = format!("sqlite:{}/tiaojie.db", target.0.display());
    let err = tiaojie::backup::restore(&restore_to, &backup)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("master key does not open"), "{err}");
    assert!(
        !target.0.join("tiaojie.db").exists(),
        "nothing was replaced"
    );
    restore_to.master_key = Some(TEST_MASTER_KEY.into());
    tiaojie::backup::restore(&restore_to, &backup)
        .await
        .unwrap();
    assert!(target.0.join("tiaojie.db").exists());
}

both!(
    a_read_model_that_cannot_apply_an_event_stops_alone,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        // A readable event that two read models cannot apply: a note on a case that was never
        // opened (as a bug or a hand-made row could leave). case_status and community_heat
        // need the case's opening; the audit trail, the daily statistics and the case-party
        // index do not.
        let orphan = uuid::Uuid::now_v7().to_string();
        let payload = r#"{"type":"NoteAdded","note":"x"}"#;
        let meta = r#"{"recorded_at":"2026-01-01T00:00:00.000000Z","role":"member"}"#;
        let cast = if b == Backend::Postgres { "::json" } else { "" };
        on_db!(&t.app.db, p => {
            sqlx::query(&format!("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('Case', $1, 1, 'NoteAdded', '1', $2{cast}, $3{cast})"))
                .bind(&orphan).bind(payload).bind(meta).execute(p).await.unwrap();
        });
        t.app.stores.committed.notify_one();
        // The write side goes on; so do the read models that can.
        let (id, _) = open(&w, w.objection("jingfeng-yuan")).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            // Every stored event (the case just opened too) is in the log before the head
            // is read, so that the head the healthy read models reach includes the case.
            let (_, unlogged) = tiaojie_projections::log::events_pending(&t.app.db)
                .await
                .unwrap();
            let (head, _, list) =
                tiaojie_projections::runtime::status(&t.app.db, &t.app.read.projectors)
                    .await
                    .unwrap();
            let by = |n: &str| list.iter().find(|p| p.name == n).unwrap().clone();
            let healthy_caught_up = ["audit_trail", "daily_stats", "case_parties"]
                .iter()
                .all(|n| by(n).position == head && by(n).last_error.is_none());
            let stuck = ["case_status", "community_heat"]
                .iter()
                .all(|n| by(n).failed_position.is_some());
            if healthy_caught_up && stuck && head > 0 && unlogged == 0 {
                for n in ["case_status", "community_heat"] {
                    let p = by(n);
                    assert_eq!(p.position, p.failed_position.unwrap() - 1, "{p:?}");
                    assert!(p.last_error.unwrap().contains("position"));
                }
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{head}: {list:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let audit = t
            .call(
                "GET",
                &format!("/api/v1/audit?case={id}"),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(audit.json["items"].as_array().unwrap().len(), 1);
        // Readiness: still ready (the write side works), degraded, naming both.
        let r = t
            .call("GET", "/readyz", None, None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(r.json["degraded"], true);
        let names: Vec<&str> = r.json["stuck"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"case_status") && names.contains(&"community_heat"));
        assert!(!names.contains(&"audit_trail"), "{names:?}");
        w.t.stop().await;
    }
);

// Requests cut off half-way (a client that disconnects, a time-out) must not leave a pooled
// connection inside a transaction nothing will end: sqlx's PostgreSQL `begin` is not
// cancel-safe (transact-rs/sqlx#4393), so transactions are begun, and writes run, in tasks
// of their own.
both!(
    writes_cut_off_half_way_leave_no_connection_inside_a_transaction,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let mut cut = 0;
        for i in 0..300u64 {
            let call = t.call(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(w.objection("meiyuan")),
            );
            let wait = std::time::Duration::from_micros(100 + (i % 30) * 100);
            if tokio::time::timeout(wait, call).await.is_err() {
                cut += 1;
            }
        }
        assert!(cut > 0, "no request was cut off; the test proves nothing");
        // Every write that was cut off either committed or not; none is left open. The read
        // side's own transactions pass through "idle in transaction" between statements,
        // and a queued ROLLBACK is sent a moment late on a busy machine: a leaked
        // transaction is one that is still there after 5 s of quiet.
        if matches!(b, Backend::Postgres) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let open = loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let open: i64 = on_db!(&t.app.db, p => sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()
                       AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                ).fetch_one(p).await.unwrap());
                if open == 0 || std::time::Instant::now() > deadline {
                    break open;
                }
            };
            assert_eq!(open, 0, "a pooled connection was left inside a transaction");
        }
        // The store goes on: new cases are opened, read back, and the chain verifies.
        for _ in 0..20 {
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
            t.call("GET", &format!("/api/v1/cases/{id}"), Some(&w.member), None)
                .await
                .expect(StatusCode::OK);
        }
        let v = t
            .call("GET", "/api/v1/audit/verify", Some(&w.supervisor), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(v.json["ok"], true, "{:?}", v.json);
        w.t.stop().await;
    }
);
