//! Test support: fresh stores on both backends, the real app and router, tokens per role.
//!
//! PostgreSQL comes from `TIAOJIE_TEST_PG_URL` (set by `tests/run.sh`, which starts a
//! throwaway cluster when none is running), else `postgres://postgres@127.0.0.1:5432/postgres`.
//! A PostgreSQL test that cannot reach it fails; it never skips.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tiaojie::app::App;
use tiaojie::config::Settings;
use tiaojie_events::metadata::Role;
use tiaojie_events::{Clock, GroupId, ManualClock, SystemClock, Timestamp};
use tiaojie_projections::runtime::RuntimeOptions;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store; dropped (PostgreSQL database removed) at the end.
pub struct Store {
    pub url: String,
    pub backend: Backend,
    _dir: Option<TempDir>,
    pg_name: Option<String>,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("TIAOJIE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn note_pg_test() {
    // tests/run.sh checks that PostgreSQL tests did run.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("pg-tests.log"))
    {
        let _ = writeln!(f, "{}", std::thread::current().name().unwrap_or("?"));
    }
}

impl Store {
    pub async fn new(backend: Backend) -> Store {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new("tiaojie-test");
                let url = format!("sqlite:{}/tiaojie.db", dir.0.display());
                Store {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("tj_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is required for this test and is not reachable at {admin}: {e}. Run tests/run.sh, which starts one.")
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                note_pg_test();
                let url = replace_db(&admin, &name);
                Store {
                    url,
                    backend,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Store {
    /// A store that exists already (a fixture copied into place); nothing is removed at
    /// the end.
    pub fn existing(url: &str) -> Store {
        Store {
            url: url.to_string(),
            backend: if url.starts_with("sqlite:") {
                Backend::Sqlite
            } else {
                Backend::Postgres
            },
            _dir: None,
            pg_name: None,
        }
    }
}

pub fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    format!("{base}/{db}{query}")
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = pg_admin_url();
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(mut conn) =
                        <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                    {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// The master key of every test store (32 bytes, base64).
pub const TEST_MASTER_KEY: &str = "dGlhb2ppZS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";

pub fn settings(url: &str) -> Settings {
    Settings {
        database_url: url.to_string(),
        db_max_connections: 8,
        master_key: Some(TEST_MASTER_KEY.into()),
        ..Settings::default()
    }
}

/// "Now" for tests with a manual clock.
pub fn t0() -> Timestamp {
    Timestamp::parse("2022-05-01T02:00:00Z").expect("valid")
}

pub async fn open_app(store: &Store, clock: Option<Arc<ManualClock>>) -> App {
    open_app_with(store, clock, settings(&store.url)).await
}

pub async fn open_app_with(
    store: &Store,
    clock: Option<Arc<ManualClock>>,
    settings: Settings,
) -> App {
    let _ = store;
    let clock: Arc<dyn Clock> = match clock {
        Some(c) => c,
        None => Arc::new(SystemClock),
    };
    let options = RuntimeOptions {
        poll: std::time::Duration::from_millis(200),
        retry_after: std::time::Duration::from_millis(300),
        ..RuntimeOptions::default()
    };
    App::open(settings, clock, options).await.expect("open app")
}

/// A running app: the router plus the sequencer and projectors as tasks.
pub struct TestApp {
    pub app: App,
    pub router: axum::Router,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn start(store: &Store, clock: Option<Arc<ManualClock>>) -> TestApp {
        Self::start_with(store, clock, settings(&store.url), true).await
    }

    /// With given settings; `read_side` false leaves the sequencer and projectors stopped.
    pub async fn start_with(
        store: &Store,
        clock: Option<Arc<ManualClock>>,
        settings: Settings,
        read_side: bool,
    ) -> TestApp {
        let app = open_app_with(store, clock, settings).await;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let tasks = if read_side {
            app.read.spawn(rx)
        } else {
            vec![]
        };
        let router = tiaojie::router(app.clone());
        TestApp {
            app,
            router,
            stop,
            tasks,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.app.db.close().await;
    }

    pub async fn token(&self, role: Role, group: Option<GroupId>) -> String {
        let org = match role {
            Role::Supervisor => "区委督查室",
            _ => "测试单位",
        };
        let (_, secret) = tiaojie::auth::create_token(
            &self.app.db,
            &format!("test {}", role.as_str()),
            role,
            group,
            org,
            self.app.now(),
        )
        .await
        .expect("create token");
        secret
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Reply {
        self.call_with(
            method,
            path,
            token,
            body.map(|b| b.to_string().into_bytes()),
            &[],
        )
        .await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_ct {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            headers,
            bytes,
            json,
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub bytes: Vec<u8>,
    pub json: serde_json::Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts the status, printing the body when it differs.
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(
            self.status,
            status,
            "unexpected answer: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        self
    }

    pub fn is_problem(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json"))
            && self.json.get("code").and_then(|c| c.as_str()).is_some()
    }
}

/// Declares the same async test once per backend.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = $body;
                f($crate::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let f = $body;
                f($crate::Backend::Postgres).await;
            }
        }
    };
}

/// Forms a group through the command service; returns it with a leader and a member actor.
pub async fn form_group(
    app: &App,
    name: &str,
    communities: &[&str],
) -> (GroupId, Vec<tiaojie_events::group::Member>, Actor, Actor) {
    use tiaojie_events::group::{FormGroup, GroupCommand, Member, OrgRole};
    use tiaojie_events::{CommunityId, MemberId};
    let members = vec![
        Member {
            member_id: MemberId::new(),
            name: "王组长".into(),
            org_role: OrgRole::StreetOffice,
            organisation: "南关街道办事处".into(),
        },
        Member {
            member_id: MemberId::new(),
            name: "李司法".into(),
            org_role: OrgRole::Judicial,
            organisation: "南关司法所".into(),
        },
        Member {
            member_id: MemberId::new(),
            name: "赵民警".into(),
            org_role: OrgRole::Police,
            organisation: "南关派出所".into(),
        },
    ];
    let id = GroupId::new();
    let admin = Actor {
        id: "test-admin".into(),
        name: "管理员".into(),
        role: Role::Admin,
        organisation: "综合执法局".into(),
        group: None,
        account: None,
        member: None,
    };
    tiaojie::commands::group_command(
        app,
        &admin,
        &RequestMeta::new_request(),
        &id,
        GroupCommand::FormGroup(FormGroup {
            name: name.into(),
            street_office: "南关街道办事处".into(),
            communities: communities
                .iter()
                .map(|c| CommunityId::parse(c).expect("community"))
                .collect(),
            leader: members[0].clone(),
            members: members[1..].to_vec(),
            formed_at: None,
        }),
        None,
    )
    .await
    .expect("form group");
    let leader = Actor {
        id: format!("leader-{id}"),
        name: "王组长".into(),
        role: Role::Leader,
        organisation: name.into(),
        group: Some(id),
        account: None,
        member: None,
    };
    let member = Actor {
        id: format!("member-{id}"),
        name: "李调解".into(),
        role: Role::Member,
        organisation: name.into(),
        group: Some(id),
        account: None,
        member: None,
    };
    (id, members, leader, member)
}

pub use tiaojie::auth::Actor;
pub use tiaojie::commands::RequestMeta;

/// Registers a resident of a community in the party registry (as the system).
pub async fn register_party(app: &App, community: &str, name: &str) -> tiaojie_events::PartyId {
    tiaojie::parties::register(
        app,
        &Actor::system("test"),
        &RequestMeta::new_request(),
        tiaojie::parties::PartyKind::Resident,
        &tiaojie_events::CommunityId::parse(community).expect("community"),
        &tiaojie::parties::PartyData {
            name: name.into(),
            phone: Some("13895412345".into()),
            building: Some("3号楼".into()),
            ..Default::default()
        },
    )
    .await
    .expect("register party")
}

/// [`objection`] naming a party registered in the community.
pub async fn objection_in(
    app: &App,
    community: &str,
    summary: &str,
    at: Option<Timestamp>,
) -> tiaojie_events::case::CaseCommand {
    let mut c = objection(community, summary, at);
    if let tiaojie_events::case::CaseCommand::OpenCase(o) = &mut c {
        // An unknown community has no party to register (the command is refused anyway).
        if tiaojie_events::CommunityId::parse(community)
            .is_ok_and(|c| app.reference.community(&c).is_some())
        {
            for p in &mut o.parties {
                p.party_id = register_party(app, community, "马秀英").await;
            }
        }
    }
    c
}

/// An objection in a community, opened through the command service.
pub fn objection(
    community: &str,
    summary: &str,
    at: Option<Timestamp>,
) -> tiaojie_events::case::CaseCommand {
    use tiaojie_events::case::*;
    use tiaojie_events::{CategoryCode, CommunityId, PartyId};
    CaseCommand::OpenCase(OpenCase {
        kind: CaseKind::ResidentObjection,
        community: CommunityId::parse(community).expect("community"),
        category: CategoryCode::parse("cause.cost-sharing").expect("category"),
        summary: summary.into(),
        occurred_at: at,
        channel: IntakeChannel::Visit,
        parties: vec![PartyRef {
            party_id: PartyId::new(),
            role: PartyRole::Complainant,
        }],
        incident: None,
    })
}

/// Every row of every read model, as text, sorted: for comparing incremental and rebuilt
/// views.
pub async fn dump_views(app: &App) -> Vec<(String, Vec<String>)> {
    use sqlx::{Column, Row};
    let mut out = Vec::new();
    for p in &app.read.projectors {
        for table in p.tables() {
            let sql = format!("SELECT * FROM {table}");
            let mut rows: Vec<String> = tiaojie_projections::on_db!(&app.db, pool => {
                let rows = sqlx::query(&sql).fetch_all(pool).await.expect("dump");
                rows.iter()
                    .map(|r| {
                        (0..r.columns().len())
                            .map(|i| {
                                let name = r.columns()[i].name().to_string();
                                let v = if let Ok(v) = r.try_get::<Option<String>, _>(i) {
                                    format!("{v:?}")
                                } else if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
                                    format!("{v:?}")
                                } else if let Ok(v) = r.try_get::<Option<f64>, _>(i) {
                                    format!("{:?}", v.map(f64::to_bits))
                                } else {
                                    "?".to_string()
                                };
                                format!("{name}={v}")
                            })
                            .collect::<Vec<_>>()
                            .join("|")
                    })
                    .collect()
            });
            rows.sort();
            out.push((table.to_string(), rows));
        }
    }
    out
}

/// Rebuilds every read model and returns the views afterwards.
pub async fn rebuild_all(app: &App) -> Vec<(String, Vec<String>)> {
    for p in &app.read.projectors {
        tiaojie_projections::runtime::rebuild(&app.db, p.as_ref(), 37)
            .await
            .expect("rebuild");
    }
    dump_views(app).await
}

// ---- the world of the API tests ----

use axum::http::StatusCode as Status;
use serde_json::{json, Value};
use tiaojie_events::PartyId;

/// A store with two mediation groups, tokens for every role, and a registered party in
/// each of the groups' communities.
pub struct World {
    pub t: TestApp,
    pub admin: String,
    pub group: GroupId,
    pub leader: String,
    pub member: String,
    pub supervisor: String,
    pub dashboard: String,
    pub other_member: String,
    pub members: Vec<String>,
    /// A registered party per community of the two groups.
    pub parties: std::collections::HashMap<String, String>,
}

pub async fn world(b: Backend) -> (Store, World) {
    world_at(b, None).await
}

/// The world, on a clock the test moves.
pub async fn world_at(b: Backend, clock: Option<Arc<ManualClock>>) -> (Store, World) {
    world_with(b, clock, |_| {}).await
}

/// The world, with settings of the test's own.
pub async fn world_with(
    b: Backend,
    clock: Option<Arc<ManualClock>>,
    tweak: impl FnOnce(&mut Settings),
) -> (Store, World) {
    let store = Store::new(b).await;
    let mut s = settings(&store.url);
    tweak(&mut s);
    let t = TestApp::start_with(&store, clock, s, true).await;
    let admin = t.token(Role::Admin, None).await;
    let formed = t
        .call(
            "POST",
            "/api/v1/mediation-groups",
            Some(&admin),
            Some(json!({
                "name": "南城路片区矛盾调解小组",
                "street_office": "古雁街道办事处",
                "communities": ["jingfeng-yuan", "meiyuan"],
                "leader": {"name": "田玉梅", "org_role": "street_office", "organisation": "古雁街道办事处"},
                "members": [
                    {"name": "高峰", "org_role": "judicial", "organisation": "古雁司法所"},
                    {"name": "罗军", "org_role": "police", "organisation": "古雁派出所"}
                ]
            })),
        )
        .await
        .expect(Status::CREATED);
    let group = GroupId::parse(formed.json["id"].as_str().unwrap()).unwrap();
    let other = t
        .call(
            "POST",
            "/api/v1/mediation-groups",
            Some(&admin),
            Some(json!({
                "name": "西关北街片区矛盾调解小组", "street_office": "北塬街道办事处", "communities": ["donghai-yuanqu"],
                "leader": {"name": "王建国", "org_role": "street_office", "organisation": "北塬街道办事处"}
            })),
        )
        .await
        .expect(Status::CREATED);
    let other_group = GroupId::parse(other.json["id"].as_str().unwrap()).unwrap();
    let groups = t
        .call("GET", "/api/v1/mediation-groups", Some(&admin), None)
        .await
        .expect(Status::OK);
    let g = groups
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == group.to_string())
        .unwrap()
        .clone();
    let members: Vec<String> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap().to_string())
        .collect();
    let member = t.token(Role::Member, Some(group)).await;
    let other_member = t.token(Role::Member, Some(other_group)).await;
    let mut parties = std::collections::HashMap::new();
    for (community, token) in [
        ("jingfeng-yuan", &member),
        ("meiyuan", &member),
        ("donghai-yuanqu", &other_member),
    ] {
        parties.insert(
            community.to_string(),
            register_party_via_api(&t, token, community, "马秀英").await,
        );
    }
    let w = World {
        leader: t.token(Role::Leader, Some(group)).await,
        member,
        supervisor: t.token(Role::Supervisor, None).await,
        dashboard: t.token(Role::Dashboard, None).await,
        other_member,
        admin,
        group,
        members,
        parties,
        t,
    };
    (store, w)
}

/// Opens a case through the API as `token` (201 expected); answers the answer.
pub async fn open_case(t: &TestApp, token: &str, body: serde_json::Value) -> Reply {
    t.call("POST", "/api/v1/cases", Some(token), Some(body))
        .await
        .expect(Status::CREATED)
}

/// Opens a case through the API as `token`; answers its id.
pub async fn open_case_id(t: &TestApp, token: &str, body: serde_json::Value) -> String {
    open_case(t, token, body).await.json["id"]
        .as_str()
        .expect("the opened case's id")
        .to_string()
}

/// Registers a resident in a community through the API; answers the party id.
pub async fn register_party_via_api(
    t: &TestApp,
    token: &str,
    community: &str,
    name: &str,
) -> String {
    t.call(
        "POST",
        "/api/v1/parties",
        Some(token),
        Some(json!({"kind": "resident", "community": community, "name": name, "phone": "13895412345", "building": "3号楼"})),
    )
    .await
    .expect(Status::CREATED)
    .json["party_id"]
    .as_str()
    .unwrap()
    .to_string()
}

impl World {
    /// An objection in a community, naming the community's registered party.
    pub fn objection(&self, community: &str) -> Value {
        let party = self
            .parties
            .get(community)
            .cloned()
            .unwrap_or_else(|| PartyId::new().to_string());
        objection_naming(community, &party)
    }
}

pub fn objection_naming(community: &str, party: &str) -> Value {
    json!({
        "kind": "resident_objection",
        "community": community,
        "category": "cause.cost-sharing",
        "summary": "居民对屋面改造费用分摊有异议",
        "channel": "visit",
        "parties": [{"party_id": party, "role": "complainant"}]
    })
}

// ---- a browser without JavaScript, through the router ----

/// A browser without JavaScript: keeps cookies, follows nothing by itself.
pub struct NoJs<'a> {
    pub t: &'a TestApp,
    pub cookies: Vec<(String, String)>,
}

pub struct Answer {
    pub status: Status,
    pub location: String,
    pub body: String,
    pub set_cookies: Vec<String>,
}

impl<'a> NoJs<'a> {
    pub fn new(t: &'a TestApp) -> Self {
        NoJs { t, cookies: vec![] }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Answer {
        let cookie = self.cookie_header();
        let mut headers: Vec<(&str, &str)> = vec![];
        if !cookie.is_empty() {
            headers.push(("cookie", &cookie));
        }
        let body = form.map(|f| {
            f.iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        });
        if body.is_some() {
            headers.push(("content-type", "application/x-www-form-urlencoded"));
        }
        let r = self.t.call_with(method, path, None, body, &headers).await;
        let set_cookies: Vec<String> = r
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                if !v.is_empty() && !c.contains("Max-Age=0") {
                    self.cookies.push((k.to_string(), v.to_string()));
                }
            }
        }
        Answer {
            status: r.status,
            location: r.header("location").unwrap_or_default(),
            body: String::from_utf8_lossy(&r.bytes).into_owned(),
            set_cookies,
        }
    }

    pub async fn sign_in(&mut self, token: &str) -> Answer {
        let page = self.send("GET", "/login", None).await;
        let csrf = hidden(&page.body, "_csrf");
        self.send(
            "POST",
            "/login",
            Some(&[("_csrf", &csrf), ("token", token), ("next", "")]),
        )
        .await
    }
}

impl NoJs<'_> {
    /// Signs in with a login and a password (and a second factor's code).
    pub async fn sign_in_with(
        &mut self,
        login: &str,
        password: &str,
        code: Option<&str>,
    ) -> Answer {
        let page = self.send("GET", "/login", None).await;
        let csrf = hidden(&page.body, "_csrf");
        let mut form = vec![
            ("_csrf", csrf.as_str()),
            ("login", login),
            ("password", password),
            ("next", ""),
        ];
        if let Some(c) = code {
            form.push(("totp", c));
        }
        self.send("POST", "/login", Some(&form)).await
    }

    /// Posts a form of a signed-in page (the session's CSRF secret taken from `page`).
    pub async fn post_from(&mut self, page: &str, path: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = hidden(page, "_csrf");
        let mut form = vec![("_csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.send("POST", path, Some(&form)).await
    }
}

/// An account made directly: with a password of its own (no change asked), or with a
/// one-time password (answered) when `password` is None.
pub async fn account(
    t: &TestApp,
    login: &str,
    role: Role,
    member: Option<(GroupId, tiaojie_events::MemberId)>,
    password: Option<&str>,
) -> (tiaojie::accounts::Account, String) {
    tiaojie::accounts::create(
        &t.app,
        tiaojie::accounts::NewAccount {
            login: login.into(),
            display_name: format!("测试{login}"),
            organisation: "测试单位".into(),
            role,
            kind: tiaojie::accounts::Kind::Person,
            member,
            phone: None,
            password: password.map(str::to_string),
        },
        &Actor::system("test"),
        "test",
    )
    .await
    .expect("create an account")
}

/// A group's member id by name.
pub async fn member_named(t: &TestApp, g: GroupId, name: &str) -> tiaojie_events::MemberId {
    let state = t.app.directory.group_state(&g).await.unwrap().unwrap();
    state
        .members
        .values()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no member {name}"))
        .member_id
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first hidden input with this name.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}
