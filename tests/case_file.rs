//! The case file as the People's Mediation rules want it: party details checked at the
//! edge and masked for supervisors, the registry searched by name prefix, phone or ID
//! number within scope, and the documents generated from the record, each with a
//! verification code that `/verify/{code}` checks.

use axum::http::StatusCode;
use serde_json::{json, Value};
use tiaojie::party_checks::check_digit;
use tiaojie_tests::*;

/// A valid 居民身份证 number of Guyuan (640402), born on the given date, with the given
/// sequence (odd: male).
fn resident_id(birth: &str, seq: &str) -> String {
    let first17 = format!("640402{birth}{seq}");
    format!("{first17}{}", check_digit(&first17).unwrap())
}

async fn register(w: &World, token: &str, body: Value) -> Reply {
    w.t.call("POST", "/api/v1/parties", Some(token), Some(body))
        .await
}

async fn count_parties(w: &World) -> usize {
    w.t.call(
        "GET",
        "/api/v1/parties?name=%E9%A9%AC",
        Some(&w.member),
        None,
    )
    .await
    .expect(StatusCode::OK)
    .json
    .as_array()
    .unwrap()
    .len()
}

both!(
    party_details_are_checked_masked_and_refused_with_nothing_stored,
    |b| async move {
        let (_store, w) = world(b).await;
        let id = resident_id("19580312", "123");
        let created = register(
            &w,
            &w.member,
            json!({
                "kind": "resident", "community": "meiyuan", "name": "马桂英",
                "phone": "+86 139-5412-3456", "gender": "male", "ethnicity": "回",
                "id_number": id.to_lowercase(), "building": "5号楼", "unit": "2单元",
                "household": "301", "workplace": "固原市第二中学"
            }),
        )
        .await
        .expect(StatusCode::CREATED);
        let pid = created.json["party_id"].as_str().unwrap().to_string();
        let seen =
            w.t.call(
                "GET",
                &format!("/api/v1/parties/{pid}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let d = &seen.json["data"];
        assert_eq!(d["phone"], "13954123456", "{d}");
        assert_eq!(d["ethnicity"], "回族");
        assert_eq!(d["id_type"], "resident_id");
        assert_eq!(d["id_number"], id.to_uppercase());
        assert_eq!(
            d["birth_date"], "1958-03-12",
            "the date of birth comes from the ID number"
        );
        assert_eq!(d["gender"], "male");
        // A supervisor sees the ID number as 6404**********1234, the year of birth only.
        let masked =
            w.t.call(
                "GET",
                &format!("/api/v1/parties/{pid}"),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let m = &masked.json["data"];
        assert_eq!(masked.json["visibility"], "masked");
        assert_eq!(
            m["id_number"],
            format!("6404**********{}", &id[14..]),
            "{m}"
        );
        assert_eq!(m["birth_date"], "1958-**-**");
        assert_eq!(m["name"], "马**");
        assert!(m["workplace"].is_null() && m["household"].is_null());

        // Landlines are kept with their area code.
        let landline = register(
            &w,
            &w.member,
            json!({"kind": "enterprise", "community": "meiyuan", "name": "马家建材有限公司",
               "phone": "09515012345", "legal_representative": "马志明", "agent": "马小军",
               "id_type": "credit_code", "id_number": "91640100MA76A1B23X"}),
        )
        .await
        .expect(StatusCode::CREATED);
        let lid = landline.json["party_id"].as_str().unwrap();
        let l =
            w.t.call(
                "GET",
                &format!("/api/v1/parties/{lid}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(l.json["data"]["phone"], "0951-5012345");
        assert_eq!(l.json["data"]["legal_representative"], "马志明");

        let before = count_parties(&w).await;
        assert_eq!(
            before, 4,
            "马秀英 in the group's two communities, 马桂英 and the company"
        );
        let mut wrong_check = id.clone();
        let last = if wrong_check.ends_with('1') { "2" } else { "1" };
        wrong_check.replace_range(17.., last);
        for (body, field, words) in [
            (
                json!({"kind": "resident", "community": "meiyuan", "name": "马一", "phone": "12345"}),
                "phone",
                "手机号为11位",
            ),
            (
                json!({"kind": "resident", "community": "meiyuan", "name": "马二", "id_number": wrong_check}),
                "id_number",
                "校验位不符",
            ),
            (
                json!({"kind": "resident", "community": "meiyuan", "name": "马三", "id_number": id, "gender": "female"}),
                "gender",
                "性别与居民身份证号码不一致",
            ),
            (
                json!({"kind": "resident", "community": "meiyuan", "name": "马四", "ethnicity": "火星族"}),
                "ethnicity",
                "56个民族",
            ),
            (
                json!({"kind": "resident", "community": "meiyuan", "name": "马五", "birth_date": "2090-01-01"}),
                "birth_date",
                "出生日期",
            ),
            (
                json!({"kind": "resident", "community": "meiyuan", "name": "马六", "address": format!("身份证{id}")}),
                "address",
                "证件号码",
            ),
        ] {
            let r = register(&w, &w.member, body).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.json);
            assert!(r.is_problem());
            let text = r.json.to_string();
            assert!(text.contains(field), "{field} not named: {text}");
            assert!(text.contains(words), "{words} not said: {text}");
        }
        assert_eq!(
            count_parties(&w).await,
            before,
            "a refused registration stores nothing"
        );
    }
);

both!(
    the_registry_is_searched_by_prefix_phone_and_id_within_scope,
    |b| async move {
        let (_store, w) = world(b).await;
        let id = resident_id("19620101", "002");
        for (token, community, name, phone, id_number) in [
            (
                &w.member,
                "meiyuan",
                "张桂兰",
                "13995401122",
                Some(id.as_str()),
            ),
            (&w.member, "jingfeng-yuan", "张建华", "13895400001", None),
            (&w.member, "meiyuan", "李张", "13895400002", None),
            (
                &w.other_member,
                "donghai-yuanqu",
                "张三",
                "13895400003",
                None,
            ),
        ] {
            let mut body =
                json!({"kind": "resident", "community": community, "name": name, "phone": phone});
            if let Some(n) = id_number {
                body["id_number"] = json!(n);
            }
            register(&w, token, body).await.expect(StatusCode::CREATED);
        }
        let names = |v: &Value| -> Vec<String> {
            let mut n: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["data"]["name"].as_str().unwrap().to_string())
                .collect();
            n.sort();
            n
        };
        let search = |token: String, q: String| {
            let t = &w.t;
            async move {
                t.call("GET", &format!("/api/v1/parties?{q}"), Some(&token), None)
                    .await
            }
        };
        let by = |q: &str| format!("name={}", enc(q));
        let r = search(w.member.clone(), by("张"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            names(&r.json),
            ["张建华", "张桂兰"],
            "a prefix, within the group's communities"
        );
        let r = search(w.member.clone(), by("张桂"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(names(&r.json), ["张桂兰"]);
        let r = search(w.member.clone(), by("张桂兰"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(names(&r.json), ["张桂兰"], "the full name still finds");
        let r = search(w.member.clone(), by("桂兰"))
            .await
            .expect(StatusCode::OK);
        assert!(
            names(&r.json).is_empty(),
            "the middle of a name is not a prefix"
        );
        let r = search(w.other_member.clone(), by("张"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(names(&r.json), ["张三"], "another group finds only its own");
        let r = search(w.member.clone(), "phone=139-9540-1122".into())
            .await
            .expect(StatusCode::OK);
        assert_eq!(names(&r.json), ["张桂兰"]);
        let r = search(w.member.clone(), format!("id_number={}", id.to_lowercase()))
            .await
            .expect(StatusCode::OK);
        assert_eq!(names(&r.json), ["张桂兰"]);
        let r = search(w.other_member.clone(), format!("id_number={id}"))
            .await
            .expect(StatusCode::OK);
        assert!(names(&r.json).is_empty(), "out of scope");
        // A supervisor searching by ID number gives a reason, and sees the result masked.
        search(w.supervisor.clone(), format!("id_number={id}"))
            .await
            .expect(StatusCode::FORBIDDEN);
        let r = search(
            w.supervisor.clone(),
            format!("id_number={id}&reason={}", enc("信访件核查")),
        )
        .await
        .expect(StatusCode::OK);
        assert_eq!(names(&r.json), ["张**"]);
        assert_eq!(
            r.json[0]["data"]["id_number"],
            format!("6404**********{}", &id[14..])
        );
        // A correction moves the search terms with it.
        let pid = r.json[0]["party_id"].as_str().unwrap().to_string();
        w.t.call(
            "PATCH",
            &format!("/api/v1/parties/{pid}"),
            Some(&w.member),
            Some(json!({"name": "章桂兰", "reason": "登记时姓氏写错"})),
        )
        .await
        .expect(StatusCode::OK);
        let r = search(w.member.clone(), by("张"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(names(&r.json), ["张建华"]);
        let r = search(w.member.clone(), by("章"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(names(&r.json), ["章桂兰"]);
        // Erasure takes the party out of every search.
        w.t.call(
            "POST",
            &format!("/api/v1/parties/{pid}/erasure"),
            Some(&w.admin),
            Some(json!({"reason": "本人申请"})),
        )
        .await
        .expect(StatusCode::OK);
        let r = search(w.member.clone(), format!("id_number={id}"))
            .await
            .expect(StatusCode::OK);
        assert!(names(&r.json).is_empty());
    }
);

/// A page that must be there.
async fn doc(web: &mut NoJs<'_>, path: String) -> String {
    let a = web.send("GET", &path, None).await;
    assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
    a.body
}

/// Opens a case (which happened on 1 April 2026) with `opening`, accepts it on the 2nd and
/// holds a session on the 5th with `attendees`: answers the case and the session.
async fn with_a_session(
    w: &World,
    mut opening: Value,
    location: &str,
    attendees: Value,
    minutes: &str,
) -> (String, String) {
    let t = &w.t;
    opening["occurred_at"] = json!("2026-04-01T09:00:00+08:00");
    let id = open_case_id(t, &w.member, opening).await;
    let base = format!("/api/v1/cases/{id}");
    t.call(
        "POST",
        &format!("{base}/acceptance"),
        Some(&w.member),
        Some(json!({"accepted_at": "2026-04-02T09:00:00+08:00"})),
    )
    .await
    .expect(StatusCode::OK);
    let sid = t
        .call(
            "POST",
            &format!("{base}/sessions"),
            Some(&w.member),
            Some(json!({"scheduled_for": "2026-04-05T09:00:00+08:00", "location": location})),
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
        Some(json!({"held_at": "2026-04-05T09:30:00+08:00", "attendees": attendees, "minutes_summary": minutes})),
    )
    .await
    .expect(StatusCode::OK);
    (id, sid)
}

/// A case through intake, a session, an agreement with what Art. 29 asks, and a follow-up.
async fn agreed_case(w: &World) -> (String, String, String) {
    let t = &w.t;
    let contractor = register(
        w,
        &w.member,
        json!({"kind": "contractor", "community": "meiyuan", "name": "刘强",
               "phone": "13895470012", "organisation": "宁夏恒基建设工程有限公司"}),
    )
    .await
    .expect(StatusCode::CREATED)
    .json["party_id"]
        .as_str()
        .unwrap()
        .to_string();
    let resident = w.parties["meiyuan"].clone();
    let (id, sid) = with_a_session(
        w,
        json!({
            "kind": "resident_objection", "community": "meiyuan",
            "category": "cause.cost-sharing", "summary": "居民对屋面改造费用分摊有异议",
            "channel": "visit",
            "parties": [{"party_id": resident, "role": "complainant"},
                        {"party_id": contractor, "role": "contractor"}]
        }),
        "社区党群服务中心会议室",
        json!([{"kind": "group_member", "member_id": w.members[0]},
               {"kind": "party", "party_id": resident},
               {"kind": "party", "party_id": contractor}]),
        "双方陈述意见，调解员释明分摊政策",
    )
    .await;
    let base = format!("/api/v1/cases/{id}");
    // An obligation of someone who is not a party is refused, naming the field.
    let outsider = register(
        w,
        &w.member,
        json!({"kind": "resident", "community": "meiyuan", "name": "马路人"}),
    )
    .await
    .expect(StatusCode::CREATED)
    .json["party_id"]
        .as_str()
        .unwrap()
        .to_string();
    let agreement = |obligations: Value, due: &str| {
        json!({
            "session_id": sid, "terms": "费用按户均摊，施工单位承担屋面防水保修",
            "agreed_at": "2026-04-05T11:00:00+08:00",
            "facts": "屋面改造费用分摊方案未经居民讨论，居民拒绝缴纳",
            "responsibilities": "社区公示不足，负有一定责任",
            "obligations": obligations,
            "performance_manner": "居民分两期缴纳，施工单位书面承诺保修",
            "performance_place": "美苑小区物业服务中心",
            "performance_due": due,
            "copies": 3
        })
    };
    let r = t
        .call(
            "POST",
            &format!("{base}/agreement"),
            Some(&w.member),
            Some(agreement(
                json!([{"party_id": outsider, "duty": "配合"}]),
                "2026-05-05T00:00:00+08:00",
            )),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json.to_string().contains("unknown_party"), "{}", r.json);
    let r = t
        .call(
            "POST",
            &format!("{base}/agreement"),
            Some(&w.member),
            Some(agreement(json!([]), "2026-04-01T00:00:00+08:00")),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json.to_string().contains("performance_due"), "{}", r.json);
    // A party's obligations are listed once; the copies are 1 to 20.
    let r = t
        .call(
            "POST",
            &format!("{base}/agreement"),
            Some(&w.member),
            Some(agreement(
                json!([{"party_id": resident, "duty": "缴费"}, {"party_id": resident, "duty": "配合"}]),
                "2026-05-05T00:00:00+08:00",
            )),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json["code"], "duplicate_party", "{}", r.json);
    for copies in [0, 21] {
        let mut body = agreement(json!([]), "2026-05-05T00:00:00+08:00");
        body["copies"] = json!(copies);
        let r = t
            .call(
                "POST",
                &format!("{base}/agreement"),
                Some(&w.member),
                Some(body),
            )
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json["code"], "invalid_copies", "{}", r.json);
        assert!(
            r.json["detail"].as_str().unwrap().contains("1至20份"),
            "{}",
            r.json
        );
        assert_eq!(r.json["errors"][0]["field"], "copies", "{}", r.json);
    }
    let history = t
        .call("GET", &format!("{base}/history"), Some(&w.member), None)
        .await
        .expect(StatusCode::OK);
    assert!(
        !history.json.to_string().contains("AgreementReached"),
        "the refused agreements stored nothing"
    );
    t.call(
        "POST",
        &format!("{base}/agreement"),
        Some(&w.member),
        Some(agreement(
            json!([{"party_id": resident, "duty": "4月30日前缴清第一期费用"},
                   {"party_id": contractor, "duty": "竣工后屋面防水保修五年"}]),
            "2026-05-05T00:00:00+08:00",
        )),
    )
    .await
    .expect(StatusCode::OK);
    t.call(
        "POST",
        &format!("{base}/follow-ups"),
        Some(&w.member),
        Some(json!({"satisfaction": "satisfied", "notes": "第一期费用已缴清"})),
    )
    .await
    .expect(StatusCode::OK);
    (id, sid, resident)
}

both!(
    documents_are_built_from_the_record_and_verified_by_their_code,
    |b| async move {
        let (_store, w) = world(b).await;
        let (id, sid, _) = agreed_case(&w).await;
        let number =
            w.t.call("GET", &format!("/api/v1/cases/{id}"), Some(&w.member), None)
                .await
                .expect(StatusCode::OK)
                .json["case_number"]
                .as_str()
                .unwrap()
                .to_string();
        let mut web = NoJs::new(&w.t);
        web.sign_in(&w.member).await;
        let case_page = web.send("GET", &format!("/cases/{id}"), None).await;
        for link in [
            "documents/intake",
            &format!("documents/minutes/{sid}"),
            "documents/agreement",
            "documents/follow-up/1",
            "documents/file",
        ] {
            assert!(
                case_page.body.contains(&format!("/cases/{id}/{link}")),
                "the case page links {link}"
            );
        }
        let intake = doc(&mut web, format!("/cases/{id}/documents/intake")).await;
        for part in [
            "人民调解受理登记表",
            &number,
            "马秀英",
            "刘强",
            "宁夏恒基建设工程有限公司",
            "居民对屋面改造费用分摊有异议",
            "来访",
            "受理日期",
            "接待调解员",
            "（签名或按指印）",
            "核验码",
        ] {
            assert!(intake.contains(part), "intake lacks {part}");
        }
        let minutes = doc(&mut web, format!("/cases/{id}/documents/minutes/{sid}")).await;
        for part in [
            "调解笔录",
            "社区党群服务中心会议室",
            "双方陈述意见，调解员释明分摊政策",
            "调解员 田玉梅（签名）",
            "当事人 马秀英（签名或按指印）",
            "当事人 刘强（签名或按指印）",
            "记录人",
        ] {
            assert!(minutes.contains(part), "the minutes lack {part}");
        }
        let agreement = doc(&mut web, format!("/cases/{id}/documents/agreement")).await;
        for part in [
            "人民调解协议书",
            &number,
            "纠纷的主要事实、争议事项",
            "屋面改造费用分摊方案未经居民讨论",
            "各方当事人的责任",
            "社区公示不足",
            "费用按户均摊",
            "马秀英：4月30日前缴清第一期费用",
            "刘强：竣工后屋面防水保修五年",
            "居民分两期缴纳",
            "美苑小区物业服务中心",
            "2026年5月5日",
            "之日起生效",
            "三十日内",
            "司法确认",
            "第三十三条",
            "本协议一式3份",
            "当事人 马秀英（签名、盖章或按指印）",
            "人民调解员 田玉梅（签名）",
            "人民调解委员会（印章）",
        ] {
            assert!(agreement.contains(part), "the agreement lacks {part}");
        }
        let follow_up = doc(&mut web, format!("/cases/{id}/documents/follow-up/1")).await;
        assert!(
            follow_up.contains("回访记录")
                && follow_up.contains("第一期费用已缴清")
                && follow_up.contains("满意")
        );
        let file = doc(&mut web, format!("/cases/{id}/documents/file")).await;
        for part in [
            "人民调解卷宗",
            "卷内目录",
            "保管期限",
            "（未结案）",
            "人民调解受理登记表",
            "调解笔录",
            "人民调解协议书",
            "回访记录",
        ] {
            assert!(file.contains(part), "the file lacks {part}");
        }
        assert!(file.find("人民调解受理登记表").unwrap() < file.rfind("回访记录").unwrap());
        // No such document: a page that says so, not an error.
        let none = web
            .send("GET", &format!("/cases/{id}/documents/follow-up/9"), None)
            .await;
        assert_eq!(none.status, StatusCode::NOT_FOUND);
        assert!(none.body.contains("没有这份文书"));

        // The code on the paper matches the record; after a later event, it says so.
        let code = agreement
            .split("核验码 <span class=\"code\">")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap()
            .to_string();
        assert_eq!(code.len(), 14, "{code}");
        let v = web.send("GET", &format!("/verify/{code}"), None).await;
        assert_eq!(v.status, StatusCode::OK);
        assert!(
            v.body.contains("与记录相符，是本案的最新版本"),
            "{}",
            v.body
        );
        assert!(v.body.contains(&number));
        let typed = web
            .send(
                "GET",
                &format!(
                    "/verify?code={}",
                    enc(&code.to_lowercase().replace('-', " "))
                ),
                None,
            )
            .await;
        assert!(typed.body.contains("与记录相符"));
        w.t.call(
            "POST",
            &format!("/api/v1/cases/{id}/notes"),
            Some(&w.member),
            Some(json!({"note": "当事人来电确认第二期缴费时间"})),
        )
        .await
        .expect(StatusCode::OK);
        // The note reaches the log within moments.
        let mut newer = String::new();
        for _ in 0..50 {
            newer = web.send("GET", &format!("/verify/{code}"), None).await.body;
            if newer.contains("已有更新的版本") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(newer.contains("已有更新的版本"), "{newer}");
        let fresh = doc(&mut web, format!("/cases/{id}/documents/agreement")).await;
        assert!(!fresh.contains(&code), "a new print carries a new code");
        // A wrong code, and another group's member, learn nothing.
        let wrong = web.send("GET", "/verify/0000-0000-0000", None).await;
        assert_eq!(wrong.status, StatusCode::NOT_FOUND);
        assert!(wrong.body.contains("没有与该核验码相符的文书"));
        let bad = web.send("GET", "/verify/xyz", None).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains("核验码为12位"));
        let mut other = NoJs::new(&w.t);
        other.sign_in(&w.other_member).await;
        let theirs = other.send("GET", &format!("/verify/{code}"), None).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND);
        let doc_theirs = other
            .send("GET", &format!("/cases/{id}/documents/agreement"), None)
            .await;
        assert_eq!(doc_theirs.status, StatusCode::FORBIDDEN);
        // A supervisor's papers are masked.
        let mut sup = NoJs::new(&w.t);
        sup.sign_in(&w.supervisor).await;
        let masked = sup
            .send("GET", &format!("/cases/{id}/documents/agreement"), None)
            .await;
        assert_eq!(masked.status, StatusCode::OK);
        assert!(masked.body.contains("马**") && !masked.body.contains("马秀英"));
    }
);

both!(
    the_agreement_form_refuses_next_to_the_field_and_keeps_what_was_typed,
    |b| async move {
        let (_store, w) = world(b).await;
        let t = &w.t;
        let (id, sid) = with_a_session(
            &w,
            w.objection("meiyuan"),
            "社区会议室",
            json!([{"kind": "group_member", "member_id": w.members[0]}]),
            "各方陈述",
        )
        .await;
        let base = format!("/api/v1/cases/{id}");
        let mut web = NoJs::new(t);
        web.sign_in(&w.member).await;
        let page = web.send("GET", &format!("/cases/{id}"), None).await;
        for field in [
            "facts",
            "responsibilities",
            "performance_manner",
            "performance_place",
            "performance_due",
            &format!("obligations.{}", w.parties["meiyuan"]),
        ] {
            assert!(
                page.body.contains(&format!("name=\"{field}\"")),
                "the agreement form lacks {field}"
            );
        }
        let version = hidden(&page.body, "version");
        let party_field = format!("obligations.{}", w.parties["meiyuan"]);
        let fields: Vec<(&str, &str)> = vec![
            ("session_id", &sid),
            ("facts", "费用分摊有争议"),
            ("terms", "按户均摊"),
            (&party_field, "五月底前缴清"),
            ("performance_manner", "分期缴纳"),
            ("performance_due", "2026-04-01T09:00"),
            ("agreed_at", "2026-04-05T11:00"),
            ("version", &version),
        ];
        let r = web
            .post_from(&page.body, &format!("/cases/{id}/do/agreement"), &fields)
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let form = r
            .body
            .split("id=\"form-agreement\"")
            .nth(1)
            .expect("the agreement form is shown");
        let due_at = form.find("name=\"performance_due\"").unwrap();
        let error_at = form.find("field-error").expect("an error next to a field");
        assert!(
            error_at > due_at.saturating_sub(600) && error_at < due_at + 600,
            "the error sits at the performance due field"
        );
        assert!(
            form.contains("五月底前缴清") && form.contains("费用分摊有争议"),
            "what was typed is kept"
        );
        let history = t
            .call("GET", &format!("{base}/history"), Some(&w.member), None)
            .await
            .expect(StatusCode::OK);
        assert!(
            !history.json.to_string().contains("AgreementReached"),
            "nothing was stored"
        );
    }
);

both!(
    the_case_page_speaks_a_mediators_words_and_offers_only_what_applies,
    |b| async move {
        let (_store, w) = world(b).await;
        let t = &w.t;
        let id = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        let mut web = NoJs::new(t);
        web.sign_in(&w.member).await;
        let page = web.send("GET", &format!("/cases/{id}"), None).await;
        assert!(
            !page.body.contains("id=\"form-police\""),
            "no police on an objection not yet accepted"
        );
        assert!(page.body.contains("id=\"form-accept\""));
        for technical in ["业务时间", "更正字段", "错误代码", "HTTP 4"] {
            assert!(!page.body.contains(technical), "the page says {technical}");
        }
        assert!(
            page.body.contains("更正哪一项内容")
                && page
                    .body
                    .contains("<option value=\"terms\">协议内容</option>"),
            "a correction offers the parts it can correct"
        );
        let version = hidden(&page.body, "version");
        let accepted = web
            .post_from(
                &page.body,
                &format!("/cases/{id}/do/accept"),
                &[("version", &version)],
            )
            .await;
        assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
        let after = web.send("GET", &accepted.location, None).await;
        assert!(
            after
                .body
                .contains("已受理。下一步：指派承办调解员，安排调解会。"),
            "the success says what comes next"
        );
        assert!(
            after.body.contains("id=\"form-police\""),
            "police once accepted"
        );

        // Closing asks for a confirmation; without it nothing is closed, and the message is
        // at the top of the form.
        let mut leader = NoJs::new(t);
        leader.sign_in(&w.leader).await;
        let page = leader.send("GET", &format!("/cases/{id}"), None).await;
        assert!(page.body.contains("结案后不能再记录调解进展"));
        let version = hidden(&page.body, "version");
        let refused = leader
            .post_from(
                &page.body,
                &format!("/cases/{id}/do/close"),
                &[("outcome", "unresolved"), ("version", &version)],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        let form = refused.body.split("id=\"form-close\"").nth(1).unwrap();
        assert!(form.contains("请勾选确认后再结案"));
        let status = t
            .call("GET", &format!("/api/v1/cases/{id}"), Some(&w.leader), None)
            .await
            .expect(StatusCode::OK);
        assert_ne!(status.json["status"], "closed", "nothing was closed");
        let closed = leader
            .post_from(
                &page.body,
                &format!("/cases/{id}/do/close"),
                &[
                    ("outcome", "unresolved"),
                    ("confirm", "on"),
                    ("version", &version),
                ],
            )
            .await;
        assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
        let after = leader.send("GET", &closed.location, None).await;
        assert!(after.body.contains("已结案。可打印卷宗归档。"));
        // An error page keeps its technical code folded away.
        let missing = leader
            .send("GET", "/cases/01900000-0000-7000-8000-000000000000", None)
            .await;
        assert!(missing.body.contains("技术信息") && !missing.body.contains("HTTP 404"));
    }
);

both!(
    a_party_page_shows_the_record_and_corrects_it_with_a_reason,
    |b| async move {
        let (_store, w) = world(b).await;
        let t = &w.t;
        let pid = w.parties["meiyuan"].clone();
        let case = open_case_id(t, &w.member, w.objection("meiyuan")).await;
        let mut web = NoJs::new(t);
        web.sign_in(&w.member).await;
        let case_page = web.send("GET", &format!("/cases/{case}"), None).await;
        let link = format!("/parties/{pid}?case={case}");
        assert!(
            case_page.body.contains(&link),
            "the case page links its parties"
        );
        let page = web.send("GET", &link, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("马秀英") && page.body.contains("13895412345"));
        assert!(
            page.body.contains(&format!("/cases/{case}")),
            "the cases naming the party"
        );
        let id = resident_id("19580312", "124");
        // A wrong phone is refused next to its field; what was typed stays; nothing changes.
        let refused = web
            .post_from(
                &page.body,
                &format!("/parties/{pid}"),
                &[
                    ("name", "马秀英"),
                    ("phone", "12345"),
                    ("id_number", &id),
                    ("reason", "核对身份证"),
                    ("case", &case),
                ],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        let at_phone = refused.body.find("id=\"correct-phone\"").unwrap();
        let error = refused.body[at_phone..].find("field-error").unwrap();
        assert!(error < 600, "the error sits at the phone");
        assert!(refused.body.contains(&id), "what was typed is kept");
        let unchanged = t
            .call(
                "GET",
                &format!("/api/v1/parties/{pid}"),
                Some(&w.member),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert!(unchanged.json["data"]["id_number"].is_null());
        // Without a reason, refused too.
        let no_reason = web
            .post_from(
                &page.body,
                &format!("/parties/{pid}"),
                &[("name", "马秀英"), ("phone", "13895412345")],
            )
            .await;
        assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(no_reason.body.contains("请填写更正理由"));
        // A good correction, with its reason in the access log.
        let done = web
            .post_from(
                &page.body,
                &format!("/parties/{pid}"),
                &[
                    ("name", "马秀英"),
                    ("phone", "0951-5012345"),
                    ("ethnicity", "回族"),
                    ("id_number", &id),
                    ("reason", "核对身份证"),
                    ("case", &case),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let after = web.send("GET", &done.location, None).await;
        assert!(
            after.body.contains("已更正")
                && after.body.contains("0951-5012345")
                && after.body.contains(&id)
        );
        let log = t
            .call(
                "GET",
                &format!("/api/v1/access-log?party={pid}"),
                Some(&w.supervisor),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert!(log.json.to_string().contains("核对身份证"), "{}", log.json);
        // A supervisor sees it masked, with no form.
        let mut sup = NoJs::new(t);
        sup.sign_in(&w.supervisor).await;
        let masked = sup.send("GET", &format!("/parties/{pid}"), None).await;
        assert_eq!(masked.status, StatusCode::OK);
        assert!(masked.body.contains("6404**********") && !masked.body.contains(&id));
        assert!(!masked.body.contains("id=\"form-correct\""));
    }
);
