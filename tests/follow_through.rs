//! Following a dispute through: repeat obstructors flagged on the party, the case, the
//! lists and the heat, and warned about when named again; business times that contradict
//! each other refused with a precise code.

use axum::http::StatusCode;
use serde_json::{json, Value};
use tiaojie_tests::*;

/// An obstruction case in a community naming `party` as the obstructor, with its incident.
fn obstruction(community: &str, party: &str, occurred: &str) -> Value {
    json!({
        "kind": "construction_obstruction", "community": community, "category": "work.roof",
        "summary": "居民阻止屋面施工", "channel": "on_site", "occurred_at": occurred,
        "parties": [{"party_id": party, "role": "obstructor"}],
        "incident": {"location": "3号楼", "work_item": "work.roof", "obstructing_parties": [party],
                     "work_stopped_minutes": 210, "police_called": false, "description": "阻止吊车进场"}
    })
}

both!(
    a_repeat_obstructor_is_flagged_wherever_they_appear,
    |b| async move {
        let (_store, w) = world(b).await;
        let t = &w.t;
        let party = register_party_via_api(t, &w.member, "meiyuan", "李建军").await;
        let first = open_case(
            t,
            &w.member,
            obstruction("meiyuan", &party, "2026-04-01T09:00:00+08:00"),
        )
        .await;
        assert!(
            first.json.get("warnings").is_none(),
            "not yet a repeat obstructor: {}",
            first.json
        );
        let token = first.json["consistency_token"]
            .as_str()
            .unwrap()
            .to_string();
        let second = t
            .call(
                "POST",
                &format!("/api/v1/cases?consistent_with={}", enc(&token)),
                Some(&w.member),
                Some(obstruction("meiyuan", &party, "2026-04-08T09:00:00+08:00")),
            )
            .await
            .expect(StatusCode::CREATED);
        let case2 = second.json["id"].as_str().unwrap().to_string();
        let token = second.json["consistency_token"]
            .as_str()
            .unwrap()
            .to_string();
        // The read side has both incidents.
        let seen = t
            .call(
                "GET",
                &format!("/api/v1/parties/{party}?consistent_with={}", enc(&token)),
                Some(&w.member),
                None,
            )
            .await;
        let seen = if seen.status == StatusCode::BAD_REQUEST {
            t.app.read.catch_up().await.unwrap();
            t.call(
                "GET",
                &format!("/api/v1/parties/{party}"),
                Some(&w.member),
                None,
            )
            .await
        } else {
            seen
        }
        .expect(StatusCode::OK);
        assert_eq!(seen.json["obstruction_incidents"], 2, "{}", seen.json);
        assert_eq!(seen.json["repeat_obstructor"], true);
        // Named again, the answer says so.
        let third = open_case(
            t,
            &w.member,
            obstruction("meiyuan", &party, "2026-04-15T09:00:00+08:00"),
        )
        .await;
        let warnings = third.json["warnings"].to_string();
        assert!(warnings.contains("已有2次阻挡施工记录"), "{}", third.json);
        t.app.read.catch_up().await.unwrap();

        // The registry's list, within scope; a supervisor sees it masked.
        let flagged = t
            .call(
                "GET",
                "/api/v1/parties?repeat_obstructor=true",
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let ids: Vec<&str> = flagged
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["party_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [party.as_str()]);
        let none = t
            .call(
                "GET",
                "/api/v1/parties?repeat_obstructor=true",
                Some(&w.other_member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert!(
            none.json.as_array().unwrap().is_empty(),
            "another group's communities"
        );
        let masked = t
            .call(
                "GET",
                "/api/v1/parties?repeat_obstructor=true",
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(masked.json[0]["data"]["name"], "李**");
        assert_eq!(masked.json[0]["repeat_obstructor"], true);

        // The case answer names them; the list filters by them.
        let case = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case2}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            case.json["repeat_obstructors"][0]["party_id"],
            party.as_str()
        );
        assert_eq!(case.json["repeat_obstructors"][0]["incidents"], 3);
        let objection = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        t.app.read.catch_up().await.unwrap();
        let listed = t
            .call(
                "GET",
                "/api/v1/cases?repeat_obstructor=true&limit=50",
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let listed: Vec<&str> = listed.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_id"].as_str().unwrap())
            .collect();
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert!(listed.contains(&case2.as_str()) && !listed.contains(&objection.as_str()));

        // Heat counts them; the group sees who, the supervisor only the count.
        let heat = |token: String| async move {
            let h = t
                .call("GET", "/api/v1/heat/communities", Some(&token), None)
                .await
                .expect(StatusCode::OK);
            h.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == "meiyuan")
                .unwrap()
                .clone()
        };
        let mine = heat(w.member.clone()).await;
        assert_eq!(mine["repeat_obstructors"], 1);
        assert_eq!(
            mine["repeat_obstructor_parties"][0]["party_id"],
            party.as_str()
        );
        let theirs = heat(w.supervisor.clone()).await;
        assert_eq!(theirs["repeat_obstructors"], 1);
        assert!(theirs["repeat_obstructor_parties"]
            .as_array()
            .unwrap()
            .is_empty());

        // The desk filters by them, and the case page says so.
        let mut web = NoJs::new(t);
        web.sign_in(&w.member).await;
        let desk = web.send("GET", "/desk?repeat=1", None).await;
        assert!(
            desk.body.contains(&format!("/cases/{case2}"))
                && !desk.body.contains(&format!("/cases/{objection}"))
        );
        let page = web.send("GET", &format!("/cases/{case2}"), None).await;
        assert!(
            page.body.contains("已有3次阻挡施工记录"),
            "the case page flags the party"
        );
    }
);

both!(
    business_times_that_contradict_each_other_are_refused,
    |b| async move {
        let (_store, w) = world(b).await;
        let t = &w.t;
        let party = register_party_via_api(t, &w.member, "meiyuan", "李建军").await;
        let opened = open_case(
            t,
            &w.member,
            obstruction("meiyuan", &party, "2026-04-01T09:00:00+08:00"),
        )
        .await;
        let id = opened.json["id"].as_str().unwrap().to_string();
        let incident = opened.json["created_id"].as_str().unwrap().to_string();
        let base = format!("/api/v1/cases/{id}");
        let refused = |r: &Reply, field: &str, words: &str| {
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
            assert_eq!(r.json["code"], "time_order", "{}", r.json);
            assert_eq!(r.json["errors"][0]["field"], field, "{}", r.json);
            assert!(
                r.json["detail"].as_str().unwrap().contains(words),
                "{}",
                r.json
            );
        };
        // Work stopped 3.5 hours at 09:00 does not resume at 09:00.
        let r = t
            .call(
                "POST",
                &format!("{base}/work-resumptions"),
                Some(&w.member),
                Some(json!({"incident_id": incident, "resumed_at": "2026-04-01T09:00:00+08:00"})),
            )
            .await;
        refused(&r, "resumed_at", "停工时长结束");
        // Nothing before the case happened, planned or not.
        let r = t
            .call(
                "POST",
                &format!("{base}/acceptance"),
                Some(&w.member),
                Some(json!({"accepted_at": "2026-03-30T09:00:00+08:00"})),
            )
            .await;
        refused(&r, "accepted_at", "案件发生时间");
        t.call(
            "POST",
            &format!("{base}/acceptance"),
            Some(&w.member),
            Some(json!({"accepted_at": "2026-04-02T09:00:00+08:00"})),
        )
        .await
        .expect(StatusCode::OK);
        let r = t
            .call(
                "POST",
                &format!("{base}/sessions"),
                Some(&w.member),
                Some(
                    json!({"scheduled_for": "2026-03-31T10:00:00+08:00", "location": "社区会议室"}),
                ),
            )
            .await;
        refused(&r, "scheduled_for", "案件发生时间");
        // After the stoppage, work resumes; nothing was stored by the refusals.
        t.call(
            "POST",
            &format!("{base}/work-resumptions"),
            Some(&w.member),
            Some(json!({"incident_id": incident, "resumed_at": "2026-04-01T12:30:00+08:00"})),
        )
        .await
        .expect(StatusCode::OK);
        let history = t
            .call("GET", &format!("{base}/history"), Some(&w.member), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            history.json.as_array().map(Vec::len),
            Some(4),
            "opened with its incident, accepted, resumed: {}",
            history.json
        );
    }
);

// ---------------------------------------------------------------------------------------
// Every open matter has a clock.

/// A case of the world's group accepted, with a held session; answers (id, session id).
async fn mediated(w: &World, occurred: &str) -> (String, String) {
    let t = &w.t;
    let resident = w.parties["meiyuan"].clone();
    let id = open_case_id(
        t,
        &w.member,
        json!({
            "kind": "resident_objection", "community": "meiyuan", "category": "cause.cost-sharing",
            "summary": "居民对屋面改造费用分摊有异议", "channel": "visit", "occurred_at": occurred,
            "parties": [{"party_id": resident, "role": "complainant"}]
        }),
    )
    .await;
    let base = format!("/api/v1/cases/{id}");
    t.call(
        "POST",
        &format!("{base}/acceptance"),
        Some(&w.member),
        Some(json!({})),
    )
    .await
    .expect(StatusCode::OK);
    let sid = t
        .call(
            "POST",
            &format!("{base}/sessions"),
            Some(&w.member),
            Some(json!({"scheduled_for": t.app.now().to_canonical(), "location": "社区会议室"})),
        )
        .await
        .expect(StatusCode::OK)
        .json["created_id"]
        .as_str()
        .unwrap()
        .to_string();
    t.call(
        "POST",
        &format!("{base}/sessions/{sid}/record"),
        Some(&w.member),
        Some(
            json!({"attendees": [{"kind": "group_member", "member_id": w.members[0]},
                                  {"kind": "party", "party_id": resident}],
                    "minutes_summary": "双方陈述意见"}),
        ),
    )
    .await
    .expect(StatusCode::OK);
    (id, sid)
}

/// The case as the API shows it once the read side caught up.
async fn case_now(w: &World, id: &str) -> Value {
    w.t.app.read.catch_up().await.unwrap();
    w.t.call("GET", &format!("/api/v1/cases/{id}"), Some(&w.leader), None)
        .await
        .expect(StatusCode::OK)
        .json
}

/// Whether the case is in the overdue list, and the summary's overdue count.
async fn overdue_everywhere(w: &World, id: &str) -> (bool, i64) {
    w.t.app.read.catch_up().await.unwrap();
    let list =
        w.t.call(
            "GET",
            "/api/v1/cases?overdue=true&limit=500",
            Some(&w.leader),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let listed = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["case_id"] == id);
    let summary =
        w.t.call("GET", "/api/v1/stats/summary", Some(&w.supervisor), None)
            .await
            .expect(StatusCode::OK);
    (listed, summary.json["counts"]["overdue"].as_i64().unwrap())
}

both!(
    an_escalation_keeps_a_clock_until_the_receiving_level_replies,
    |b| async move {
        let clock = std::sync::Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let t = &w.t;
        let (failed, _) = mediated(&w, "2022-04-20T09:00:00+08:00").await;
        t.call(
            "POST",
            &format!("/api/v1/cases/{failed}/failure"),
            Some(&w.member),
            Some(json!({"reason": "双方分歧较大", "next_route": "judicial_office"})),
        )
        .await
        .expect(StatusCode::OK);
        let (escalated, _) = mediated(&w, "2022-04-20T09:00:00+08:00").await;
        t.call(
            "POST",
            &format!("/api/v1/cases/{escalated}/escalations"),
            Some(&w.leader),
            Some(json!({"reason": "涉及规划调整", "route": "leadership_group"})),
        )
        .await
        .expect(StatusCode::OK);
        let c = case_now(&w, &failed).await;
        assert_eq!(c["status"], "failed");
        assert_eq!(c["due_kind"], "escalation_reply", "{c}");
        assert_eq!(
            c["due_at"],
            t0().plus_days(15).to_canonical(),
            "the judicial office has 15 days"
        );
        assert_eq!(c["overdue"], false);
        let c = case_now(&w, &escalated).await;
        assert_eq!(c["due_kind"], "escalation_reply");
        assert_eq!(
            c["due_at"],
            t0().plus_days(7).to_canonical(),
            "the leadership group has 7 days"
        );
        assert_eq!(overdue_everywhere(&w, &escalated).await, (false, 0));
        // 35 days later, neither has a reply: both are overdue, in the list and the summary.
        clock.advance(time::Duration::days(35));
        let c = case_now(&w, &escalated).await;
        assert_eq!(c["overdue"], true, "{c}");
        assert_eq!(overdue_everywhere(&w, &escalated).await, (true, 2));
        // The reply stops the clock; one recorded before the escalation is refused.
        let refused = t
            .call(
                "POST",
                &format!("/api/v1/cases/{escalated}/escalation-reply"),
                Some(&w.member),
                Some(json!({"reply": "同意", "replied_at": "2022-04-30T09:00:00+08:00"})),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json["code"], "time_order", "{}", refused.json);
        t.call(
            "POST",
            &format!("/api/v1/cases/{escalated}/escalation-reply"),
            Some(&w.member),
            Some(json!({"reply": "领导小组同意调整管线走向"})),
        )
        .await
        .expect(StatusCode::OK);
        let c = case_now(&w, &escalated).await;
        assert_eq!(c["due_kind"], Value::Null, "{c}");
        assert_eq!(c["overdue"], false);
        assert!(c["route_replied_at"].is_string());
        assert_eq!(overdue_everywhere(&w, &escalated).await, (false, 1));
        // A second reply has nothing to answer.
        let again = t
            .call(
                "POST",
                &format!("/api/v1/cases/{escalated}/escalation-reply"),
                Some(&w.member),
                Some(json!({"reply": "再次答复"})),
            )
            .await;
        assert!(again.status.is_client_error());
        assert_eq!(again.json["code"], "no_reply_awaited", "{}", again.json);
        w.t.stop().await;
    }
);

both!(
    an_agreement_keeps_clocks_until_it_is_carried_out_or_referred,
    |b| async move {
        let clock = std::sync::Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let t = &w.t;
        // Carried out by a date five days on: the performance clock comes first.
        let (id, sid) = mediated(&w, "2022-04-20T09:00:00+08:00").await;
        let base = format!("/api/v1/cases/{id}");
        t.call(
            "POST",
            &format!("{base}/agreement"),
            Some(&w.member),
            Some(
                json!({"session_id": sid, "terms": "施工单位承担屋面防水保修",
                        "performance_due": t0().plus_days(5).to_canonical()}),
            ),
        )
        .await
        .expect(StatusCode::OK);
        let c = case_now(&w, &id).await;
        assert_eq!(c["due_kind"], "performance", "{c}");
        assert_eq!(c["due_at"], t0().plus_days(5).to_canonical());
        assert_eq!(
            c["confirmation_window_ends"],
            t0().plus_days(30).to_canonical()
        );
        // Past it, nothing reported: overdue.
        clock.advance(time::Duration::days(6));
        let c = case_now(&w, &id).await;
        assert_eq!(
            (c["due_kind"].clone(), c["overdue"].clone()),
            (json!("performance"), json!(true))
        );
        // Not carried out; partly without what remains is refused, with nothing stored.
        let before = c["version"].clone();
        let refused = t
            .call(
                "POST",
                &format!("{base}/performance"),
                Some(&w.member),
                Some(json!({"performance": "partly_performed", "reported_by": "申请人本人"})),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json["code"], "remaining_required");
        assert_eq!(case_now(&w, &id).await["version"], before);
        t.call(
            "POST",
            &format!("{base}/performance"),
            Some(&w.member),
            Some(json!({"performance": "not_performed", "reported_by": "申请人本人"})),
        )
        .await
        .expect(StatusCode::OK);
        // Urged, with a new date: the clock moves there.
        let due = t.app.now().plus_days(3).to_canonical();
        t.call(
            "POST",
            &format!("{base}/performance-urgings"),
            Some(&w.member),
            Some(json!({"method": "电话督促施工单位项目经理", "performance_due": due})),
        )
        .await
        .expect(StatusCode::OK);
        let c = case_now(&w, &id).await;
        assert_eq!(c["performance"], "not_performed");
        assert_eq!(
            (c["due_kind"].clone(), c["due_at"].clone()),
            (json!("performance"), json!(due))
        );
        assert_eq!(c["overdue"], false);
        // Closing as resolved by agreement is refused while it is not carried out.
        let close = |outcome: &str| json!({"outcome": outcome});
        let refused = t
            .call(
                "POST",
                &format!("{base}/closure"),
                Some(&w.leader),
                Some(close("resolved_by_agreement")),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            refused.json["code"], "agreement_not_performed",
            "{}",
            refused.json
        );
        // A referral needs the party told of the right to sue.
        let referral = |told: bool| json!({"court": "固原市原州区人民法院", "reason": "督促后仍未履行", "right_to_sue_told": told});
        let refused = t
            .call(
                "POST",
                &format!("{base}/court-referral"),
                Some(&w.member),
                Some(referral(false)),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json["code"], "right_to_sue_not_told");
        t.call(
            "POST",
            &format!("{base}/court-referral"),
            Some(&w.member),
            Some(referral(true)),
        )
        .await
        .expect(StatusCode::OK);
        let c = case_now(&w, &id).await;
        assert!(c["court_referral_at"].is_string());
        assert_ne!(c["due_kind"], "performance", "{c}");
        t.call(
            "POST",
            &format!("{base}/closure"),
            Some(&w.leader),
            Some(close("referred")),
        )
        .await
        .expect(StatusCode::OK);
        assert_eq!(case_now(&w, &id).await["due_kind"], Value::Null);

        // An agreement visited but with nothing recorded about its performance: the
        // judicial-confirmation window is its clock, and past it the case is overdue.
        let (id, sid) = mediated(&w, "2022-05-01T09:00:00+08:00").await;
        let base = format!("/api/v1/cases/{id}");
        let agreed_at = t.app.now();
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
        let c = case_now(&w, &id).await;
        assert_eq!(c["due_kind"], "judicial_confirmation", "{c}");
        assert_eq!(c["due_at"], agreed_at.plus_days(30).to_canonical());
        clock.advance(time::Duration::days(31));
        let c = case_now(&w, &id).await;
        assert_eq!(c["overdue"], true);
        assert!(overdue_everywhere(&w, &id).await.0);
        // Too late to apply now; refused with nothing stored.
        let refused = t
            .call(
                "POST",
                &format!("{base}/judicial-confirmation"),
                Some(&w.member),
                Some(json!({"court": "固原市原州区人民法院"})),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json["code"], "confirmation_window_closed");
        assert_eq!(case_now(&w, &id).await["version"], c["version"]);
        // Recorded as carried out in full: no clock is left, and it closes as resolved.
        t.call(
            "POST",
            &format!("{base}/performance"),
            Some(&w.member),
            Some(json!({"performance": "performed", "reported_by": "调解员回访核实"})),
        )
        .await
        .expect(StatusCode::OK);
        let c = case_now(&w, &id).await;
        assert_eq!(c["due_kind"], Value::Null, "{c}");
        t.call(
            "POST",
            &format!("{base}/closure"),
            Some(&w.leader),
            Some(close("resolved_by_agreement")),
        )
        .await
        .expect(StatusCode::OK);
        w.t.stop().await;
    }
);

both!(
    judicial_confirmation_is_applied_for_and_decided_through_the_api,
    |b| async move {
        let clock = std::sync::Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let t = &w.t;
        let (id, sid) = mediated(&w, "2022-04-20T09:00:00+08:00").await;
        let base = format!("/api/v1/cases/{id}");
        t.call(
            "POST",
            &format!("{base}/agreement"),
            Some(&w.member),
            Some(json!({"session_id": sid, "terms": "分期缴纳"})),
        )
        .await
        .expect(StatusCode::OK);
        clock.advance(time::Duration::days(3));
        t.call(
            "POST",
            &format!("{base}/judicial-confirmation"),
            Some(&w.member),
            Some(json!({"court": "固原市原州区人民法院"})),
        )
        .await
        .expect(StatusCode::OK);
        assert_eq!(case_now(&w, &id).await["confirmation"], "applied");
        let refused = t
            .call(
                "POST",
                &format!("{base}/judicial-confirmation/decision"),
                Some(&w.member),
                Some(json!({"decision": "refused"})),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json["code"], "reason_required");
        t.call(
            "POST",
            &format!("{base}/judicial-confirmation/decision"),
            Some(&w.member),
            Some(json!({"decision": "confirmed"})),
        )
        .await
        .expect(StatusCode::OK);
        let c = case_now(&w, &id).await;
        assert_eq!(c["confirmation"], "confirmed");
        // The case file lists it.
        let mut web = NoJs::new(t);
        web.sign_in(&w.member).await;
        let file = web
            .send("GET", &format!("/cases/{id}/documents/performance"), None)
            .await;
        assert_eq!(file.status, StatusCode::OK);
        assert!(file.body.contains("协议履行情况记录"), "{}", file.body);
        assert!(file.body.contains("固原市原州区人民法院"));
        assert!(file.body.contains("人民法院确认调解协议有效"));
        w.t.stop().await;
    }
);

async fn post(w: &World, path: String, token: &str, body: Value) -> Reply {
    w.t.call("POST", &path, Some(token), Some(body))
        .await
        .expect(StatusCode::OK)
}

both!(
    every_clock_named_by_due_kind_goes_overdue_and_counts_once,
    |b| async move {
        let clock = std::sync::Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let t = &w.t;
        let party = w.parties["meiyuan"].clone();
        // Reported only: the acceptance clock.
        let reported = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        // Accepted: the mediation clock.
        let mediating = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        post(
            &w,
            format!("/api/v1/cases/{}/acceptance", mediating),
            &w.member,
            json!({}),
        )
        .await;
        // Extended with every party's consent: the extension clock.
        let extended = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        post(
            &w,
            format!("/api/v1/cases/{}/acceptance", extended),
            &w.member,
            json!({}),
        )
        .await;
        post(
            &w,
            format!("/api/v1/cases/{extended}/deadline-extensions"),
            &w.member,
            json!({"new_due": t0().plus_days(40).to_canonical(), "reason": "等待造价评审",
                   "consenting_parties": [party]}),
        )
        .await;
        // Agreed, with nothing to carry out by a date: the follow-up clock (15 days).
        let (agreed, sid) = mediated(&w, "2022-04-30T09:00:00+08:00").await;
        post(
            &w,
            format!("/api/v1/cases/{agreed}/agreement"),
            &w.member,
            json!({"session_id": sid, "terms": "分期缴纳"}),
        )
        .await;
        // Under a supervision order due in five days: that clock comes first.
        let ordered = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        post(
            &w,
            format!("/api/v1/cases/{}/acceptance", ordered),
            &w.member,
            json!({}),
        )
        .await;
        let order = post(
            &w,
            format!("/api/v1/cases/{ordered}/supervision-orders"),
            &w.supervisor,
            json!({"instructions": "请于5日内报告进展", "respond_by": t0().plus_days(5).to_canonical()}),
        )
        .await
        .json["created_id"]
            .as_str()
            .unwrap()
            .to_string();
        let expect = [
            (&reported, "acceptance", 2),
            (&mediating, "mediation", 30),
            (&extended, "extension", 40),
            (&agreed, "follow_up", 15),
            (&ordered, "supervision_order", 5),
        ];
        for (id, kind, days) in expect {
            let c = case_now(&w, id).await;
            assert_eq!(c["due_kind"], kind, "{c}");
            assert_eq!(c["due_at"], t0().plus_days(days).to_canonical(), "{kind}");
            assert_eq!(c["overdue"], false, "{kind}");
        }
        assert_eq!(overdue_everywhere(&w, &reported).await, (false, 0));
        // Each goes overdue when its day passes, once, in the list and the summary.
        // The order's case is answered on day 6; its mediation clock runs out on day 30 too.
        let steps = [
            (3, &reported, 1),
            (6, &ordered, 2),
            (16, &agreed, 2),
            (31, &mediating, 4),
            (41, &extended, 5),
        ];
        let mut passed = 0;
        for (day, id, count) in steps {
            clock.advance(time::Duration::days(day - passed));
            passed = day;
            let c = case_now(&w, id).await;
            assert_eq!(c["overdue"], true, "day {day}: {c}");
            assert_eq!(overdue_everywhere(&w, id).await, (true, count), "day {day}");
            if day == 6 {
                // Answering the order stops its clock; the mediation clock is next.
                post(
                    &w,
                    format!("/api/v1/cases/{ordered}/supervision-orders/{order}/answer"),
                    &w.member,
                    json!({"answer": "已组织调解"}),
                )
                .await;
                let c = case_now(&w, &ordered).await;
                assert_eq!(
                    (c["due_kind"].clone(), c["overdue"].clone()),
                    (json!("mediation"), json!(false)),
                    "{c}"
                );
                assert_eq!(overdue_everywhere(&w, &ordered).await, (false, 1));
                passed = day;
            }
        }
        w.t.stop().await;
    }
);
