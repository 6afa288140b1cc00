//! Notifications. Webhooks reach another platform's receiver signed, with an idempotency
//! id and no personal data, at least once, though the receiver is down for a while and the
//! server restarts in between. The daily digest reaches each leader by mail (a local SMTP
//! sink, Python's aiosmtpd), once a day.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tiaojie::webhooks::{self, Endpoint};
use tiaojie_projections::on_db;
use tiaojie_tests::*;

const SECRET: &str = "a-shared-secret-of-the-platform";

type Got = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// The other platform: records every POST and answers 200.
async fn receiver(port: u16, got: Got) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                got.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the receiver's port");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn outbox(t: &TestApp) -> Vec<(String, String, i64, Option<String>, Option<String>)> {
    on_db!(&t.app.db, p => {
        sqlx::query_as::<_, (String, String, i64, Option<String>, Option<String>)>("SELECT delivery_id, event, attempts, delivered_at, last_error FROM webhook_outbox ORDER BY delivery_id")
            .fetch_all(p).await.unwrap()
    })
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both!(
    webhooks_arrive_signed_once_each_though_the_receiver_was_down_and_the_server_restarted,
    |b| async move {
        let port = free_port();
        let endpoint = Endpoint {
            name: "platform".into(),
            url: format!("http://127.0.0.1:{port}/hook"),
            secret: SECRET.into(),
            events: webhooks::EVENTS.iter().map(|e| e.to_string()).collect(),
        };
        let clock = Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (store, w) = world_with(b, Some(clock.clone()), |s| {
            s.webhooks = vec![endpoint.clone()]
        })
        .await;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let run = tokio::spawn(webhooks::run(w.t.app.clone(), rx));
        // The first round starts reading at the trail's end: the world's setting up is not sent.
        until("the cursor", || async {
            on_db!(&w.t.app.db, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_cursor").fetch_one(p).await.unwrap()) == 1
        })
        .await;
        let party = w.parties["meiyuan"].clone();
        let id = open_case_id(&w.t, &w.member, objection_naming("meiyuan", &party)).await;
        let call = |path: String, token: &str, body: Value| {
            let (t, token) = (&w.t, token.to_string());
            async move {
                t.call("POST", &path, Some(&token), Some(body))
                    .await
                    .expect(StatusCode::OK)
            }
        };
        call(
            format!("/api/v1/cases/{id}/acceptance"),
            &w.member,
            json!({}),
        )
        .await;
        call(
            format!("/api/v1/cases/{id}/escalations"),
            &w.leader,
            json!({"route": "leadership_group", "reason": "涉及规划调整"}),
        )
        .await;
        let order = call(
            format!("/api/v1/cases/{id}/supervision-orders"),
            &w.supervisor,
            json!({"instructions": "请三日内报告处置情况", "respond_by": t0().plus_days(3).to_canonical()}),
        )
        .await
        .json["created_id"]
            .as_str()
            .unwrap()
            .to_string();
        // The receiver is down: both are kept and tried, and fail.
        until("two failed attempts", || async {
            let rows = outbox(&w.t).await;
            rows.len() == 2
                && rows
                    .iter()
                    .all(|r| r.2 >= 1 && r.3.is_none() && r.4.is_some())
        })
        .await;
        // The server stops and starts again (its deadline passed meanwhile); the receiver
        // comes up.
        let _ = stop.send(true);
        run.await.unwrap();
        let members = w.member.clone();
        w.t.stop().await;
        clock.advance(time::Duration::days(4));
        let mut s = settings(&store.url);
        s.webhooks = vec![endpoint.clone()];
        let t = TestApp::start_with(&store, Some(clock.clone()), s, true).await;
        t.app.read.catch_up().await.unwrap();
        let got: Got = Arc::default();
        let server = receiver(port, got.clone()).await;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let run = tokio::spawn(webhooks::run(t.app.clone(), rx));
        until("the escalation, the order and the overdue case", || async {
            let rows = outbox(&t).await;
            rows.len() == 3 && rows.iter().all(|r| r.3.is_some())
        })
        .await;
        // Answering the order is told too.
        t.call(
            "POST",
            &format!("/api/v1/cases/{id}/supervision-orders/{order}/answer"),
            Some(&members),
            Some(json!({"answer": "已会同派出所处置"})),
        )
        .await
        .expect(StatusCode::OK);
        until("the answer", || async {
            let rows = outbox(&t).await;
            rows.len() == 4 && rows.iter().all(|r| r.3.is_some())
        })
        .await;
        let _ = stop.send(true);
        run.await.unwrap();
        // What arrived: each signed, with its id, no personal data, every kind once at least.
        let got = got.lock().unwrap().clone();
        let mut events = std::collections::BTreeMap::new();
        for (headers, body) in &got {
            let h = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let ts = h("x-tiaojie-timestamp");
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(format!("{ts}.").as_bytes());
            mac.update(body);
            assert_eq!(
                h("x-tiaojie-signature"),
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
                "signed"
            );
            let v: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(
                v["id"],
                h("x-tiaojie-delivery"),
                "the idempotency id, in both"
            );
            assert_eq!(v["event"], h("x-tiaojie-event"));
            assert_eq!(v["case_id"], id.as_str());
            let text = String::from_utf8_lossy(body);
            // The world's parties are 马秀英, phone 13895412345. (A bare "138" also
            // matched random ids now and then.)
            assert!(
                !text.contains("马秀英") && !text.contains("13895412345") && !text.contains("张"),
                "no personal data: {text}"
            );
            events.insert(h("x-tiaojie-event"), v);
        }
        assert_eq!(
            events.keys().cloned().collect::<Vec<_>>(),
            [
                "case.escalated",
                "case.overdue",
                "supervision_order.answered",
                "supervision_order.issued"
            ]
        );
        assert_eq!(
            events["case.overdue"]["due_kind"], "supervision_order",
            "{:?}",
            events
        );
        assert_eq!(events["case.escalated"]["community"], "meiyuan");
        // Delivered means delivered: at least once, and here exactly once each.
        let mut ids: Vec<&str> = got
            .iter()
            .map(|(h, _)| h["x-tiaojie-delivery"].to_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4);
        // Enqueueing again stores nothing new: the ids are those of what is reported.
        assert_eq!(webhooks::enqueue_overdue(&t.app).await.unwrap(), 0);
        assert_eq!(outbox(&t).await.len(), 4);
        let counts = webhooks::counts(&t.app).await.unwrap();
        assert_eq!(
            (counts.waiting, counts.delivered, counts.given_up),
            (0, 4, 0)
        );
        server.abort();
        t.stop().await;
    }
);

#[test]
fn endpoints_are_checked_when_read() {
    let good = Endpoint {
        name: "platform".into(),
        url: "https://example.org/hook".into(),
        secret: "sixteen-chars-ok".into(),
        events: vec!["case.overdue".into()],
    };
    assert!(webhooks::validate(std::slice::from_ref(&good)).is_ok());
    let bad = |f: fn(&mut Endpoint)| {
        let mut e = good.clone();
        f(&mut e);
        webhooks::validate(&[e]).unwrap_err()
    };
    assert!(bad(|e| e.url = "ftp://example.org".into()).contains("url"));
    assert!(bad(|e| e.secret = "short".into()).contains("secret"));
    assert!(bad(|e| e.events = vec!["case.closed".into()]).contains("case.closed"));
    assert!(bad(|e| e.name = "has space".into()).contains("name"));
    assert!(webhooks::validate(&[good.clone(), good.clone()])
        .unwrap_err()
        .contains("twice"));
    assert!(
        !format!("{good:?}").contains("sixteen"),
        "the secret is not printed"
    );
    assert_eq!(webhooks::backoff(0), Duration::from_secs(5));
    assert_eq!(webhooks::backoff(3), Duration::from_secs(40));
    assert_eq!(webhooks::backoff(30), Duration::from_secs(3600));
}

/// A local SMTP sink (Python's aiosmtpd): each message it takes is written to `dir` as JSON
/// (to, subject, body), decoded as a mail program would show it.
/// The sink's process, stopped when dropped (a failing test leaves none behind).
struct Sink(std::process::Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_sink(port: u16, dir: &std::path::Path) -> Sink {
    let script = r#"
import asyncio, email, email.policy, json, os, sys, time
from aiosmtpd.controller import Controller
out = sys.argv[2]
class Keep:
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.content, policy=email.policy.default)
        n = len(os.listdir(out))
        with open(os.path.join(out, f"{n}.json"), "w") as f:
            json.dump({"to": envelope.rcpt_tos, "subject": str(m["subject"]), "body": m.get_content()}, f)
        return "250 OK"
c = Controller(Keep(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
while True:
    time.sleep(1)
"#;
    let ok = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the digest test needs Python's aiosmtpd as its SMTP sink: pip install aiosmtpd \
         (tests/run.sh installs it)"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, &port.to_string(), dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the SMTP sink");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let sink = Sink(child);
    assert_eq!(line.trim(), "ready", "the SMTP sink started");
    sink
}

both!(
    the_daily_digest_goes_to_each_leader_by_mail_once_a_day,
    |b| async move {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("tiaojie-smtp-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sink = smtp_sink(port, &dir);
        // 2022-05-01 10:00 in Beijing: past the digest's hour.
        let clock = Arc::new(tiaojie_events::ManualClock::new(t0()));
        let (_store, w) = world_at(b, Some(clock.clone())).await;
        let party = w.parties["meiyuan"].clone();
        let late = open_case_id(&w.t, &w.member, objection_naming("meiyuan", &party)).await;
        clock.advance(time::Duration::days(3));
        let fresh = open_case_id(&w.t, &w.member, w.objection("meiyuan")).await;
        w.t.app.read.catch_up().await.unwrap();
        let mut s = (*w.t.app.settings).clone();
        s.digest = Some(tiaojie::digest::DigestConfig {
            smtp: format!("smtp://127.0.0.1:{port}"),
            from: "tiaojie@street.example".into(),
            hour: 8,
            public_url: Some("https://tiaojie.example/".into()),
            to: vec![tiaojie::digest::Recipient {
                group: w.group.to_string(),
                email: "leader@street.example".into(),
            }],
        });
        let app = w.t.app.with_settings(s);
        assert_eq!(tiaojie::digest::send_due(&app).await.unwrap(), 1);
        assert_eq!(
            tiaojie::digest::send_due(&app).await.unwrap(),
            0,
            "once a day, however often the loop runs"
        );
        let read = |n: usize| -> Value {
            let path = dir.join(format!("{n}.json"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while !path.exists() {
                assert!(Instant::now() < deadline, "no mail {n} in the sink");
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(100));
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
        };
        let mail = read(0);
        assert_eq!(mail["to"], json!(["leader@street.example"]));
        let subject = mail["subject"].as_str().unwrap();
        assert!(
            subject.contains("南城路片区矛盾调解小组") && subject.contains("2022-05-04"),
            "{subject}"
        );
        let body = mail["body"].as_str().unwrap();
        let number = |id: &str| {
            let w = &w;
            let id = id.to_string();
            async move {
                w.t.call("GET", &format!("/api/v1/cases/{id}"), Some(&w.leader), None)
                    .await
                    .expect(StatusCode::OK)
                    .json["case_number"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let (late_no, fresh_no) = (number(&late).await, number(&fresh).await);
        let overdue = body.split("3天内到期").next().unwrap();
        assert!(
            overdue.contains("逾期案件（1件）") && overdue.contains(&late_no),
            "{body}"
        );
        assert!(!overdue.contains(&fresh_no), "{body}");
        assert!(
            body.contains("https://tiaojie.example/desk?overdue=1"),
            "{body}"
        );
        assert!(
            body.contains(&fresh_no),
            "the new case awaits acceptance: {body}"
        );
        assert!(body.contains("梅园小区"));
        let name =
            w.t.call(
                "GET",
                &format!("/api/v1/parties/{party}"),
                Some(&w.leader),
                None,
            )
            .await
            .json["name"]
                .as_str()
                .unwrap_or("张")
                .to_string();
        assert!(!body.contains(&name), "no party's name in the mail: {body}");
        // The next day, the next digest.
        clock.advance(time::Duration::days(1));
        assert_eq!(tiaojie::digest::send_due(&app).await.unwrap(), 1);
        assert!(read(1)["subject"].as_str().unwrap().contains("2022-05-05"));
        drop(sink);
        let _ = std::fs::remove_dir_all(&dir);
        w.t.stop().await;
    }
);

#[test]
fn a_digest_needs_a_usable_relay_and_addresses() {
    let good = tiaojie::digest::DigestConfig {
        smtp: "smtp://127.0.0.1:2525".into(),
        from: "tiaojie@street.example".into(),
        hour: 8,
        public_url: None,
        to: vec![],
    };
    assert!(tiaojie::digest::validate(&good).is_ok());
    let mut bad = good.clone();
    bad.hour = 24;
    assert!(tiaojie::digest::validate(&bad)
        .unwrap_err()
        .contains("hour"));
    let mut bad = good.clone();
    bad.from = "not an address".into();
    assert!(tiaojie::digest::validate(&bad)
        .unwrap_err()
        .contains("from"));
    let mut bad = good.clone();
    bad.smtp = "gopher://x".into();
    assert!(tiaojie::digest::validate(&bad)
        .unwrap_err()
        .contains("smtp"));
}
