//! Reporting upward: statistics for a period beside the period before, and Excel exports.

use axum::http::StatusCode;
use serde_json::{json, Value};
use tiaojie_tests::*;

async fn ok(w: &World, path: String, token: &str, body: Value) -> Reply {
    w.t.call("POST", &path, Some(token), Some(body))
        .await
        .expect(StatusCode::OK)
}

/// Opens an objection in 美苑, accepts it and holds a session; answers (id, session).
async fn mediated(w: &World) -> (String, String) {
    let id = open_case_id(&w.t, &w.member, w.objection("meiyuan")).await;
    ok(
        w,
        format!("/api/v1/cases/{id}/acceptance"),
        &w.member,
        json!({}),
    )
    .await;
    let sid = ok(
        w,
        format!("/api/v1/cases/{id}/sessions"),
        &w.member,
        json!({"scheduled_for": w.t.app.now().to_canonical(), "location": "社区会议室"}),
    )
    .await
    .json["created_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        w,
        format!("/api/v1/cases/{id}/sessions/{sid}/record"),
        &w.member,
        json!({"attendees": [{"kind": "group_member", "member_id": w.members[0]}], "minutes_summary": "双方陈述"}),
    )
    .await;
    (id, sid)
}

both!(
    period_statistics_count_from_the_case_list_beside_the_period_before,
    |b| async move {
        let clock = std::sync::Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let t = &w.t;
        // 1 May: three cases come in; one will settle, one fails, one is withdrawn.
        let (settled, sid) = mediated(&w).await;
        ok(
            &w,
            format!("/api/v1/cases/{settled}/agreement"),
            &w.member,
            json!({"session_id": sid, "terms": "分期缴纳"}),
        )
        .await;
        let (failed, _) = mediated(&w).await;
        ok(
            &w,
            format!("/api/v1/cases/{failed}/failure"),
            &w.member,
            json!({"reason": "分歧较大", "next_route": "court"}),
        )
        .await;
        let withdrawn = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        // Two days later the agreement's case closes, and the third is withdrawn.
        clock.advance(time::Duration::days(2));
        ok(
            &w,
            format!("/api/v1/cases/{settled}/closure"),
            &w.leader,
            json!({"outcome": "resolved_by_agreement"}),
        )
        .await;
        ok(
            &w,
            format!("/api/v1/cases/{withdrawn}/withdrawal"),
            &w.member,
            json!({"reason": "已自行协商解决"}),
        )
        .await;
        t.app.read.catch_up().await.unwrap();
        let get = |token: &str, q: &str| {
            let token = token.to_string();
            let q = q.to_string();
            async move {
                t.call(
                    "GET",
                    &format!("/api/v1/stats/period?{q}"),
                    Some(&token),
                    None,
                )
                .await
            }
        };
        let s = get(&w.supervisor, "from=2022-05-01&to=2022-05-31&by=community")
            .await
            .expect(StatusCode::OK);
        let cur = &s.json["total"]["current"];
        assert_eq!(cur["received"], 3, "{}", s.json);
        assert_eq!(cur["accepted"], 2);
        assert_eq!(cur["closed"], 1);
        assert_eq!(cur["resolved_by_agreement"], 1);
        assert_eq!(cur["withdrawn"], 1);
        assert_eq!(cur["failed"], 1);
        assert_eq!(cur["failed_by_route"]["court"], 1);
        assert_eq!(cur["success_rate"], 1.0);
        assert_eq!(cur["on_time_rate"], 1.0);
        assert_eq!(cur["mean_days"], 2.0);
        assert_eq!(s.json["previous_from"], "2022-04-01", "the month before");
        assert_eq!(s.json["previous_to"], "2022-04-30");
        assert_eq!(s.json["total"]["previous"]["received"], 0);
        let rows = s.json["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["key"], "meiyuan");
        assert_eq!(rows[0]["name"], "梅园小区", "named, not a code");
        assert!(!s.json["definitions"].as_array().unwrap().is_empty());
        // The next month compares with this one.
        let next = get(&w.supervisor, "from=2022-06-01&to=2022-06-30")
            .await
            .expect(StatusCode::OK);
        assert_eq!(next.json["total"]["current"]["received"], 0);
        assert_eq!(
            next.json["total"]["previous"]["received"], 3,
            "{}",
            next.json
        );
        // Another group's member sees none of it; a dashboard sees counts, not who holds what.
        let other = get(&w.other_member, "from=2022-05-01&to=2022-05-31")
            .await
            .expect(StatusCode::OK);
        assert_eq!(other.json["total"]["current"]["received"], 0);
        let dash = get(&w.dashboard, "from=2022-05-01&to=2022-05-31&by=kind")
            .await
            .expect(StatusCode::OK);
        assert_eq!(dash.json["total"]["current"]["received"], 3);
        assert_eq!(dash.json["overdue"], json!([]));
        get(&w.admin, "from=2022-05-01&to=2022-05-31")
            .await
            .expect(StatusCode::FORBIDDEN);
        // Bad periods are refused, naming the field.
        let bad = get(&w.supervisor, "from=2022-13-01&to=2022-05-31")
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert!(bad.is_problem());
        get(&w.supervisor, "from=2022-06-01&to=2022-05-31")
            .await
            .expect(StatusCode::BAD_REQUEST);
        get(&w.supervisor, "from=2022-05-01&to=2022-05-31&by=galaxy")
            .await
            .expect(StatusCode::BAD_REQUEST);
        // The same figures as a workbook, and the ledger.
        let x = t
            .call(
                "GET",
                "/api/v1/exports/stats.xlsx?from=2022-05-01&to=2022-05-31",
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(&x.bytes[..2], b"PK", "an xlsx is a zip");
        assert!(x.header("content-type").unwrap().contains("spreadsheetml"));
        assert!(x.header("content-disposition").unwrap().contains(".xlsx"));
        let ledger = t
            .call(
                "GET",
                "/api/v1/exports/cases.xlsx?community=meiyuan",
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(&ledger.bytes[..2], b"PK");
        t.call(
            "GET",
            "/api/v1/exports/cases.xlsx",
            Some(&w.dashboard),
            None,
        )
        .await
        .expect(StatusCode::FORBIDDEN);
        w.t.stop().await;
    }
);
