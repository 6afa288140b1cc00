//! Case numbers: per group and year, from 1, without gaps or repeats, assigned in the
//! write path even when two instances open cases at once on one store; found by number
//! through the API and the desk's search.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::json;
use tiaojie_projections::on_db;
use tiaojie_tests::*;

both!(
    concurrent_openings_on_two_instances_number_without_gaps_or_repeats,
    |b| async move {
        let (store, w) = world(b).await;
        let t = &w.t;
        let t2 = TestApp::start(&store, None).await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let app = if i % 2 == 0 {
                t.router.clone()
            } else {
                t2.router.clone()
            };
            let body = w.objection("meiyuan");
            let token = w.member.clone();
            tasks.push(tokio::spawn(async move {
                use http_body_util::BodyExt;
                use tower::ServiceExt;
                let req = axum::http::Request::builder()
                    .method("POST")
                    .uri("/api/v1/cases")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap();
                let r = app.oneshot(req).await.unwrap();
                let status = r.status();
                let bytes = r.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&bytes).into_owned())
            }));
        }
        for task in tasks {
            let (status, body) = task.await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        // A refused opening takes no number.
        let mut bad = w.objection("meiyuan");
        bad["category"] = json!("cause.no-such-category");
        let r = t
            .call("POST", "/api/v1/cases", Some(&w.member), Some(bad))
            .await;
        assert!(r.status.is_client_error());
        t.call(
            "POST",
            "/api/v1/cases",
            Some(&w.member),
            Some(w.objection("jingfeng-yuan")),
        )
        .await
        .expect(StatusCode::CREATED);
        t.app.read.catch_up().await.unwrap();
        let list = t
            .call("GET", "/api/v1/cases?limit=100", Some(&w.member), None)
            .await
            .expect(StatusCode::OK);
        let items = list.json["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 25);
        let year = time::OffsetDateTime::now_utc()
            .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
            .year();
        let prefix = format!("南城路调〔{year}〕");
        let mut ns = BTreeSet::new();
        for it in &items {
            let number = it["case_number"]
                .as_str()
                .unwrap_or_else(|| panic!("no number: {it}"));
            assert!(
                number.starts_with(&prefix) && number.ends_with('号'),
                "{number}"
            );
            let n: i64 = number[prefix.len()..number.len() - '号'.len_utf8()]
                .parse()
                .unwrap();
            assert!(ns.insert(n), "{number} given twice");
        }
        assert_eq!(ns, (1..=25).collect::<BTreeSet<i64>>(), "no gap, no repeat");
        // Found by number: the API (URL-encoded) and the desk's search.
        let first = &items[0];
        let number = first["case_number"].as_str().unwrap();
        let r = t
            .call(
                "GET",
                &format!("/api/v1/cases/by-number/{}", enc(number)),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(r.json["case_id"], first["case_id"]);
        assert_eq!(r.json["case_number"], number);
        let one = t
            .call(
                "GET",
                &format!("/api/v1/cases/{}", first["case_id"].as_str().unwrap()),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(one.json["case_number"], number);
        // Typed with half-width brackets and spaces, it is still found.
        let typed = number.replace('〔', "[").replace('〕', "] ");
        t.call(
            "GET",
            &format!("/api/v1/cases/by-number/{}", enc(&typed)),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::OK);
        t.call(
            "GET",
            &format!("/api/v1/cases/by-number/{}", enc("南城路调〔1999〕1号")),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::NOT_FOUND);
        // Another group's member does not see it by number either.
        let r = t
            .call(
                "GET",
                &format!("/api/v1/cases/by-number/{}", enc(number)),
                Some(&w.other_member),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // The audit trail is filtered by the number as well as by the id.
        let audit = t
            .call(
                "GET",
                &format!("/api/v1/audit?case={}", enc(number)),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let entries = audit.json["items"].as_array().unwrap();
        assert!(!entries.is_empty(), "{:?}", audit.json);
        assert!(
            entries.iter().all(|e| e["case_id"] == first["case_id"]),
            "{:?}",
            audit.json
        );
        let mut web = NoJs::new(t);
        web.sign_in(&w.member).await;
        let r = web
            .send("GET", &format!("/desk?text={}", enc(number)), None)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(
            r.location,
            format!("/cases/{}", first["case_id"].as_str().unwrap())
        );
        let page = web.send("GET", &r.location, None).await;
        assert!(page.body.contains(number), "the case page shows its number");
        t2.stop().await;
        w.t.stop().await;
    }
);

both!(
    openings_of_two_groups_in_one_sequencer_batch_are_numbered_in_log_order,
    |b| async move {
        let (store, w) = world(b).await;
        let first: Vec<(String, serde_json::Value)> = (0..24)
            .map(|i| {
                if i % 3 == 0 {
                    (w.other_member.clone(), w.objection("donghai-yuanqu"))
                } else {
                    (w.member.clone(), w.objection("meiyuan"))
                }
            })
            .collect();
        let then = [
            (w.member.clone(), w.objection("jingfeng-yuan")),
            (w.other_member.clone(), w.objection("donghai-yuanqu")),
        ];
        // Commands only: nothing is sequenced until the catch-up below, which logs the
        // openings of both groups in one batch (one statement on PostgreSQL).
        w.t.stop().await;
        let t = TestApp::start_with(&store, None, settings(&store.url), false).await;
        for (token, body) in first {
            t.call("POST", "/api/v1/cases", Some(&token), Some(body))
                .await
                .expect(StatusCode::CREATED);
        }
        t.app.read.catch_up().await.unwrap();
        // Then two more, each in a batch of its own, continue from where the batch ended.
        for (token, body) in then {
            t.call("POST", "/api/v1/cases", Some(&token), Some(body))
                .await
                .expect(StatusCode::CREATED);
            t.app.read.catch_up().await.unwrap();
        }
        let rows: Vec<(String, i64, i64)> = on_db!(&t.app.db, p => {
            sqlx::query_as(
                "SELECT n.group_id, CAST(n.n AS BIGINT), l.position FROM case_numbers n
                 JOIN event_log l ON l.aggregate_type = 'Case' AND l.aggregate_id = n.case_id AND l.sequence = 1
                 ORDER BY l.position",
            )
            .fetch_all(p)
            .await
            .unwrap()
        });
        let opened: i64 = on_db!(&t.app.db, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM event_log WHERE event_type = 'CaseOpened'")
                .fetch_one(p)
                .await
                .unwrap()
        });
        assert_eq!(rows.len() as i64, opened, "every opening has a number");
        assert_eq!(rows.len(), 26);
        // In log order, each group's numbers run 1, 2, 3, …
        let mut next: std::collections::HashMap<String, i64> = Default::default();
        for (group, n, position) in &rows {
            let expected = next.entry(group.clone()).or_insert(1);
            assert_eq!(
                n, expected,
                "group {group}, log position {position}: {rows:?}"
            );
            *expected += 1;
        }
        let mut counts: Vec<i64> = next.values().map(|n| n - 1).collect();
        counts.sort();
        assert_eq!(counts, vec![9, 17], "{rows:?}");
        t.stop().await;
    }
);
