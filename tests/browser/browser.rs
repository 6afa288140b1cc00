//! The web interface in a real browser: Debian's Chromium, headless, driven over the
//! DevTools protocol from Rust (`headless_chrome`), against the real router served on a real
//! port, over the real store on both backends. A member opens a case through the form, has a
//! rule refuse an input (and sees the message next to the field with nothing lost), records a
//! session and an agreement; the leader closes it; a supervisor finds it in the audit trail
//! and verifies the chain; the dashboard updates live when an incident is recorded, without a
//! reload. Screenshots of every page go to `target/screenshots/` for review.
//!
//! Chromium is required: when it is missing the test fails with a message saying how to
//! install it (`.ci/run` and `tests/run.sh` install it); it is never skipped.
//!
//! The second half checks the web edge without JavaScript, through the router itself:
//! sign-in, CSRF refusals, sign-out, roles.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::types::Bounds;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{json, Value};
use tiaojie_events::metadata::Role;
use tiaojie_projections::on_db;
use tiaojie_tests::*;

const COMMUNITY: &str = "meiyuan";
const RESIDENT: &str = "张三丰";
const PHONE: &str = "13812345678";

fn chromium_path() -> PathBuf {
    let candidates = [
        std::env::var("CHROME").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
        "/usr/bin/google-chrome".into(),
    ];
    candidates
        .iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "Chromium is needed for the browser tests and was not found: install Debian's \
                 `chromium` (apt-get install chromium), or set CHROME to its path"
            )
        })
}

fn launch() -> Browser {
    let options = LaunchOptions::default_builder()
        .path(Some(chromium_path()))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1366, 900)))
        .idle_browser_timeout(Duration::from_secs(180))
        .build()
        .expect("launch options");
    Browser::new(options).expect("start Chromium")
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// A JavaScript string literal.
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

/// One browser tab of one signed-in person.
struct Page {
    tab: Arc<Tab>,
    base: String,
    prefix: String,
}

impl Page {
    fn new(tab: Arc<Tab>, base: &str, prefix: String) -> Page {
        tab.set_default_timeout(Duration::from_secs(30));
        Page {
            tab,
            base: base.to_string(),
            prefix,
        }
    }

    fn go(&self, path: &str) {
        self.tab
            .navigate_to(&format!("{}{}", self.base, path))
            .expect("navigate");
        self.tab.wait_until_navigated().expect("page loads");
        self.wait("document.readyState === 'complete'", "the page to load");
    }

    fn js(&self, expr: &str) -> Value {
        self.tab
            .evaluate(expr, false)
            .unwrap_or_else(|e| panic!("evaluating {expr}: {e}"))
            .value
            .unwrap_or(Value::Null)
    }

    fn exists(&self, sel: &str) -> bool {
        self.js(&format!("document.querySelector({}) !== null", q(sel))) == json!(true)
    }

    fn text(&self, sel: &str) -> String {
        self.js(&format!(
            "(function(){{var e=document.querySelector({});return e?e.textContent.trim():null}})()",
            q(sel)
        ))
        .as_str()
        .unwrap_or_else(|| panic!("no element {sel} on {}", self.tab.get_url()))
        .to_string()
    }

    fn value(&self, sel: &str) -> String {
        self.js(&format!("document.querySelector({}).value", q(sel)))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn set(&self, sel: &str, value: &str) {
        let ok = self.js(&format!(
            "(function(){{var e=document.querySelector({});if(!e)return false;e.value={};\
             e.dispatchEvent(new Event('input',{{bubbles:true}}));\
             e.dispatchEvent(new Event('change',{{bubbles:true}}));return e.value==={}}})()",
            q(sel),
            q(value),
            q(value)
        ));
        assert_eq!(
            ok,
            json!(true),
            "could not set {sel} to {value} on {}",
            self.tab.get_url()
        );
    }

    fn type_into(&self, sel: &str, text: &str) {
        self.set(sel, "");
        self.tab
            .find_element(sel)
            .unwrap_or_else(|e| panic!("{sel}: {e}"))
            .click()
            .expect("focus");
        self.tab.type_str(text).expect("type");
        assert_eq!(self.value(sel), text, "typed into {sel}");
    }

    fn open_step(&self, action: &str) {
        assert!(
            self.exists(&format!("#form-{action}")),
            "no form for {action} on {}: steps offered: {}",
            self.tab.get_url(),
            self.js("Array.from(document.querySelectorAll('details.step')).map(d=>d.id).join(',')")
        );
        self.js(&format!(
            "document.getElementById('form-{action}').open = true"
        ));
    }

    /// Clicks a submit button with the mouse and waits for the next page.
    fn submit(&self, sel: &str) {
        self.js("window.__tj_previous_page = true");
        self.tab
            .find_element(sel)
            .unwrap_or_else(|e| panic!("{sel}: {e}"))
            .click()
            .unwrap_or_else(|e| panic!("click {sel}: {e}"));
        self.wait(
            "typeof window.__tj_previous_page === 'undefined' && document.readyState === 'complete'",
            &format!("the answer to {sel}"),
        );
    }

    fn wait(&self, cond: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .tab
                .evaluate(&format!("!!({cond})"), false)
                .ok()
                .and_then(|r| r.value)
                == Some(json!(true));
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let body = self
                    .tab
                    .evaluate("document.body ? document.body.innerText : ''", false)
                    .ok()
                    .and_then(|r| r.value)
                    .unwrap_or_default();
                panic!(
                    "waited 30 s for {what} on {}; the page says: {}",
                    self.tab.get_url(),
                    body.as_str()
                        .unwrap_or_default()
                        .chars()
                        .take(1500)
                        .collect::<String>()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn path(&self) -> String {
        let url = self.tab.get_url();
        url.strip_prefix(&self.base).unwrap_or(&url).to_string()
    }

    fn shot(&self, name: &str) {
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .expect("screenshot");
        assert!(png.len() > 1000, "an empty screenshot of {name}");
        std::fs::write(
            screenshots_dir().join(format!("{}-{name}.png", self.prefix)),
            png,
        )
        .expect("write screenshot");
    }

    fn resize(&self, width: u32, height: u32) {
        self.tab
            .set_bounds(Bounds::Normal {
                left: Some(0),
                top: Some(0),
                width: Some(width as f64),
                height: Some(height as f64),
            })
            .expect("resize");
        self.wait(
            &format!("window.innerWidth === {width}"),
            "the window to resize",
        );
    }

    /// The page's viewport set to exactly `width`×`height` CSS pixels at 100 % zoom, as a
    /// wall screen shows it (a window's size includes the browser's own parts).
    fn viewport(&self, width: u32, height: u32) {
        use headless_chrome::protocol::cdp::Emulation::SetDeviceMetricsOverride;
        self.tab
            .call_method(SetDeviceMetricsOverride {
                width,
                height,
                device_scale_factor: 1.0,
                mobile: false,
                scale: None,
                screen_width: Some(width),
                screen_height: Some(height),
                position_x: None,
                position_y: None,
                dont_set_visible_size: None,
                screen_orientation: None,
                viewport: None,
                display_feature: None,
                device_posture: None,
            })
            .expect("set the viewport");
        self.wait(
            &format!("window.innerWidth === {width} && window.innerHeight === {height}"),
            "the viewport to take its size",
        );
    }

    fn sign_in(&self, token: &str) {
        self.go("/login");
        self.shot("login");
        // Tokens are pasted, not typed.
        self.set("#token", token);
        self.submit("#sign-in");
        assert!(
            !self.path().starts_with("/login"),
            "sign-in failed: {}",
            self.text("body")
        );
    }
}

/// Serves the real router with its read side on a free port.
async fn serve(t: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let router = t.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    format!("http://{addr}")
}

fn beijing_input(offset_hours: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::hours(8 + offset_hours);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

both!(
    a_mediation_in_the_browser_from_intake_to_the_dashboard,
    |b| async move {
        let store = Store::new(b).await;
        let t = Arc::new(TestApp::start(&store, None).await);
        let (group, _, _, _) = form_group(&t.app, "梅园调解小组", &[COMMUNITY]).await;
        let member = t.token(Role::Member, Some(group)).await;
        let leader = t.token(Role::Leader, Some(group)).await;
        let supervisor = t.token(Role::Supervisor, None).await;
        let dashboard = t.token(Role::Dashboard, None).await;
        let admin = t.token(Role::Admin, None).await;
        let base = serve(&t).await;
        let prefix = match b {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let handle = tokio::runtime::Handle::current();
        let t2 = t.clone();
        tokio::task::spawn_blocking(move || {
        let browser = launch();

        // ── The member at the desk ──────────────────────────────────────────────────
        let ctx = browser.new_context().expect("context");
        let m = Page::new(ctx.new_tab().expect("tab"), &base, format!("{prefix}-member"));
        m.go("/desk");
        assert!(m.path().starts_with("/login"), "the desk asks for sign-in first");
        m.sign_in(&member);
        assert!(m.path().starts_with("/desk"), "members land on the desk");
        assert_eq!(m.js("document.documentElement.lang"), json!("zh-CN"));
        m.shot("desk-empty");
        m.go("/cases/new");
        m.set("#community", COMMUNITY);
        m.set("#category", "cause.cost-sharing");
        let summary = "居民对屋面防水改造费用分摊有异议，要求公示明细";
        m.type_into("#summary", summary);
        m.set("[name=p1_name]", RESIDENT);
        m.set("[name=p1_phone]", PHONE);
        m.set("[name=p1_building]", "3号楼");
        // A business time in the future is refused by the domain rule, next to its field,
        // and nothing typed is lost.
        m.set("#occurred_at", "2099-01-01T10:00");
        m.submit("#submit-case");
        assert!(m.path().starts_with("/cases/new"), "still on the form");
        assert!(
            m.exists(".field.has-error #occurred_at"),
            "the error sits at the time field"
        );
        let err = m.text(".field.has-error .field-error");
        assert!(err.contains("未来") || err.contains("晚于"), "a Chinese message: {err}");
        assert_eq!(m.value("#summary"), summary, "the summary survived the error");
        assert_eq!(m.value("#community"), COMMUNITY);
        assert_eq!(m.value("#category"), "cause.cost-sharing");
        let resident_kept = m.js(&format!(
            "(document.querySelector('[name=p1_name]') || {{}}).value === {r} || \
             Array.from(document.querySelectorAll('.picks label')).some(l => l.textContent.includes({r}))",
            r = q(RESIDENT)
        ));
        assert_eq!(resident_kept, json!(true), "the party survived the error");
        m.shot("new-case-error");
        m.set("#occurred_at", &beijing_input(-2));
        m.submit("#submit-case");
        let opened_at = m.path();
        assert!(
            opened_at.starts_with("/cases/0") && !opened_at.contains("/new"),
            "the new case page: {opened_at} {}",
            m.text("body")
        );
        let case_id = opened_at
            .trim_start_matches("/cases/")
            .split(['?', '#'])
            .next()
            .unwrap()
            .to_string();
        let case_path = format!("/cases/{case_id}");
        assert!(m.text("body").contains("案件已登记"), "the flash says so");
        assert!(m.exists("#case-status.s-reported"));
        assert!(m.text("#parties").contains(RESIDENT), "the group sees the name");
        m.shot("case-reported");

        m.open_step("accept");
        m.submit("#form-accept-submit");
        assert!(m.exists("#case-status.s-accepted"), "{}", m.text("main"));

        m.open_step("schedule_session");
        m.set("#schedule_session-scheduled_for", &beijing_input(-1));
        m.type_into("#schedule_session-location", "梅园社区居委会会议室");
        m.submit("#form-schedule_session-submit");
        assert!(m.exists("#form-record_session"), "{}", m.text("main"));

        // A session without any group member present is refused; the minutes are kept.
        m.open_step("record_session");
        let minutes = "双方就分摊比例充分沟通，同意按面积分摊";
        m.type_into("#record_session-minutes_summary", minutes);
        m.submit("#form-record_session-submit");
        assert!(
            m.exists(".field.has-error #record_session-attendees"),
            "the error sits at the attendees: {}",
            m.text("main")
        );
        assert_eq!(m.value("#record_session-minutes_summary"), minutes);
        m.shot("session-error");
        m.js("document.getElementById('form-record_session').open = true");
        let ticked = m.js(
            "(function(){var b=document.querySelector('#record_session-attendees input[value^=\"m:\"]');\
             if(!b)return false;b.checked=true;return true})()",
        );
        assert_eq!(ticked, json!(true), "a group member to tick");
        m.submit("#form-record_session-submit");
        assert!(m.exists("#form-agreement"), "{}", m.text("main"));

        m.open_step("agreement");
        m.type_into("#agreement-facts", "屋面防水改造费用分摊方案未经居民讨论");
        m.type_into("#agreement-terms", "屋面防水费用按房屋面积分摊，物业公示明细");
        let duty = m.js(
            "(function(){var t=document.querySelector('#form-agreement textarea[name^=\"obligations.\"]');\
             if(!t)return false;t.value='按面积缴纳分摊费用';return true})()",
        );
        assert_eq!(duty, json!(true), "one obligation box per party");
        m.type_into("#agreement-performance_manner", "物业公示明细后分两期缴纳");
        m.set("#agreement-performance_due", &beijing_input(24 * 10));
        m.submit("#form-agreement-submit");
        assert!(m.exists("#case-status.s-agreed"), "{}", m.text("main"));
        assert!(!m.exists("#form-close"), "a member may not close a case");
        let timeline = m.text("#timeline");
        assert!(timeline.contains(minutes), "the minutes in the timeline");
        m.shot("case-agreed");
        m.go("/desk");
        assert!(
            m.exists(&format!("a[href='/cases/{case_id}']")) && m.text("main").contains("梅园调〔"),
            "the desk lists the case by its number"
        );
        m.shot("desk");

        // ── The leader closes it ────────────────────────────────────────────────────
        let ctx = browser.new_context().expect("context");
        let l = Page::new(ctx.new_tab().expect("tab"), &base, format!("{prefix}-leader"));
        l.sign_in(&leader);
        l.go(&case_path);
        l.open_step("close");
        l.set("#close-outcome", "resolved_by_agreement");
        l.type_into("#close-summary", "协议已履行");
        assert!(
            l.text("#form-close").contains("结案后不能再记录调解进展"),
            "closing says what it means"
        );
        l.js("document.getElementById('close-confirm').checked = true");
        l.submit("#form-close-submit");
        assert!(l.exists("#case-status.s-closed"), "{}", l.text("main"));
        assert!(l.exists("#form-reopen"), "a closed case may only be reopened");
        assert!(!l.exists("#form-note"));
        l.shot("case-closed");
        l.go(&format!("/cases/{case_id}/print"));
        let file = l.text("body");
        assert!(file.contains(summary) && file.contains(minutes) && file.contains(RESIDENT));
        l.shot("case-file");
        let pdf = l.tab.print_to_pdf(None).expect("print to PDF");
        assert!(pdf.starts_with(b"%PDF"));
        std::fs::write(
            screenshots_dir().join(format!("{prefix}-case-file.pdf")),
            pdf,
        )
        .expect("write PDF");

        // ── The documents, as PDF ───────────────────────────────────────────────────
        l.go(&case_path);
        assert!(
            l.exists(&format!("#documents a[href='/cases/{case_id}/documents/agreement']")),
            "the case page links the agreement"
        );
        l.go(&format!("/cases/{case_id}/documents/agreement"));
        let agreement = l.text("body");
        for part in [
            "人民调解协议书",
            "梅园调〔",
            RESIDENT,
            "纠纷的主要事实、争议事项",
            "屋面防水改造费用分摊方案未经居民讨论",
            "按面积缴纳分摊费用",
            "物业公示明细后分两期缴纳",
            "履行期限",
            "三十日内",
            "司法确认",
            "人民调解委员会（印章）",
            "核验码",
        ] {
            assert!(agreement.contains(part), "the agreement lacks {part}");
        }
        l.shot("agreement");
        // Chromium's PDF: the page tree's `/Count` is the number of pages, and each page's
        // `/MediaBox` its size in points (A4 is 595 × 842).
        let a4 = |pdf: &[u8]| {
            let text = String::from_utf8_lossy(pdf);
            let pages = text
                .split("/Count ")
                .skip(1)
                .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse::<usize>().ok())
                .max()
                .unwrap_or(0);
            let boxes: Vec<&str> = text.split("/MediaBox [").skip(1).filter_map(|s| s.split(']').next()).collect();
            let is_a4 = !boxes.is_empty()
                && boxes.iter().all(|b| {
                    let n: Vec<f64> = b.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                    n.len() == 4 && (n[2] - 595.0).abs() < 2.0 && (n[3] - 842.0).abs() < 2.0
                });
            (pages, is_a4)
        };
        let pdf = l
            .tab
            .print_to_pdf(Some(headless_chrome::types::PrintToPdfOptions {
                prefer_css_page_size: Some(true),
                ..Default::default()
            }))
            .expect("print the agreement to PDF");
        assert!(pdf.starts_with(b"%PDF"));
        let (pages, is_a4) = a4(&pdf);
        assert!(is_a4, "the agreement prints on A4");
        assert!((1..=2).contains(&pages), "the agreement is one or two pages, not {pages}");
        std::fs::write(screenshots_dir().join(format!("{prefix}-agreement.pdf")), &pdf)
            .expect("write PDF");
        l.go(&format!("/cases/{case_id}/documents/file"));
        let file = l.text("body");
        for part in ["人民调解卷宗", "卷内目录", "保管期限", "调解成功", "人民调解受理登记表", "调解笔录", "人民调解协议书"] {
            assert!(file.contains(part), "the case file lacks {part}");
        }
        let pdf = l
            .tab
            .print_to_pdf(Some(headless_chrome::types::PrintToPdfOptions {
                prefer_css_page_size: Some(true),
                ..Default::default()
            }))
            .expect("print the case file to PDF");
        let (pages, is_a4) = a4(&pdf);
        assert!(is_a4 && pages >= 4, "cover, intake, minutes and agreement each start a page: {pages} pages");
        std::fs::write(screenshots_dir().join(format!("{prefix}-documents.pdf")), &pdf)
            .expect("write PDF");

        // ── The supervisor audits it ────────────────────────────────────────────────
        let ctx = browser.new_context().expect("context");
        let s = Page::new(
            ctx.new_tab().expect("tab"),
            &base,
            format!("{prefix}-supervisor"),
        );
        s.sign_in(&supervisor);
        assert!(s.path().starts_with("/supervision"), "supervisors land in their room");
        assert!(
            s.exists(&format!("a[href='/cases/{case_id}']")) && s.text("main").contains("梅园调〔"),
            "every case is listed, by its number"
        );
        s.shot("supervision");
        s.go(&format!("/supervision/audit?case={case_id}"));
        let rows = s.js("document.querySelectorAll('#audit tbody tr').length");
        assert!(rows.as_u64().unwrap_or(0) >= 6, "the case's events: {rows}");
        let audit = s.text("#audit");
        assert!(!audit.contains(RESIDENT) && !audit.contains(PHONE), "no personal data");
        s.shot("audit");
        s.go("/supervision/verify");
        assert!(s.text("#verify-result").starts_with('✔'), "{}", s.text("main"));
        let head = s.text("#verify-head-hash");
        assert!(
            head.len() == 64 && head.chars().all(|c| c.is_ascii_hexdigit()),
            "the chain head: {head}"
        );
        s.shot("verify");
        // Parties are masked for a supervisor until a reason is given; the reveal is logged.
        s.go(&case_path);
        let masked = s.text("#parties");
        assert!(!masked.contains(RESIDENT) && masked.contains("张**"), "{masked}");
        assert!(!masked.contains(PHONE) && masked.contains("138****5678"), "{masked}");
        s.shot("case-masked");
        let why = "核查督办事项，需联系申请人";
        s.type_into("#reveal-reason", why);
        s.submit("#reveal-submit");
        assert!(s.text("#parties").contains(RESIDENT), "revealed");
        assert!(s.text("#parties").contains(PHONE), "revealed");
        s.go(&case_path);
        assert!(!s.text("#parties").contains(RESIDENT), "masked again on the next visit");
        s.go("/supervision/access-log");
        assert!(s.text("main").contains(why), "the reveal and its reason are logged");
        s.shot("access-log");
        // English by a switch, kept by a cookie.
        s.go("/lang/en?back=/supervision");
        assert_eq!(s.js("document.documentElement.lang"), json!("en"));
        s.shot("supervision-en");
        s.go("/lang/zh?back=/supervision");

        // ── The administrator's page ────────────────────────────────────────────────
        let ctx = browser.new_context().expect("context");
        let a = Page::new(ctx.new_tab().expect("tab"), &base, format!("{prefix}-admin"));
        a.sign_in(&admin);
        assert!(a.path().starts_with("/admin"));
        assert!(a.text("main").contains("梅园调解小组"), "the groups are listed");
        a.shot("admin");

        // ── The dashboard on a wall screen, live ────────────────────────────────────
        let ctx = browser.new_context().expect("context");
        let d = Page::new(ctx.new_tab().expect("tab"), &base, format!("{prefix}-dashboard"));
        d.sign_in(&dashboard);
        assert!(d.path().starts_with("/dashboard"));
        d.resize(1920, 1080);
        d.wait(
            "document.querySelector('#live-state.on') !== null",
            "the live connection",
        );
        assert_eq!(
            d.js("document.querySelectorAll('[id^=tile-], .ctile').length >= 26"),
            json!(true),
            "26 communities on the wall"
        );
        assert_eq!(
            d.js("document.documentElement.scrollWidth <= window.innerWidth"),
            json!(true),
            "no sideways scrolling at 1920×1080"
        );
        d.shot("dashboard-1920");
        let before = d.text(&format!("#c-{COMMUNITY} .c-incidents"));
        d.js("window.__tj_same_page = true");
        // An obstruction with an incident is recorded through the API meanwhile.
        let obstructor = handle
            .block_on(register_party(&t2.app, COMMUNITY, "马秀英"))
            .to_string();
        let opened = handle.block_on(t2.call(
            "POST",
            "/api/v1/cases",
            Some(&member),
            Some(json!({
                "kind": "construction_obstruction",
                "community": COMMUNITY,
                "category": "work.roof",
                "summary": "阻止吊车进场",
                "channel": "on_site",
                "parties": [{"party_id": obstructor, "role": "obstructor"}],
                "incident": {"location": "5号楼", "work_item": "work.roof",
                    "obstructing_parties": [obstructor], "work_stopped_minutes": 240,
                    "police_called": false, "description": "阻止吊车进场"}
            })),
        ));
        assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.json);
        d.wait(
            &format!(
                "document.querySelector('#c-{COMMUNITY} .c-incidents').textContent.trim() !== {}",
                q(&before)
            ),
            "the incident to show on the dashboard",
        );
        assert_eq!(
            d.js("window.__tj_same_page === true"),
            json!(true),
            "updated without a reload"
        );
        assert!(
            d.js("Number(document.getElementById('live').getAttribute('data-updates'))")
                .as_u64()
                .unwrap_or(0)
                >= 1
        );
        d.shot("dashboard-live");
        d.resize(1366, 768);
        assert_eq!(
            d.js("document.documentElement.scrollWidth <= window.innerWidth"),
            json!(true),
            "no sideways scrolling at 1366×768"
        );
        d.shot("dashboard-1366");
    })
    .await
    .expect("the browser scenario");
        match Arc::try_unwrap(t) {
            Ok(t) => t.stop().await,
            Err(_) => panic!("the app is still shared"),
        }
    }
);

// ── Without JavaScript, through the router ──────────────────────────────────────────────

both!(the_web_edge_holds_without_javascript, |b| async move {
    let store = Store::new(b).await;
    let t = TestApp::start(&store, None).await;
    let (group, _, _, _) = form_group(&t.app, "梅园调解小组", &[COMMUNITY]).await;
    let member = t.token(Role::Member, Some(group)).await;
    let dashboard = t.token(Role::Dashboard, None).await;

    // Not signed in: pages send to the sign-in page, remembering where to come back to.
    let mut anon = NoJs::new(&t);
    let r = anon.send("GET", "/desk", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location.starts_with("/login?next="), "{}", r.location);

    // A wrong token is refused in Chinese, on the page.
    let mut wrong = NoJs::new(&t);
    let r = wrong.sign_in("tj_not_a_token").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("login-error"), "{}", r.body);

    // Sign-in without the login form's CSRF cookie is refused.
    let mut forged = NoJs::new(&t);
    let r = forged
        .send(
            "POST",
            "/login",
            Some(&[("_csrf", "x"), ("token", &member), ("next", "")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(forged.cookies.iter().all(|(k, _)| k != "tj_session"));

    // A real sign-in: the cookie is HttpOnly and SameSite=Strict.
    let mut m = NoJs::new(&t);
    let r = m.sign_in(&member).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let session = r
        .set_cookies
        .iter()
        .find(|c| c.starts_with("tj_session="))
        .expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    assert!(!session.contains(&member), "the cookie is not the token");
    let desk = m.send("GET", "/desk", None).await;
    assert_eq!(desk.status, StatusCode::OK);
    let csrf = hidden(&desk.body, "_csrf");

    // Opening a case without JavaScript, with a forged CSRF token, is refused and writes
    // nothing; with the page's token it works.
    let count = || async {
        on_db!(&t.app.db, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap())
    };
    let before = count().await;
    let fields = |csrf: &str| {
        vec![
            ("_csrf".to_string(), csrf.to_string()),
            ("do".into(), "open".into()),
            ("kind".into(), "resident_objection".into()),
            ("community".into(), COMMUNITY.into()),
            ("category".into(), "cause.cost-sharing".into()),
            ("channel".into(), "visit".into()),
            ("occurred_at".into(), String::new()),
            ("summary".into(), "居民反映加装电梯影响采光".into()),
            ("p1_role".into(), "complainant".into()),
            ("p1_kind".into(), "resident".into()),
            ("p1_name".into(), "李四".into()),
            ("p1_phone".into(), "13900001111".into()),
        ]
    };
    let forged_fields = fields("forged");
    let r = m
        .send("POST", "/cases/new", Some(&pairs(&forged_fields)))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(count().await, before, "nothing written on a forged form");
    let good = fields(&csrf);
    let r = m.send("POST", "/cases/new", Some(&pairs(&good))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location.starts_with("/cases/"), "{}", r.location);
    assert!(count().await > before);

    // The case page's steps come from the step table. A value that does not fit is
    // refused next to its field and writes nothing; a good one is recorded.
    let case_path = r.location.split('?').next().unwrap_or_default().to_string();
    let page = m.send("GET", &case_path, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let accept = [
        ("_csrf", csrf.as_str()),
        ("version", &hidden(&page.body, "version")),
        ("accepted_at", ""),
    ];
    let r = m
        .send("POST", &format!("{case_path}/do/accept"), Some(&accept))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = m.send("GET", &case_path, None).await;
    let version = hidden(&page.body, "version");
    let step = |name: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let mut all = vec![
            ("_csrf".to_string(), csrf.clone()),
            ("version".to_string(), version.clone()),
        ];
        all.extend(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        (format!("{case_path}/do/{name}"), all)
    };
    let refusals = [
        (
            "schedule_session",
            vec![("scheduled_for", "明天上午"), ("location", "社区会议室")],
            "scheduled_for",
            "时间格式不正确",
        ),
        (
            "schedule_session",
            vec![("scheduled_for", ""), ("location", "社区会议室")],
            "scheduled_for",
            "请填写时间",
        ),
        (
            "correction",
            vec![
                ("corrects_sequence", "第一条"),
                ("field", "summary"),
                ("corrected_value", "x"),
                ("reason", "y"),
            ],
            "corrects_sequence",
            "被更正的记录不正确",
        ),
        (
            "incident",
            vec![
                ("location", "3号楼"),
                ("work_item", "不是施工项目"),
                ("work_stopped_hours", "1"),
                ("description", "堵门"),
            ],
            "work_item",
            "受阻施工项目不正确",
        ),
        (
            "incident",
            vec![
                ("location", "3号楼"),
                ("work_item", "work.roof"),
                ("obstructing_parties", "不是当事人"),
                ("description", "堵门"),
            ],
            "obstructing_parties",
            "阻工人员不正确",
        ),
    ];
    let before = count().await;
    for (name, fields, field, message) in refusals {
        let (path, all) = step(name, fields);
        let r = m.send("POST", &path, Some(&pairs(&all))).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.body
        );
        let error = field_error(&r.body, name, field);
        assert!(error.contains(message), "{name}.{field}: {error:?}");
    }
    assert_eq!(count().await, before, "nothing written by a refused form");
    let (path, all) = step(
        "schedule_session",
        vec![
            ("scheduled_for", "2026-12-10T09:30"),
            ("location", "社区会议室"),
        ],
    );
    let r = m.send("POST", &path, Some(&pairs(&all))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(count().await, before + 1);
    // A session that does not exist is refused by the domain; a session id that does not
    // parse is refused at the field that chose it.
    let page = m.send("GET", &case_path, None).await;
    let version = hidden(&page.body, "version");
    let (path, mut all) = step(
        "record_session",
        vec![
            ("session_id", "01000000-0000-7000-8000-000000000000"),
            ("minutes_summary", "双方陈述意见"),
        ],
    );
    all[1].1 = version;
    let r = m.send("POST", &path, Some(&pairs(&all))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("调解会不存在"),
        "the domain's refusal is shown"
    );
    all.iter_mut()
        .filter(|(k, _)| k == "session_id")
        .for_each(|(_, v)| *v = "abc".into());
    let r = m.send("POST", &path, Some(&pairs(&all))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let error = field_error(&r.body, "record_session", "session_id");
    assert!(error.contains("调解会不正确"), "{error:?}");
    assert_eq!(count().await, before + 1);

    // The dashboard role sees the dashboard, not the desk's forms.
    let mut d = NoJs::new(&t);
    let r = d.sign_in(&dashboard).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location.starts_with("/dashboard"), "{}", r.location);
    let r = d.send("GET", "/cases/new", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let dash = d.send("GET", "/dashboard", None).await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(
        dash.body.contains("梅园"),
        "community names are data, in Chinese"
    );

    // Signing out ends the session on the server: the old cookie no longer works.
    let old = m.cookie_header();
    let r = m.send("POST", "/logout", Some(&[("_csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let replay = t
        .call_with("GET", "/desk", None, None, &[("cookie", &old)])
        .await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER, "the session is gone");
    t.stop().await;
});

/// Borrowed pairs of owned form fields, for [`NoJs::send`].
fn pairs<K: AsRef<str>>(fields: &[(K, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_str()))
        .collect()
}

/// The message shown next to a field of a step's form, or "" when there is none.
fn field_error(html: &str, form: &str, field: &str) -> String {
    let Some(at) = html.find(&format!("id=\"{form}-{field}\"")) else {
        panic!("no field {form}-{field} in the page")
    };
    let rest = &html[at..];
    let rest = &rest[..rest.find("<div class=\"field").unwrap_or(rest.len())];
    let marker = "field-error\" role=\"alert\">";
    rest.find(marker)
        .map(|i| {
            rest[i + marker.len()..]
                .split('<')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}

/// The text of the element with this id.
fn text_of(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page"))
        + marker.len();
    html[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

both!(
    an_administrator_issues_tokens_and_forms_groups_on_the_web,
    |b| async move {
        let store = Store::new(b).await;
        let t = TestApp::start(&store, None).await;
        let (meiyuan_group, _, _, _) = form_group(&t.app, "梅园调解小组", &[COMMUNITY]).await;
        let admin = t.token(Role::Admin, None).await;
        let member = t.token(Role::Member, Some(meiyuan_group)).await;

        let mut m = NoJs::new(&t);
        m.sign_in(&member).await;
        let r = m.send("GET", "/admin", None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "members do not administer");

        let mut a = NoJs::new(&t);
        let r = a.sign_in(&admin).await;
        assert_eq!(r.location, "/admin", "administrators land on their page");
        let page = a.send("GET", "/admin", None).await;
        assert_eq!(page.status, StatusCode::OK);
        let csrf = hidden(&page.body, "_csrf");

        // A community another group covers is refused next to the communities, with the form
        // refilled.
        let group_form = |community: &str| {
            vec![
                ("_csrf", csrf.clone()),
                ("name", "德福调解小组".to_string()),
                ("street_office", "南关街道办事处".to_string()),
                ("communities", community.to_string()),
                ("leader_name", "马组长".to_string()),
                ("leader_org_role", "street_office".to_string()),
                ("leader_organisation", "南关街道办事处".to_string()),
            ]
        };
        let taken = group_form(COMMUNITY);
        let r = a.send("POST", "/admin/groups", Some(&pairs(&taken))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let at = r.body.find("id=\"group-communities\"").expect("the field");
        let before = &r.body[..at];
        assert!(
            before.rfind("has-error") > before.rfind("class=\"field"),
            "the error sits at the communities"
        );
        assert!(
            r.body.contains("value=\"马组长\""),
            "what was typed is kept"
        );

        let ok = group_form("defu");
        let r = a.send("POST", "/admin/groups", Some(&pairs(&ok))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let groups = t.app.directory.groups().await.expect("groups");
        let (defu, _) = groups
            .iter()
            .find(|(_, g)| g.name == "德福调解小组")
            .expect("the new group");
        let defu = defu.to_string();
        let r = a
            .send(
                "POST",
                &format!("/admin/groups/{defu}/do/add_member"),
                Some(&[
                    ("_csrf", &csrf),
                    ("name", "周民警"),
                    ("org_role", "police"),
                    ("organisation", "南关派出所"),
                ]),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let page = a.send("GET", "/admin", None).await;
        assert!(page.body.contains("周民警") && page.body.contains("德福小区"));
        // A police officer cannot lead; the refusal sits at the member picked.
        let groups = t.app.directory.groups().await.expect("groups");
        let zhou = groups
            .iter()
            .find(|(id, _)| id.to_string() == defu)
            .and_then(|(_, g)| g.members.values().find(|m| m.name == "周民警"))
            .expect("the new member")
            .member_id
            .to_string();
        let r = a
            .send(
                "POST",
                &format!("/admin/groups/{defu}/do/change_leader"),
                Some(&[("_csrf", &csrf), ("member", &zhou), ("reason", "")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let at = r
            .body
            .find(&format!("id=\"change_leader-{defu}-member\""))
            .expect("the field");
        let before = &r.body[..at];
        assert!(
            before.rfind("has-error") > before.rfind("class=\"field"),
            "the error sits at the member"
        );
        let r = a
            .send(
                "POST",
                &format!("/admin/groups/{defu}/do/remove_member"),
                Some(&[("_csrf", &csrf), ("member", &zhou), ("reason", "调离")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let page = a.send("GET", "/admin", None).await;
        assert!(!page.body.contains("周民警（"), "removed from the group");
        // The communities form (from the group step table): the group takes on a
        // community nobody covers; a code that is no community is refused at its field.
        let spare = t
            .app
            .reference
            .communities
            .iter()
            .find(|c| groups.iter().all(|(_, g)| !g.communities.contains(&c.id)))
            .expect("a community no group covers")
            .id
            .to_string();
        let path = format!("/admin/groups/{defu}/do/change_communities");
        let r = a
            .send(
                "POST",
                &path,
                Some(&[("_csrf", &csrf), ("add", "atlantis!")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(r.body.contains("增加负责小区不正确"), "{}", r.body);
        let r = a
            .send("POST", &path, Some(&[("_csrf", &csrf), ("add", &spare)]))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let groups = t.app.directory.groups().await.expect("groups");
        let covered = groups
            .iter()
            .find(|(id, _)| id.to_string() == defu)
            .map(|(_, g)| g.communities.iter().any(|c| c.to_string() == spare));
        assert_eq!(covered, Some(true), "the group covers {spare}");

        // A member's token needs a group; then it is shown once, and works.
        let r = a
            .send(
                "POST",
                "/admin/tokens",
                Some(&[
                    ("_csrf", &csrf),
                    ("name", "德福 周民警"),
                    ("role", "member"),
                    ("group", ""),
                    ("organisation", "南关派出所"),
                ]),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("必须选择所属小组"), "{}", r.body);
        let r = a
            .send(
                "POST",
                "/admin/tokens",
                Some(&[
                    ("_csrf", &csrf),
                    ("name", "德福 周民警"),
                    ("role", "member"),
                    ("group", &defu),
                    ("organisation", "南关派出所"),
                ]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let secret = text_of(&r.body, "new-token");
        assert!(secret.starts_with("tj_"), "{secret}");
        let again = a.send("GET", "/admin", None).await;
        assert!(!again.body.contains(&secret), "shown once only");
        let mut z = NoJs::new(&t);
        let r = z.sign_in(&secret).await;
        assert_eq!(r.location, "/desk");
        assert_eq!(z.send("GET", "/desk", None).await.status, StatusCode::OK);

        // Revoking it ends the holder's session at once.
        let db = &t.app.db;
        let token_id = |find: fn(&tiaojie::auth::TokenInfo) -> bool| async move {
            tiaojie::auth::list_tokens(db)
                .await
                .unwrap()
                .into_iter()
                .find(find)
                .expect("listed")
                .id
        };
        let id = token_id(|x| x.name == "德福 周民警").await;
        let revoke = format!("/admin/tokens/{id}/revoke");
        let r = a.send("POST", &revoke, Some(&[("_csrf", &csrf)])).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let own = token_id(|x| x.role == "admin").await;
        let revoke = format!("/admin/tokens/{own}/revoke");
        let r = a.send("POST", &revoke, Some(&[("_csrf", &csrf)])).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "no locking oneself out");
        let r = z.send("GET", "/desk", None).await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "the revoked holder is signed out"
        );
        assert!(r.location.starts_with("/login"));
        t.stop().await;
    }
);

both!(
    a_person_signs_in_with_a_password_and_changes_the_one_time_one,
    |b| async move {
        let store = Store::new(b).await;
        let t = TestApp::start(&store, None).await;
        let (group, members, _, _) = form_group(&t.app, "梅园调解小组", &[COMMUNITY]).await;
        let (_, otp) = account(
            &t,
            "lisifa",
            Role::Member,
            Some((group, members[1].member_id)),
            None,
        )
        .await;
        let base = serve(&t).await;
        let prefix = match b {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        tokio::task::spawn_blocking(move || {
            let browser = launch();
            let ctx = browser.new_context().expect("context");
            let p = Page::new(
                ctx.new_tab().expect("tab"),
                &base,
                format!("{prefix}-password"),
            );
            p.go("/desk");
            assert!(p.path().starts_with("/login"));
            p.type_into("#login", "lisifa");
            p.type_into("#password", "wrong-password-1");
            p.submit("#sign-in");
            assert!(p.text("#login-error").contains("登录名或密码不正确"));
            assert_eq!(p.value("#login"), "lisifa", "the login typed stays");
            p.type_into("#password", &otp);
            p.submit("#sign-in");
            assert_eq!(
                p.path(),
                "/account?must=password",
                "a one-time password must be changed first"
            );
            assert!(p.exists("#must-change"));
            p.shot("must-change");
            p.go("/desk");
            assert!(
                p.path().starts_with("/account"),
                "nothing else opens before the change"
            );
            p.type_into("#password-current", &otp);
            p.type_into("#password-new", "abc");
            p.type_into("#password-confirm", "abc");
            p.submit("#form-password-submit");
            assert!(
                p.text("#form-password .field-error")
                    .contains("密码至少10位"),
                "the rule is said next to the field"
            );
            p.type_into("#password-current", &otp);
            p.type_into("#password-new", "梅园调解工作-2026");
            p.type_into("#password-confirm", "梅园调解工作-2026");
            p.submit("#form-password-submit");
            assert!(
                p.path().starts_with("/desk"),
                "then to work: {} {}",
                p.path(),
                p.text("main")
            );
            // The name in the header opens one's own page, with the sign-in on record.
            p.go("/account");
            assert_eq!(p.text("#account-login"), "lisifa");
            assert!(p.text("#sign-ins").contains("修改密码"));
            p.shot("account");
            p.submit("#logout");
            p.go("/login");
            p.type_into("#login", "lisifa");
            p.type_into("#password", "梅园调解工作-2026");
            p.submit("#sign-in");
            assert!(p.path().starts_with("/desk"), "{}", p.path());
        })
        .await
        .expect("the browser part");
        t.stop().await;
    }
);

both!(
    on_a_phone_nothing_scrolls_sideways_and_the_next_step_comes_first,
    |b| async move {
        let store = Store::new(b).await;
        let t = Arc::new(TestApp::start(&store, None).await);
        let (group, _, _, _) = form_group(&t.app, "梅园调解小组", &[COMMUNITY]).await;
        let member = t.token(Role::Member, Some(group)).await;
        // An obstruction case with its incident (work stopped), and an objection.
        let party = register_party_via_api(&t, &member, COMMUNITY, RESIDENT).await;
        let opened = t
            .call(
                "POST",
                "/api/v1/cases",
                Some(&member),
                Some(json!({
                    "kind": "construction_obstruction", "community": COMMUNITY, "category": "work.roof",
                    "summary": "居民阻止吊车进场，屋面防水施工停工，现场人员情绪激动，要求先公示费用分摊明细再施工",
                    "channel": "on_site",
                    "parties": [{"party_id": party, "role": "obstructor"}],
                    "incident": {"location": "3号楼东侧道路", "work_item": "work.roof", "obstructing_parties": [party],
                                 "work_stopped_minutes": 120, "police_called": true, "description": "阻止吊车进场"}
                })),
            )
            .await
            .expect(StatusCode::CREATED);
        let case_id = opened.json["id"].as_str().unwrap().to_string();
        let base = serve(&t).await;
        let prefix = match b {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        tokio::task::spawn_blocking(move || {
            let browser = launch();
            let ctx = browser.new_context().expect("context");
            let m = Page::new(ctx.new_tab().expect("tab"), &base, format!("{prefix}-phone"));
            m.resize(390, 844);
            m.sign_in(&member);
            let no_sideways = |what: &str| {
                assert_eq!(
                    m.js("document.documentElement.scrollWidth <= window.innerWidth"),
                    json!(true),
                    "{what} scrolls sideways at 390 px: scrollWidth {}",
                    m.js("document.documentElement.scrollWidth")
                );
            };
            m.go("/desk");
            no_sideways("the desk");
            m.shot("desk-390");
            m.go(&format!("/cases/{case_id}"));
            no_sideways("the case page");
            assert_eq!(
                m.js("document.getElementById('next-steps').getBoundingClientRect().top < document.getElementById('timeline').getBoundingClientRect().top"),
                json!(true),
                "the next steps come before the timeline on a phone"
            );
            let top = m
                .js("document.getElementById('next-steps').getBoundingClientRect().top + window.scrollY")
                .as_f64()
                .unwrap_or(f64::MAX);
            assert!(top < 1500.0, "the next steps start {top} px down");
            for step in ["incident", "police", "resume_work"] {
                m.open_step(step);
                no_sideways(&format!("the {step} form"));
            }
            m.shot("case-390");
            // The connection drops after typing: a reload gives back what was typed.
            m.type_into("#police-police_unit", "原州区公安分局南关派出所");
            m.type_into("#police-outcome", "现场劝离，双方情绪平稳");
            // A business time left as the page filled it is not kept: served again after a
            // reload, it still means "now" (a stale minute would be earlier than the case).
            let draft: Value = m
                .js(&format!(
                    "localStorage.getItem('tiaojie-draft:/cases/{case_id}/do/police') || '{{}}'"
                ))
                .as_str()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            assert_eq!(draft["police_unit"], json!("原州区公安分局南关派出所"), "{draft}");
            assert!(draft.get("intervened_at").is_none(), "an untouched time is not kept: {draft}");
            m.go(&format!("/cases/{case_id}"));
            assert_eq!(m.value("#police-police_unit"), "原州区公安分局南关派出所", "the draft is back");
            assert_eq!(m.value("#police-outcome"), "现场劝离，双方情绪平稳");
            assert!(m.exists("#form-police[open] .draft-note"), "the form says so, open");
            // Once sent and accepted, the draft is gone.
            m.submit("#form-police-submit");
            assert!(m.text("#timeline").contains("原州区公安分局南关派出所"), "{}", m.text("main"));
            m.go(&format!("/cases/{case_id}"));
            assert!(!m.exists("#form-police .draft-note"), "no draft after it was sent");
            // On site: a new incident and its photo, in one form.
            let photo = photo_file(&format!("{prefix}-site.jpg"));
            m.open_step("incident");
            m.type_into("#incident-location", "5号楼北侧");
            m.set("#incident-work_item", "work.roof");
            m.type_into("#incident-description", "再次阻止吊车进场");
            m.tab
                .find_element("#incident-photo")
                .expect("the incident form takes a photo")
                .set_input_files(&[photo.to_str().unwrap()])
                .expect("choose the photo");
            no_sideways("the incident form with its photo");
            m.submit("#form-incident-submit");
            assert!(m.exists("#timeline"), "{}", m.text("body"));
            let timeline = m.text("#timeline");
            assert!(timeline.contains("再次阻止吊车进场"), "{}", m.text("main"));
            assert!(timeline.contains("添加附件（照片）"), "{timeline}");
            assert!(m.exists("#attachment-list img.thumb"), "the photo shows as a thumbnail");
            assert_eq!(
                m.js("(function(){var i=document.querySelector('#attachment-list img.thumb');return i.complete && i.naturalWidth > 0})()"),
                json!(true),
                "the thumbnail loads"
            );
            no_sideways("the case page with a photo");
            m.shot("incident-photo-390");
        })
        .await
        .expect("the phone scenario");
        match Arc::try_unwrap(t) {
            Ok(t) => t.stop().await,
            Err(_) => panic!("the app is still shared"),
        }
    }
);

/// A photo as a phone takes it, with its place in an EXIF block, written to a file.
fn photo_file(name: &str) -> PathBuf {
    use img_parts::ImageEXIF;
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x / 2) as u8, (y / 2) as u8, 160])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(out.into()).unwrap();
    jpeg.set_exif(Some(
        b"II*\0\x08\0\0\0GPS 36.0158N 106.2425E".to_vec().into(),
    ));
    let path = screenshots_dir().join(name);
    std::fs::write(&path, jpeg.encoder().bytes()).unwrap();
    // Chromium reads an upload only from a plain absolute path.
    path.canonicalize().unwrap()
}

// ── The wall screen ──────────────────────────────────────────────────────────────────────

/// Serves a router on `addr` until the task is aborted; aborting drops every open
/// connection, as a server restart does. Returns the address actually bound.
async fn serve_hard(
    addr: std::net::SocketAddr,
    router: axum::Router,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    };
    let bound = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            connections.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    (bound, task)
}

/// True when nothing on the screen scrolls or is cut off: the page, the grid and every
/// panel hold their content.
const FITS: &str = "(function(){\
    var d=document.documentElement;\
    if(d.scrollHeight>window.innerHeight||d.scrollWidth>window.innerWidth)return 'page '+d.scrollWidth+'x'+d.scrollHeight;\
    var bad=[].slice.call(document.querySelectorAll('body, .s-live, .s-live > section, .s-live > footer, .s-kpi, .s-district, .s-cells'))\
      .filter(function(e){return e.scrollHeight>e.clientHeight+1||e.scrollWidth>e.clientWidth+1})\
      .map(function(e){return (e.id||e.className)+' '+e.scrollWidth+'x'+e.scrollHeight+' in '+e.clientWidth+'x'+e.clientHeight});\
    return bad.length?bad.join('; '):'fits'})()";

both!(
    the_wall_screen_fits_both_sizes_updates_live_and_comes_back_after_a_restart,
    |b| async move {
        let store = Store::new(b).await;
        let t = TestApp::start(&store, None).await;
        let (group, _, _, _) = form_group(&t.app, "梅园调解小组", &[COMMUNITY]).await;
        let member = t.token(Role::Member, Some(group)).await;
        let dashboard = t.token(Role::Dashboard, None).await;
        let (addr, server) = serve_hard("127.0.0.1:0".parse().unwrap(), t.router.clone()).await;
        let base = format!("http://{addr}");
        let prefix = match b {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        // An obstruction with an incident of `minutes` stopped, recorded through the API.
        async fn incident(t: &TestApp, member: &str, name: &str, minutes: u32) {
            let obstructor = register_party(&t.app, COMMUNITY, name).await.to_string();
            let opened = t
                .call(
                    "POST",
                    "/api/v1/cases",
                    Some(member),
                    Some(json!({
                        "kind": "construction_obstruction",
                        "community": COMMUNITY,
                        "category": "work.roof",
                        "summary": "阻止吊车进场",
                        "channel": "on_site",
                        "parties": [{"party_id": obstructor, "role": "obstructor"}],
                        "incident": {"location": "5号楼", "work_item": "work.roof",
                            "obstructing_parties": [obstructor], "work_stopped_minutes": minutes,
                            "police_called": false, "description": "阻止吊车进场"}
                    })),
                )
                .await;
            assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.json);
        }
        let handle = tokio::runtime::Handle::current();
        let (store, t) = tokio::task::spawn_blocking(move || {
            let browser = launch();
            let ctx = browser.new_context().expect("context");
            let s = Page::new(
                ctx.new_tab().expect("tab"),
                &base,
                format!("{prefix}-screen"),
            );
            s.sign_in(&dashboard);
            s.viewport(1920, 1080);
            s.go("/screen");
            s.wait(
                "document.querySelector('#live-state.on') !== null",
                "the live connection",
            );
            // A kiosk view: no navigation, no sign-out.
            assert!(!s.exists("header.top"), "no nav bar on the wall screen");
            assert!(!s.exists("#logout"), "no sign-out on the wall screen");
            assert_eq!(
                s.js("document.querySelectorAll('.s-cell').length"),
                json!(26),
                "26 communities on the map"
            );
            assert_eq!(
                s.js("document.querySelectorAll('.s-district').length"),
                json!(3),
                "three districts"
            );
            assert_eq!(
                s.js("document.querySelectorAll('.s-kpi').length"),
                json!(6),
                "six KPI tiles"
            );
            assert!(
                s.text("#kpi-received").contains("较上月同期"),
                "{}",
                s.text("#kpi-received")
            );
            // The scale is explained, and the district's per-household figure says so.
            let legend = s.text("#legend");
            assert!(
                legend.contains("热度分") && legend.contains("半衰期"),
                "{legend}"
            );
            assert!(
                legend.contains("每百户"),
                "districts are per 100 households: {legend}"
            );
            assert_eq!(s.js(FITS), json!("fits"), "at 1920×1080");
            assert!(s.text("#feed").is_empty() || !s.text("#feed").contains("240"));
            s.shot("screen-1920-empty");

            // Live: an incident recorded through the API shows within two seconds.
            s.js("window.__tj_same_page = true");
            let sent = Instant::now();
            handle.block_on(incident(&t, &member, "马秀英", 240));
            let api = sent.elapsed();
            s.wait(
                "document.querySelectorAll('#feed li').length === 1",
                "the incident on the screen",
            );
            let shown = sent.elapsed();
            assert!(
                shown < Duration::from_secs(2),
                "the screen showed the incident {shown:?} after it was sent (the API took {api:?})"
            );
            assert_eq!(
                s.js("window.__tj_same_page === true"),
                json!(true),
                "updated without a reload"
            );
            assert!(s.text("#feed").contains("停工4小时"), "{}", s.text("#feed"));
            assert!(s.text("#feed").contains("梅园"), "{}", s.text("#feed"));
            // The district with a report shows its figure per 100 households, labelled.
            assert!(s.text(".s-map").contains("每百户"), "{}", s.text(".s-map"));
            eprintln!("the wall screen showed the incident {shown:?} after it was sent");
            assert_eq!(
                s.js("document.querySelectorAll('#rank-meiyuan').length"),
                json!(1),
                "ranked"
            );
            assert_eq!(s.text("#kpi-incidents .s-kpi-value"), "1");
            assert!(
                !s.text("body").contains("马秀英"),
                "no personal data on the wall"
            );
            assert_eq!(s.js(FITS), json!("fits"), "at 1920×1080, with data");
            s.shot("screen-1920");
            s.viewport(1366, 768);
            assert_eq!(s.js(FITS), json!("fits"), "at 1366×768");
            s.shot("screen-1366");

            // The server restarts: connections drop, the port is closed for a while, and a
            // new server over the same store comes up on it.
            handle.block_on(async {
                server.abort();
                let _ = server.await;
            });
            s.wait(
                "document.querySelector('#live-state.on') === null",
                "the screen to notice the drop",
            );
            handle.block_on(t.stop());
            std::thread::sleep(Duration::from_secs(1));
            let t = handle.block_on(TestApp::start(&store, None));
            let (_, server) = handle.block_on(serve_hard(addr, t.router.clone()));
            s.wait(
                "document.querySelector('#live-state.on') !== null",
                "the screen to reconnect",
            );
            handle.block_on(incident(&t, &member, "李桂兰", 90));
            s.wait(
                "document.querySelectorAll('#feed li').length === 2",
                "a new incident after the restart",
            );
            assert!(
                s.text("#feed").contains("停工1.5小时"),
                "{}",
                s.text("#feed")
            );
            assert_eq!(
                s.js("window.__tj_same_page === true"),
                json!(true),
                "still the same page"
            );
            assert_eq!(s.text("#kpi-incidents .s-kpi-value"), "2");
            assert_eq!(s.js(FITS), json!("fits"), "at 1366×768, after the restart");
            s.shot("screen-1366-restarted");

            // The monthly report of this month, as a PDF on A4.
            let now = time::OffsetDateTime::now_utc() + time::Duration::hours(8);
            let month = format!("{:04}-{:02}", now.year(), u8::from(now.month()));
            s.viewport(1280, 900);
            s.go(&format!("/reports/monthly?month={month}"));
            assert!(s.exists("#r-headlines"), "{}", s.text("body"));
            assert!(
                s.text("#r-overview").contains("阻工事件"),
                "{}",
                s.text("#r-overview")
            );
            assert!(
                s.text("#r-obstruction").contains("本月发生阻挡施工事件2起"),
                "{}",
                s.text("#r-obstruction")
            );
            assert!(s.text("#r-ranking").contains("梅园小区"));
            assert_eq!(
                s.js("document.querySelectorAll('#report svg.rchart').length"),
                json!(3)
            );
            s.shot("report-monthly");
            let pdf = s
                .tab
                .print_to_pdf(Some(headless_chrome::types::PrintToPdfOptions {
                    prefer_css_page_size: Some(true),
                    print_background: Some(true),
                    ..Default::default()
                }))
                .expect("the report prints");
            assert!(pdf.starts_with(b"%PDF"), "a PDF");
            let text = String::from_utf8_lossy(&pdf);
            let pages = text.matches("/Type /Page\n").count()
                + text.matches("/Type /Page>>").count()
                + text.matches("/Type /Page ").count();
            assert!(
                text.contains("/MediaBox [0 0 594.95996 841.91998]")
                    || text.contains("/MediaBox [0 0 595"),
                "on A4"
            );
            assert!((1..=4).contains(&pages), "{pages} pages");
            std::fs::write(
                screenshots_dir().join(format!("{prefix}-report-monthly.pdf")),
                &pdf,
            )
            .expect("write the PDF");
            server.abort();
            (store, t)
        })
        .await
        .expect("the wall-screen scenario");
        t.stop().await;
        drop(store);
    }
);
