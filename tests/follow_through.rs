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
