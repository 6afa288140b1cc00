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
        // Each figure leads to the cases behind it, picked by the same rule.
        let behind = |token: &str, q: &str| {
            let (token, q) = (token.to_string(), q.to_string());
            async move {
                t.call(
                    "GET",
                    &format!("/api/v1/stats/cases?{q}"),
                    Some(&token),
                    None,
                )
                .await
            }
        };
        let received = behind(
            &w.supervisor,
            "from=2022-05-01&to=2022-05-31&figure=received",
        )
        .await
        .expect(StatusCode::OK);
        let mut got: Vec<&str> = received
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_id"].as_str().unwrap())
            .collect();
        got.sort();
        let mut want = vec![settled.as_str(), failed.as_str(), withdrawn.as_str()];
        want.sort();
        assert_eq!(got, want, "{}", received.json);
        let resolved = behind(
            &w.leader,
            "from=2022-05-01&to=2022-05-31&by=community&key=meiyuan&figure=resolved_by_agreement",
        )
        .await
        .expect(StatusCode::OK);
        assert_eq!(resolved.json.as_array().unwrap().len(), 1);
        assert_eq!(resolved.json[0]["case_id"], settled.as_str());
        assert_eq!(resolved.json[0]["community_name"], "梅园小区");
        let failed_list = behind(&w.supervisor, "from=2022-05-01&to=2022-05-31&figure=failed")
            .await
            .expect(StatusCode::OK);
        assert_eq!(failed_list.json[0]["case_id"], failed.as_str());
        let none = behind(
            &w.other_member,
            "from=2022-05-01&to=2022-05-31&figure=received",
        )
        .await
        .expect(StatusCode::OK);
        assert_eq!(none.json, json!([]), "another group sees none of them");
        behind(
            &w.dashboard,
            "from=2022-05-01&to=2022-05-31&figure=received",
        )
        .await
        .expect(StatusCode::FORBIDDEN);
        assert!(
            behind(&w.supervisor, "from=2022-05-01&to=2022-05-31&figure=galaxy")
                .await
                .expect(StatusCode::BAD_REQUEST)
                .is_problem()
        );
        // On the page, a figure is a link to its cases.
        let mut sup = NoJs::new(t);
        sup.sign_in(&w.supervisor).await;
        let page = sup
            .send(
                "GET",
                "/stats?from=2022-05-01&to=2022-05-31&by=community",
                None,
            )
            .await;
        let link = "/stats/cases?from=2022-05-01&#38;to=2022-05-31&#38;by=community&#38;key=meiyuan&#38;figure=withdrawn";
        assert!(page.body.contains(link), "{}", page.body);
        let list = sup.send("GET", &link.replace("&#38;", "&"), None).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(
            list.body.contains(&format!("/cases/{withdrawn}")),
            "{}",
            list.body
        );
        assert!(!list.body.contains(&format!("/cases/{settled}")));
        let mut dash = NoJs::new(t);
        dash.sign_in(&w.dashboard).await;
        let counts_only = dash
            .send("GET", "/stats?from=2022-05-01&to=2022-05-31", None)
            .await;
        assert!(
            !counts_only.body.contains("figure-link"),
            "a dashboard sees counts only"
        );
        // The monthly report: May beside April, for the programme or one district.
        let report = sup
            .send("GET", "/reports/monthly?month=2022-05", None)
            .await;
        assert_eq!(report.status, StatusCode::OK, "{}", report.body);
        assert!(report.body.contains("2022年5月"), "{}", report.body);
        assert!(
            report.body.contains("共登记矛盾纠纷3件，较上月增加3件"),
            "{}",
            report.body
        );
        assert!(report.body.contains("调解成功1件"));
        assert!(report.body.contains("梅园小区"), "ranked");
        assert_eq!(
            report.body.matches("<svg class=\"rchart\"").count(),
            3,
            "a chart per theme"
        );
        let nancheng = sup
            .send(
                "GET",
                "/reports/monthly?month=2022-05&district=nanchenglu",
                None,
            )
            .await;
        assert!(
            nancheng.body.contains("共登记矛盾纠纷3件"),
            "梅园 lies in 南城路"
        );
        let north = sup
            .send(
                "GET",
                "/reports/monthly?month=2022-05&district=xiguan-north",
                None,
            )
            .await;
        assert!(north.body.contains("共登记矛盾纠纷0件"), "{}", north.body);
        for bad in [
            "month=2022-13",
            "month=May",
            "month=2022-05&district=atlantis",
        ] {
            let r = sup
                .send("GET", &format!("/reports/monthly?{bad}"), None)
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let mut admin = NoJs::new(t);
        admin.sign_in(&w.admin).await;
        let r = admin
            .send("GET", "/reports/monthly?month=2022-05", None)
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "administrators do not read statistics"
        );
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

/// The count a navigation reminder shows, or None when it is not shown.
fn reminder(html: &str, id: &str) -> Option<i64> {
    let at = html.find(&format!("id=\"remind-{id}\""))?;
    let rest = &html[at..];
    let b = rest.find("<b>")? + 3;
    let e = rest[b..].find("</b>")? + b;
    rest[b..e].trim().parse().ok()
}

fn href_of(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"remind-{id}\"")).expect(id);
    let start = html[..at].rfind("href=\"").expect("href") + 6;
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&amp;", "&").replace("&#38;", "&")
}

both!(
    reminders_count_what_is_due_and_lead_to_the_cases_behind_them,
    |b| async move {
        let clock = std::sync::Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let t = &w.t;
        // Day 0: a case comes in (to be accepted by day 2).
        let late = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        // Day 3: it is overdue. Another comes in (due day 5: soon), and a third is accepted
        // and put under a supervision order to be answered by day 4 (soon, and awaited).
        clock.advance(time::Duration::days(3));
        let fresh = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        let ordered = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        ok(
            &w,
            format!("/api/v1/cases/{ordered}/acceptance"),
            &w.member,
            json!({}),
        )
        .await;
        let order = ok(
            &w,
            format!("/api/v1/cases/{ordered}/supervision-orders"),
            &w.supervisor,
            json!({"instructions": "请于明日报告进展", "respond_by": t.app.now().plus_days(1).to_canonical()}),
        )
        .await
        .json["created_id"]
            .as_str()
            .unwrap()
            .to_string();
        t.app.read.catch_up().await.unwrap();
        let ids = |r: &Reply| {
            let mut v: Vec<String> = r.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["case_id"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        let sorted = |mut v: Vec<&String>| {
            v.sort();
            v.into_iter().cloned().collect::<Vec<_>>()
        };
        let list = |token: &str, q: &str| {
            let (token, q) = (token.to_string(), q.to_string());
            async move {
                t.call("GET", &format!("/api/v1/cases?{q}"), Some(&token), None)
                    .await
            }
        };
        // The list behind each reminder, through the API.
        let soon = list(&w.leader, "due=soon").await.expect(StatusCode::OK);
        assert_eq!(ids(&soon), sorted(vec![&fresh, &ordered]), "{}", soon.json);
        let orders = list(&w.leader, "due=orders").await.expect(StatusCode::OK);
        assert_eq!(ids(&orders), vec![ordered.clone()]);
        let overdue = list(&w.leader, "overdue=true").await.expect(StatusCode::OK);
        assert_eq!(ids(&overdue), vec![late.clone()]);
        let acceptance = list(&w.leader, "due=acceptance")
            .await
            .expect(StatusCode::OK);
        assert_eq!(ids(&acceptance), sorted(vec![&late, &fresh]));
        // A caller who holds no cases as a mediator (a token, not a member's account) has
        // none of "mine"; another group sees none of these.
        let mine = list(&w.member, "mine=true").await.expect(StatusCode::OK);
        assert_eq!(ids(&mine), Vec::<String>::new());
        let other = list(&w.other_member, "due=soon")
            .await
            .expect(StatusCode::OK);
        assert_eq!(ids(&other), Vec::<String>::new());
        let bad = list(&w.leader, "due=tomorrow")
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert!(bad.is_problem());
        assert!(bad.json.to_string().contains("due"), "{}", bad.json);

        // In the navigation: the leader's group's counts, each a link to its list.
        let mut leader = NoJs::new(t);
        leader.sign_in(&w.leader).await;
        let desk = leader.send("GET", "/desk", None).await;
        assert_eq!(reminder(&desk.body, "due-soon"), Some(2), "{}", desk.body);
        assert_eq!(reminder(&desk.body, "overdue"), Some(1));
        assert_eq!(reminder(&desk.body, "orders"), Some(1));
        assert_eq!(
            reminder(&desk.body, "performance"),
            None,
            "nothing to count, not shown"
        );
        let behind = leader
            .send("GET", &href_of(&desk.body, "due-soon"), None)
            .await;
        assert_eq!(behind.status, StatusCode::OK);
        assert!(
            behind.body.contains(&format!("/cases/{fresh}")),
            "{}",
            behind.body
        );
        assert!(behind.body.contains(&format!("/cases/{ordered}")));
        assert!(
            !behind.body.contains(&format!("/cases/{late}\"")),
            "the late case is not due soon"
        );
        assert!(
            behind.body.contains("id=\"narrowed\""),
            "the list says it is narrowed"
        );
        // The daily digest lists each, section by section, with links to the full lists.
        let digest = leader.send("GET", "/digest", None).await;
        assert_eq!(digest.status, StatusCode::OK, "{}", digest.body);
        let section = |id: &str| {
            let at = digest
                .body
                .find(&format!("id=\"digest-{id}\""))
                .unwrap_or_else(|| panic!("{id}: {}", digest.body));
            let end = digest.body[at..].find("</section>").unwrap() + at;
            digest.body[at..end].to_string()
        };
        assert!(section("overdue").contains(&format!("/cases/{late}")));
        assert!(!section("overdue").contains(&format!("/cases/{fresh}")));
        assert!(section("due-soon").contains(&format!("/cases/{fresh}")));
        assert!(section("orders").contains(&format!("/cases/{ordered}")));
        assert!(!section("orders").contains(&format!("/cases/{late}")));
        assert!(section("due-soon").contains("href=\"/desk?due=soon\""));
        let mut dash = NoJs::new(t);
        dash.sign_in(&w.dashboard).await;
        assert_eq!(
            dash.send("GET", "/digest", None).await.status,
            StatusCode::SEE_OTHER
        );
        let bad = leader.send("GET", "/desk?due=tomorrow", None).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        // Answering the order takes it off the reminders.
        ok(
            &w,
            format!("/api/v1/cases/{ordered}/supervision-orders/{order}/answer"),
            &w.member,
            json!({"answer": "已组织调解"}),
        )
        .await;
        t.app.read.catch_up().await.unwrap();
        let desk = leader.send("GET", "/desk", None).await;
        assert_eq!(reminder(&desk.body, "orders"), None, "{}", desk.body);
        // A supervision office: the programme's overdue cases; a wall screen: nothing.
        let mut sup = NoJs::new(t);
        sup.sign_in(&w.supervisor).await;
        let room = sup.send("GET", "/supervision", None).await;
        assert_eq!(reminder(&room.body, "overdue"), Some(1), "{}", room.body);
        assert_eq!(reminder(&room.body, "due-soon"), None);
        assert!(href_of(&room.body, "overdue").starts_with("/supervision?"));
        let d = dash.send("GET", "/dashboard", None).await;
        assert!(!d.body.contains("id=\"reminders\""));
        w.t.stop().await;
    }
);

both!(
    supervision_orders_count_as_issued_and_answered_on_time,
    |b| async move {
        let clock = std::sync::Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let t = &w.t;
        let mut orders = vec![];
        for days in [2, 2, 10] {
            let id = open_case_id(t, &w.member, w.objection("meiyuan")).await;
            ok(
                &w,
                format!("/api/v1/cases/{id}/acceptance"),
                &w.member,
                json!({}),
            )
            .await;
            let order = ok(
                &w,
                format!("/api/v1/cases/{id}/supervision-orders"),
                &w.supervisor,
                json!({"instructions": "请报告进展", "respond_by": t.app.now().plus_days(days).to_canonical()}),
            )
            .await
            .json["created_id"]
                .as_str()
                .unwrap()
                .to_string();
            orders.push((id, order));
        }
        let answer = |i: usize| {
            let (id, order) = orders[i].clone();
            let w = &w;
            async move {
                ok(
                    w,
                    format!("/api/v1/cases/{id}/supervision-orders/{order}/answer"),
                    &w.member,
                    json!({"answer": "已组织调解"}),
                )
                .await;
            }
        };
        // Day 1: the first is answered in time; day 5: the second, late.
        clock.advance(time::Duration::days(1));
        answer(0).await;
        clock.advance(time::Duration::days(4));
        answer(1).await;
        let figures = |q: &'static str| {
            let w = &w;
            async move {
                w.t.app.read.catch_up().await.unwrap();
                w.t.call(
                    "GET",
                    &format!("/api/v1/stats/period?{q}"),
                    Some(&w.supervisor),
                    None,
                )
                .await
                .expect(StatusCode::OK)
                .json
            }
        };
        let s = figures("from=2022-05-01&to=2022-05-31&by=community").await;
        let cur = &s["total"]["current"];
        assert_eq!(cur["orders_issued"], 3, "{s}");
        assert_eq!(cur["orders_answered_on_time"], 1);
        assert_eq!(
            cur["orders_on_time_rate"], 0.5,
            "the running order is left out"
        );
        assert_eq!(
            s["rows"][0]["current"]["orders_issued"], 3,
            "grouped like its case"
        );
        // Day 12: the third is past its date, unanswered.
        clock.advance(time::Duration::days(7));
        let s = figures("from=2022-05-01&to=2022-05-31").await;
        assert_eq!(s["total"]["current"]["orders_on_time_rate"], 0.333, "{s}");
        let june = figures("from=2022-06-01&to=2022-06-30").await;
        assert_eq!(june["total"]["current"]["orders_issued"], 0);
        assert_eq!(june["total"]["previous"]["orders_issued"], 3);
        w.t.stop().await;
    }
);
