//! Accounts, through the real router and the real store (SQLite and PostgreSQL): sign-in
//! with a password, the forced change of a one-time password, lockout and unlock, the
//! second factor, access that follows the mediation group at every request (removal,
//! leader change), tokens that belong to accounts, and a wall screen's kiosk session.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use tiaojie_events::metadata::Role;
use tiaojie_events::ManualClock;
use tiaojie_projections::on_db;
use tiaojie_tests::*;

async fn access_actions(t: &TestApp, account: &str) -> Vec<(String, Option<String>)> {
    on_db!(&t.app.db, p => {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT action, address FROM access_log WHERE actor_id = $1 ORDER BY id")
            .bind(account)
            .fetch_all(p)
            .await
            .unwrap();
        rows
    })
}

both!(
    a_one_time_password_signs_in_once_and_must_be_changed,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let gao = member_named(t, w.group, "高峰").await;
        let (a, otp) = account(t, "gaofeng", Role::Member, Some((w.group, gao)), None).await;
        assert!(a.must_change);
        let mut web = NoJs::new(t);
        // A wrong password is refused with one sentence for every cause.
        let r = web.sign_in_with("gaofeng", "not-the-password1", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("登录名或密码不正确"), "{}", r.body);
        let r = web.sign_in_with("nobody", "not-the-password1", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("登录名或密码不正确"));
        // The one-time password signs in, to the password form and nowhere else.
        let r = web.sign_in_with("GaoFeng", &otp, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location, "/account?must=password");
        let r = web.send("GET", "/desk", None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location, "/account?must=password");
        let page = web.send("GET", "/account?must=password", None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("id=\"must-change\""));
        assert!(
            page.body.contains("密码至少10位"),
            "the rule is stated at the field"
        );
        // A weak password is refused next to its field, the typed passwords not sent back.
        let r = web
            .post_from(
                &page.body,
                "/account/password",
                &[("current", &otp), ("new", "12345"), ("confirm", "12345")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("field-error"), "{}", r.body);
        assert!(!r.body.contains(&otp), "a password is never sent back");
        let r = web
            .post_from(
                &page.body,
                "/account/password",
                &[
                    ("current", &otp),
                    ("new", "renovation-2026"),
                    ("confirm", "renovation-2027"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("两次输入的新密码不一致"));
        let r = web
            .post_from(
                &page.body,
                "/account/password",
                &[
                    ("current", &otp),
                    ("new", "renovation-2026"),
                    ("confirm", "renovation-2026"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location, "/desk");
        let r = web.send("GET", "/desk", None).await;
        assert_eq!(r.status, StatusCode::OK);
        // The events it writes name the member and the account.
        let opened = web.send("GET", "/account", None).await;
        assert!(opened.body.contains("gaofeng"));
        // The old password no longer signs in; the new one does, straight to the desk.
        let mut other = NoJs::new(t);
        let r = other.sign_in_with("gaofeng", &otp, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = other.sign_in_with("gaofeng", "renovation-2026", None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location, "/desk");
        // The access log has each step, with the account and an address.
        let actions: Vec<String> = access_actions(t, &a.id)
            .await
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        for expected in ["sign_in_failed", "sign_in", "password_changed"] {
            assert!(
                actions.iter().any(|a| a == expected),
                "{expected} missing from {actions:?}"
            );
        }
        assert!(access_actions(t, &a.id)
            .await
            .iter()
            .all(|(_, addr)| addr.is_some()));
        w.t.stop().await;
    }
);

both!(
    repeated_failures_lock_the_account_until_unlocked,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let (a, _) = account(
            t,
            "supervisor.li",
            Role::Supervisor,
            None,
            Some("oversight-2026"),
        )
        .await;
        let mut web = NoJs::new(t);
        let started = std::time::Instant::now();
        for i in 1..tiaojie::accounts::LOCK_AFTER {
            let r = web
                .sign_in_with("supervisor.li", "wrong-password-1", None)
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "failure {i}");
        }
        // Failures past the third were answered more slowly.
        assert!(started.elapsed() >= std::time::Duration::from_millis(500));
        let r = web
            .sign_in_with("supervisor.li", "wrong-password-1", None)
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.body.contains("账号已锁定"), "{}", r.body);
        // Locked: even the right password is refused.
        let r = web
            .sign_in_with("supervisor.li", "oversight-2026", None)
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        let actions: Vec<String> = access_actions(t, &a.id)
            .await
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert!(
            actions.contains(&"account_locked".to_string()),
            "{actions:?}"
        );
        // An administrator unlocks it on the accounts page.
        let (_, admin_pw) = ("admin.wang", "administer-2026");
        account(t, "admin.wang", Role::Admin, None, Some(admin_pw)).await;
        let mut admin = NoJs::new(t);
        assert_eq!(
            admin
                .sign_in_with("admin.wang", admin_pw, None)
                .await
                .location,
            "/admin"
        );
        let page = admin.send("GET", "/admin/accounts", None).await;
        assert!(page.body.contains("已锁定"), "the page shows the lock");
        assert!(page.body.contains("id=\"unlock-supervisor.li\""));
        let r = admin
            .post_from(&page.body, &format!("/admin/accounts/{}/unlock", a.id), &[])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = web
            .sign_in_with("supervisor.li", "oversight-2026", None)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location, "/supervision");
        w.t.stop().await;
    }
);

fn code(secret_b32: &str, login: &str) -> String {
    let secret = totp_rs::Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        secret,
        Some("tiaojie".into()),
        login.into(),
    )
    .unwrap()
    .generate_current()
    .unwrap()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len();
    &html[i..i + html[i..].find(end).unwrap()]
}

both!(
    a_second_factor_is_asked_for_once_turned_on,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        account(
            t,
            "duchashi",
            Role::Supervisor,
            None,
            Some("oversight-2026"),
        )
        .await;
        let mut web = NoJs::new(t);
        web.sign_in_with("duchashi", "oversight-2026", None).await;
        let page = web.send("GET", "/account", None).await;
        let r = web.post_from(&page.body, "/account/totp/begin", &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let page = web.send("GET", "/account", None).await;
        assert!(
            page.body.contains("<svg"),
            "a QR code rendered on the server"
        );
        let secret = between(&page.body, "id=\"totp-secret\">", "<").to_string();
        let r = web
            .post_from(&page.body, "/account/totp/confirm", &[("code", "000000")])
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = web
            .post_from(
                &page.body,
                "/account/totp/confirm",
                &[("code", &code(&secret, "duchashi"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        // Now the password alone is not enough: the form asks for the code.
        let mut fresh = NoJs::new(t);
        let r = fresh.sign_in_with("duchashi", "oversight-2026", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(
            r.body.contains("name=\"totp\""),
            "the form gains the code field"
        );
        let r = fresh
            .sign_in_with("duchashi", "oversight-2026", Some("123456"))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("动态验证码不正确"));
        let r = fresh
            .sign_in_with(
                "duchashi",
                "oversight-2026",
                Some(&code(&secret, "duchashi")),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location, "/supervision");
        w.t.stop().await;
    }
);

both!(
    a_removed_member_loses_the_api_and_every_web_session_at_once,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let gao = member_named(t, w.group, "高峰").await;
        let (a, _) = account(
            t,
            "gaofeng",
            Role::Member,
            Some((w.group, gao)),
            Some("mediation-2026"),
        )
        .await;
        let (_, token) =
            tiaojie::auth::create_account_token(&t.app.db, &a, "script", None, t.app.now())
                .await
                .unwrap();
        let mut web = NoJs::new(t);
        assert_eq!(
            web.sign_in_with("gaofeng", "mediation-2026", None)
                .await
                .location,
            "/desk"
        );
        // As a member of the group: the desk, and the group's cases through the API.
        t.call("GET", "/api/v1/cases?limit=5", Some(&token), None)
            .await
            .expect(StatusCode::OK);
        let opened = t
            .call(
                "POST",
                "/api/v1/cases",
                Some(&token),
                Some(w.objection("jingfeng-yuan")),
            )
            .await
            .expect(StatusCode::CREATED);
        let case = opened.json["id"].as_str().unwrap().to_string();
        assert_eq!(web.send("GET", "/desk", None).await.status, StatusCode::OK);
        // The event names the member, the account and the member's name.
        let meta: String = on_db!(&t.app.db, p => sqlx::query_scalar::<_, String>("SELECT CAST(metadata AS TEXT) FROM events WHERE aggregate_id = $1 ORDER BY sequence LIMIT 1").bind(&case).fetch_one(p).await.unwrap());
        let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(meta["member_id"], gao.to_string());
        assert_eq!(meta["account_id"], a.id);
        assert_eq!(meta["actor_name"], "高峰");
        // Removed from the group: at once, no API and no page.
        t.call(
            "DELETE",
            &format!("/api/v1/mediation-groups/{}/members/{gao}", w.group),
            Some(&w.admin),
            Some(json!({"reason": "调离"})),
        )
        .await
        .expect(StatusCode::OK);
        t.call("GET", "/api/v1/cases?limit=5", Some(&token), None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
        t.call(
            "GET",
            &format!("/api/v1/cases/{case}/parties"),
            Some(&token),
            None,
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
        let r = web.send("GET", "/desk", None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(r.location.starts_with("/login"), "{}", r.location);
        let r = NoJs::new(t)
            .sign_in_with("gaofeng", "mediation-2026", None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("不在所属的矛盾调解小组"), "{}", r.body);
        w.t.stop().await;
    }
);

both!(a_leader_change_moves_the_leaders_powers, |b| async move {
    let (_s, w) = world(b).await;
    let t = &w.t;
    t.call(
        "POST",
        &format!("/api/v1/mediation-groups/{}/members", w.group),
        Some(&w.admin),
        Some(
            json!({"name": "张明", "org_role": "street_office", "organisation": "古雁街道办事处"}),
        ),
    )
    .await
    .expect(StatusCode::OK);
    let tian = member_named(t, w.group, "田玉梅").await;
    let zhang = member_named(t, w.group, "张明").await;
    let luo = member_named(t, w.group, "罗军").await;
    let (ta, _) = account(
        t,
        "tianyumei",
        Role::Leader,
        Some((w.group, tian)),
        Some("mediation-2026"),
    )
    .await;
    let (za, _) = account(
        t,
        "zhangming",
        Role::Member,
        Some((w.group, zhang)),
        Some("mediation-2026"),
    )
    .await;
    let now = t.app.now();
    let (_, tian_t) = tiaojie::auth::create_account_token(&t.app.db, &ta, "t", None, now)
        .await
        .unwrap();
    let (_, zhang_t) = tiaojie::auth::create_account_token(&t.app.db, &za, "t", None, now)
        .await
        .unwrap();
    let opened = t
        .call(
            "POST",
            "/api/v1/cases",
            Some(&zhang_t),
            Some(w.objection("meiyuan")),
        )
        .await
        .expect(StatusCode::CREATED);
    let case = opened.json["id"].as_str().unwrap().to_string();
    let assign = format!("/api/v1/cases/{case}/assignment");
    t.call(
        "POST",
        &format!("/api/v1/cases/{case}/acceptance"),
        Some(&zhang_t),
        Some(json!({})),
    )
    .await
    .expect(StatusCode::OK);
    // A member may not assign; the leader may.
    t.call(
        "POST",
        &assign,
        Some(&zhang_t),
        Some(json!({"assignee": luo})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    t.call(
        "POST",
        &assign,
        Some(&tian_t),
        Some(json!({"assignee": luo})),
    )
    .await
    .expect(StatusCode::OK);
    // The group's events make 张明 the leader: the powers move with them, at once.
    t.call(
        "PUT",
        &format!("/api/v1/mediation-groups/{}/leader", w.group),
        Some(&w.admin),
        Some(json!({"member_id": zhang, "reason": "工作调整"})),
    )
    .await
    .expect(StatusCode::OK);
    t.call(
        "POST",
        &assign,
        Some(&tian_t),
        Some(json!({"assignee": zhang})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    t.call(
        "POST",
        &assign,
        Some(&zhang_t),
        Some(json!({"assignee": zhang})),
    )
    .await
    .expect(StatusCode::OK);
    let closure = format!("/api/v1/cases/{case}/closure");
    let body = json!({"outcome": "withdrawn", "summary": "申请人撤回"});
    t.call("POST", &closure, Some(&tian_t), Some(body.clone()))
        .await
        .expect(StatusCode::FORBIDDEN);
    let r = t.call("POST", &closure, Some(&zhang_t), Some(body)).await;
    assert_ne!(r.status, StatusCode::FORBIDDEN, "{:?}", r.json);
    // The web page says who is who.
    let mut web = NoJs::new(t);
    web.sign_in_with("zhangming", "mediation-2026", None).await;
    let page = web.send("GET", "/account", None).await;
    assert!(page.body.contains("调解小组组长"), "{}", page.body);
    w.t.stop().await;
});

both!(
    a_kiosk_stays_signed_in_past_twelve_hours_until_revoked,
    |b| async move {
        let store = Store::new(b).await;
        let clock = Arc::new(ManualClock::new(t0()));
        let t = TestApp::start(&store, Some(clock.clone())).await;
        account(&t, "admin.wang", Role::Admin, None, Some("administer-2026")).await;
        let mut admin = NoJs::new(&t);
        admin
            .sign_in_with("admin.wang", "administer-2026", None)
            .await;
        let page = admin.send("GET", "/admin/accounts", None).await;
        // A refused form keeps what was typed and says why next to the field.
        let r = admin
            .post_from(
                &page.body,
                "/admin/kiosks",
                &[("name", ""), ("organisation", "指挥中心")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = admin
            .post_from(
                &page.body,
                "/admin/kiosks",
                &[
                    ("name", "指挥中心大屏"),
                    ("organisation", "原州区社会治理指挥中心"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let key = between(&r.body, "id=\"issued-secret\">", "<").to_string();
        let mut screen = NoJs::new(&t);
        let form = screen.send("GET", "/kiosk", None).await;
        let csrf = hidden(&form.body, "_csrf");
        let r = screen
            .send(
                "POST",
                "/kiosk",
                Some(&[("_csrf", &csrf), ("key", "tj_wrong")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let form = screen.send("GET", "/kiosk", None).await;
        let csrf = hidden(&form.body, "_csrf");
        let r = screen
            .send("POST", "/kiosk", Some(&[("_csrf", &csrf), ("key", &key)]))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location, "/screen", "a kiosk opens on the wall screen");
        let page = screen.send("GET", "/screen", None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.location);
        assert!(
            page.body.contains("指挥中心大屏"),
            "the screen shows which screen it is"
        );
        assert!(
            !page.body.contains("id=\"logout\""),
            "and offers no sign-out"
        );
        // A dashboard sees counts only.
        assert_ne!(
            screen.send("GET", "/desk", None).await.status,
            StatusCode::OK
        );
        // Thirteen hours on (refreshing every hour), a person's session has ended; the
        // screen's has not.
        for _ in 0..13 {
            clock.advance(time::Duration::hours(1));
            assert_eq!(
                screen.send("GET", "/screen", None).await.status,
                StatusCode::OK
            );
        }
        let r = admin.send("GET", "/admin/accounts", None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(r.location.starts_with("/login"));
        // Revoked from the administrators' page, it is signed out at once.
        admin
            .sign_in_with("admin.wang", "administer-2026", None)
            .await;
        let page = admin.send("GET", "/admin/accounts", None).await;
        let kiosk = tiaojie::accounts::list(&t.app)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.kind == tiaojie::accounts::Kind::Kiosk)
            .unwrap();
        let r = admin
            .post_from(
                &page.body,
                &format!("/admin/accounts/{}/disable", kiosk.id),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = screen.send("GET", "/dashboard", None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        t.stop().await;
    }
);

both!(
    accounts_are_made_and_refused_on_the_administrators_page,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        account(t, "admin.wang", Role::Admin, None, Some("administer-2026")).await;
        let mut admin = NoJs::new(t);
        admin
            .sign_in_with("admin.wang", "administer-2026", None)
            .await;
        let page = admin.send("GET", "/admin/accounts", None).await;
        assert_eq!(page.status, StatusCode::OK);
        let luo = member_named(t, w.group, "罗军").await;
        let member = format!("{}:{luo}", w.group);
        assert!(page.body.contains(&member), "unlinked members are offered");
        // Refused: a bad login, and a member's account without its member; nothing is stored.
        let r = admin
            .post_from(
                &page.body,
                "/admin/accounts",
                &[
                    ("login", "罗军"),
                    ("name", "罗军"),
                    ("role", "member"),
                    ("member", &member),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("登录名为3至32位"));
        let r = admin
            .post_from(
                &page.body,
                "/admin/accounts",
                &[
                    ("login", "luojun"),
                    ("name", "罗军"),
                    ("role", "member"),
                    ("member", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(tiaojie::accounts::list(&t.app).await.unwrap().len(), 1);
        let r = admin
            .post_from(
                &page.body,
                "/admin/accounts",
                &[
                    ("login", "luojun"),
                    ("name", "罗军"),
                    ("role", "member"),
                    ("member", &member),
                    ("phone", "13900001111"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let otp = between(&r.body, "id=\"issued-secret\">", "<").to_string();
        let created = tiaojie::accounts::by_login(&t.app, "luojun")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(created.member_id, Some(luo));
        // The phone is sealed: not in the row in clear, and opens with the account's key.
        assert!(!created
            .phone_sealed
            .clone()
            .unwrap()
            .contains("13900001111"));
        assert_eq!(
            tiaojie::accounts::phone(&t.app, &created)
                .await
                .unwrap()
                .as_deref(),
            Some("13900001111")
        );
        let r = admin
            .post_from(
                &page.body,
                "/admin/accounts",
                &[
                    ("login", "luojun"),
                    ("name", "罗军"),
                    ("role", "member"),
                    ("member", &member),
                ],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a login is taken once"
        );
        let mut luo_web = NoJs::new(t);
        assert_eq!(
            luo_web.sign_in_with("luojun", &otp, None).await.location,
            "/account?must=password"
        );
        // Disabled: the session ends and the account's tokens are revoked.
        let (_, token) =
            tiaojie::auth::create_account_token(&t.app.db, &created, "x", None, t.app.now())
                .await
                .unwrap();
        t.call("GET", "/api/v1/cases", Some(&token), None)
            .await
            .expect(StatusCode::OK);
        let r = admin
            .post_from(
                &page.body,
                &format!("/admin/accounts/{}/disable", created.id),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        t.call("GET", "/api/v1/cases", Some(&token), None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
        assert_eq!(
            luo_web.send("GET", "/account", None).await.status,
            StatusCode::SEE_OTHER
        );
        // Reset: a new one-time password, shown once.
        let r = admin
            .post_from(
                &page.body,
                &format!("/admin/accounts/{}/reset", created.id),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = admin
            .post_from(
                &page.body,
                &format!("/admin/accounts/{}/enable", created.id),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = luo_web.sign_in_with("luojun", &otp, None).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "the old one-time password is gone"
        );
        // Adding a member on the administration page creates their account in one go; a
        // login that is taken is refused before anything is written.
        let groups_page = admin.send("GET", "/admin", None).await;
        let add = format!("/admin/groups/{}/do/add_member", w.group);
        let members_now = || async {
            t.app
                .directory
                .group_state(&w.group)
                .await
                .unwrap()
                .unwrap()
                .members
                .len()
        };
        let members_before = members_now().await;
        let r = admin
            .post_from(
                &groups_page.body,
                &add,
                &[
                    ("name", "马丽"),
                    ("org_role", "residents_committee"),
                    ("organisation", "梅园社区居委会"),
                    ("login", "admin.wang"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("该登录名已被使用"), "{}", r.body);
        assert_eq!(members_now().await, members_before, "nothing written");
        let r = admin
            .post_from(
                &groups_page.body,
                &add,
                &[
                    ("name", "马丽"),
                    ("org_role", "residents_committee"),
                    ("organisation", "梅园社区居委会"),
                    ("login", "mali"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let otp = between(&r.body, "id=\"issued-secret\">", "<").to_string();
        assert_eq!(members_now().await, members_before + 1);
        let ma = member_named(t, w.group, "马丽").await;
        let created = tiaojie::accounts::by_login(&t.app, "mali")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(created.member_id, Some(ma));
        assert_eq!(
            NoJs::new(t).sign_in_with("mali", &otp, None).await.location,
            "/account?must=password"
        );
        w.t.stop().await;
    }
);

both!(
    moving_a_community_moves_its_open_cases_and_their_history_says_so,
    |b| async move {
        let (_s, w) = world(b).await;
        let t = &w.t;
        let groups = t.app.directory.groups_now().await.unwrap();
        let (other, _) = groups
            .iter()
            .find(|(_, g)| g.name == "西关北街片区矛盾调解小组")
            .unwrap();
        let other = *other;
        let gao = member_named(t, w.group, "高峰").await;
        let wang = member_named(t, other, "王建国").await;
        let other_leader = t.token(Role::Leader, Some(other)).await;
        // An open case in 梅园, assigned to 高峰 of the first group.
        let opened = t
            .call(
                "POST",
                "/api/v1/cases",
                Some(&w.member),
                Some(w.objection("meiyuan")),
            )
            .await
            .expect(StatusCode::CREATED);
        let case = opened.json["id"].as_str().unwrap().to_string();
        t.call(
            "POST",
            &format!("/api/v1/cases/{case}/acceptance"),
            Some(&w.member),
            Some(json!({})),
        )
        .await
        .expect(StatusCode::OK);
        t.call(
            "POST",
            &format!("/api/v1/cases/{case}/assignment"),
            Some(&w.leader),
            Some(json!({"assignee": gao})),
        )
        .await
        .expect(StatusCode::OK);
        t.app.read.catch_up().await.unwrap();
        // A community with open cases cannot simply be released.
        let r = t
            .call(
                "PUT",
                &format!("/api/v1/mediation-groups/{}/communities", w.group),
                Some(&w.admin),
                Some(json!({"add": [], "remove": ["meiyuan"]})),
            )
            .await;
        assert!(r.status.is_client_error(), "{:?}", r.json);
        assert_eq!(r.json["code"], "community_has_open_cases", "{:?}", r.json);
        // Refused moves change nothing: no reason, the same group, a community not covered.
        let mv = |g: &tiaojie_events::GroupId, c: &str| {
            format!("/api/v1/mediation-groups/{g}/communities/{c}/move")
        };
        let before: i64 = on_db!(&t.app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap());
        for (path, body) in [
            (mv(&w.group, "meiyuan"), json!({"to": other, "reason": " "})),
            (
                mv(&w.group, "meiyuan"),
                json!({"to": w.group, "reason": "调整"}),
            ),
            (
                mv(&w.group, "shuiwu"),
                json!({"to": other, "reason": "调整"}),
            ),
            (mv(&w.group, "meiyuan"), json!({"to": other})),
        ] {
            let r = t
                .call("POST", &path, Some(&w.admin), Some(body.clone()))
                .await;
            assert!(r.status.is_client_error(), "{body} gave {}", r.status);
            assert!(r.is_problem(), "{body}");
        }
        t.call(
            "POST",
            &mv(&w.group, "meiyuan"),
            Some(&w.member),
            Some(json!({"to": other, "reason": "调整"})),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
        let after: i64 = on_db!(&t.app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap());
        assert_eq!(before, after, "refusals store nothing");
        // The move: the community and its open case go to the other group.
        let r = t
            .call(
                "POST",
                &mv(&w.group, "meiyuan"),
                Some(&w.admin),
                Some(json!({"to": other, "reason": "片区调整，梅园划归西关北街片区"})),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(r.json["cases_moved"], 1, "{:?}", r.json);
        assert_eq!(r.json["unassigned"], 1, "{:?}", r.json);
        let state = t.app.directory.groups_now().await.unwrap();
        let has = |g: tiaojie_events::GroupId| {
            state
                .iter()
                .find(|(id, _)| *id == g)
                .unwrap()
                .1
                .communities
                .iter()
                .any(|c| c.as_str() == "meiyuan")
        };
        assert!(!has(w.group) && has(other));
        // The case's history says so, and its assignee (not in the new group) is unassigned.
        let h = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}/history"),
                Some(&other_leader),
                None,
            )
            .await
            .expect(StatusCode::OK);
        let text = h.json.to_string();
        assert!(text.contains("CaseTransferred"), "{text}");
        // The old group no longer sees it; the new one does, and assigns within itself.
        t.call(
            "GET",
            &format!("/api/v1/cases/{case}"),
            Some(&w.member),
            None,
        )
        .await
        .expect(StatusCode::FORBIDDEN);
        t.app.read.catch_up().await.unwrap();
        let c = t
            .call(
                "GET",
                &format!("/api/v1/cases/{case}"),
                Some(&other_leader),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert!(c.json["assignee"].is_null(), "{:?}", c.json);
        assert_eq!(c.json["group_id"], other.to_string(), "{:?}", c.json);
        let assign = format!("/api/v1/cases/{case}/assignment");
        let r = t
            .call(
                "POST",
                &assign,
                Some(&other_leader),
                Some(json!({"assignee": gao})),
            )
            .await;
        assert!(
            r.status.is_client_error(),
            "a member of the old group cannot be assigned"
        );
        t.call(
            "POST",
            &assign,
            Some(&other_leader),
            Some(json!({"assignee": wang})),
        )
        .await
        .expect(StatusCode::OK);
        // Running the move again (after an interruption, say) finds nothing left to do.
        let r = t
            .call(
                "POST",
                &mv(&w.group, "meiyuan"),
                Some(&w.admin),
                Some(json!({"to": other, "reason": "重复提交"})),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(r.json["cases_moved"], 0, "{:?}", r.json);
        // On the administration page: the group's last community is not moved, and nothing
        // is written; the refusal is next to the form's field.
        account(t, "admin.wang", Role::Admin, None, Some("administer-2026")).await;
        let mut admin = NoJs::new(t);
        admin
            .sign_in_with("admin.wang", "administer-2026", None)
            .await;
        let page = admin.send("GET", "/admin", None).await;
        let action = format!("/admin/groups/{}/move", w.group);
        assert!(page.body.contains(&action), "each group offers the move");
        let before: i64 = on_db!(&t.app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap());
        let other_s = other.to_string();
        let r = admin
            .post_from(
                &page.body,
                &action,
                &[
                    ("community", "jingfeng-yuan"),
                    ("to", &other_s),
                    ("reason", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("请填写移交理由"), "{}", r.body);
        let r = admin
            .post_from(
                &page.body,
                &action,
                &[
                    ("community", "jingfeng-yuan"),
                    ("to", &other_s),
                    ("reason", "片区调整"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("至少负责一个小区"), "{}", r.body);
        let after: i64 = on_db!(&t.app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap());
        assert_eq!(before, after);
        // Moved back through the page, it works there too.
        let back = format!("/admin/groups/{other}/move");
        let g = w.group.to_string();
        let r = admin
            .post_from(
                &page.body,
                &back,
                &[("community", "meiyuan"), ("to", &g), ("reason", "撤销调整")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert!(
            r.location.starts_with("/admin?done=moved&cases=1"),
            "{}",
            r.location
        );
        let v = tiaojie_projections::log::verify(&t.app.db).await.unwrap();
        assert!(v.ok, "{v:?}");
        w.t.stop().await;
    }
);
