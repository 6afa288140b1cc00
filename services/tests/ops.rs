//! Operations, with real processes: two instances on one PostgreSQL with one of them
//! killed (SIGKILL) under write load; the append-only application role; PostgreSQL
//! restarting under load; a SQLite backup taken under write load and restored.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The master key of the test stores (32 bytes, base64).
const TEST_KEY: &str = "dGlhb2ppZS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";

use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, Row};

fn pg_admin_url() -> String {
    std::env::var("TIAOJIE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_db(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map(|(b, q)| (b.to_string(), format!("?{q}")))
        .unwrap_or((url.to_string(), String::new()));
    let base = &base[..base.rfind('/').unwrap()];
    format!("{base}/{db}{query}")
}

fn with_user(url: &str, user: &str) -> String {
    let rest = url.strip_prefix("postgres://").unwrap();
    let host = rest.split_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("postgres://{user}@{host}")
}

async fn fresh_pg(admin: &str) -> (String, String) {
    let name = format!("tj_ops_{}", uuid::Uuid::new_v4().simple());
    let mut c = PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required at {admin}: {e}"));
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    (with_db(admin, &name), name)
}

async fn drop_pg(admin: &str, name: &str) {
    if let Ok(mut c) = PgConnection::connect(admin).await {
        let _ = c
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}

struct Dir(PathBuf);
impl Dir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("tiaojie-ops-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    fn start(url: &str, dir: &Dir, extra_env: &[(&str, &str)]) -> Instance {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tiaojie"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", url)
            .env("TIAOJIE_MASTER_KEY", TEST_KEY)
            .env("RUST_LOG", "warn")
            .current_dir(&dir.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        // The server's warnings and errors land in the test's output, shown on failure.
        let errors = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for l in errors.lines().map_while(Result::ok) {
                eprintln!("[tiaojie] {l}");
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut base = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                base = format!("http://{}", rest.split_whitespace().next().unwrap());
                break;
            }
        }
        assert!(!base.is_empty(), "tiaojie serve did not start");
        std::thread::spawn(move || for _ in lines {});
        Instance { child, base }
    }

    fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn tiaojie(url: &str, dir: &Dir, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .env("RUST_LOG", "warn")
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "tiaojie {args:?}: {text}");
    text
}

fn token(url: &str, dir: &Dir, args: &[&str]) -> String {
    let mut a = vec!["token", "create"];
    a.extend_from_slice(args);
    tiaojie(url, dir, &a)
        .lines()
        .find(|l| l.starts_with("tj_"))
        .unwrap()
        .to_string()
}

/// Forms a group (admin) and returns the leader's and a member's token, and a registered
/// party in each of its two communities (meiyuan, defu).
async fn setup(
    client: &reqwest::Client,
    base: &str,
    url: &str,
    dir: &Dir,
) -> (String, String, Arc<Vec<String>>) {
    let admin = token(url, dir, &["--role", "admin", "--name", "管理员"]);
    let g: Value = client
        .post(format!("{base}/api/v1/mediation-groups"))
        .bearer_auth(&admin)
        .json(&json!({"name": "小组", "street_office": "南关街道办事处", "communities": ["meiyuan", "defu"], "leader": {"name": "组长", "org_role": "street_office", "organisation": "南关街道办事处"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gid = g["id"].as_str().unwrap().to_string();
    let leader = token(
        url,
        dir,
        &["--role", "leader", "--name", "组长", "--member-of", &gid],
    );
    let member = token(
        url,
        dir,
        &["--role", "member", "--name", "调解员", "--member-of", &gid],
    );
    let mut parties = Vec::new();
    for community in ["meiyuan", "defu"] {
        let p: Value = client
            .post(format!("{base}/api/v1/parties"))
            .bearer_auth(&member)
            .json(&json!({"kind": "resident", "community": community, "name": "马秀英"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        parties.push(p["party_id"].as_str().unwrap().to_string());
    }
    (leader, member, Arc::new(parties))
}

fn objection(n: usize, parties: &[String]) -> Value {
    json!({"kind": "resident_objection", "community": if n % 2 == 0 { "meiyuan" } else { "defu" }, "category": "cause.nuisance",
           "summary": format!("第{n}件"), "channel": "phone", "parties": [{"party_id": parties[n % 2], "role": "complainant"}]})
}

/// Writes cases and notes round-robin to the instances until told to stop; returns every
/// acknowledged (case id, version) and the statuses of the rest.
async fn write_load(
    client: reqwest::Client,
    bases: Arc<Mutex<Vec<String>>>,
    member: String,
    parties: Arc<Vec<String>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<(String, u64)>, Vec<u16>) {
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    let mut cases: Vec<String> = Vec::new();
    let mut n = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        n += 1;
        let base = {
            let b = bases.lock().unwrap();
            b[n % b.len()].clone()
        };
        let (path, body) = if cases.is_empty() || n % 3 == 0 {
            ("/api/v1/cases".to_string(), objection(n, &parties))
        } else {
            (
                format!("/api/v1/cases/{}/notes", cases[n % cases.len()]),
                json!({"note": format!("备注{n}")}),
            )
        };
        match client
            .post(format!("{base}{path}"))
            .bearer_auth(&member)
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let v: Value = r.json().await.unwrap();
                let id = v["id"].as_str().unwrap().to_string();
                if path == "/api/v1/cases" {
                    cases.push(id.clone());
                }
                acked.push((id, v["version"].as_u64().unwrap()));
            }
            Ok(r) => failed.push(r.status().as_u16()),
            Err(_) => failed.push(0),
        }
    }
    (acked, failed)
}

async fn assert_store_consistent(url: &str, acked: &[(String, u64)]) {
    let mut c = PgConnection::connect(url).await.unwrap();
    for (id, version) in acked {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE aggregate_id = $1 AND sequence = $2",
        )
        .bind(id)
        .bind(*version as i64)
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(n, 1, "acknowledged event {id}#{version} is missing");
    }
    let r = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT position), COALESCE(MIN(position), 0), COALESCE(MAX(position), 0), COUNT(DISTINCT (aggregate_type, aggregate_id, sequence)) FROM event_log").fetch_one(&mut c).await.unwrap();
    let (count, distinct, min, max, unique_events): (i64, i64, i64, i64, i64) =
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(
        (count, distinct, min, max, unique_events),
        (events, events, 1, events, events),
        "the log has a gap or a duplicate"
    );
}

async fn dump_views(url: &str) -> Vec<String> {
    let mut c = PgConnection::connect(url).await.unwrap();
    let mut out = Vec::new();
    for t in [
        "case_status",
        "community_heat",
        "heat_obstructors",
        "audit_trail",
        "daily_stats",
        "case_parties",
    ] {
        let rows: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM {t} t"
        ))
        .fetch_one(&mut c)
        .await
        .unwrap();
        out.push(format!("{t}\n{}", rows.unwrap_or_default()));
    }
    out
}

async fn wait_caught_up(client: &reqwest::Client, base: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            let v: Value = r.json().await.unwrap_or_default();
            let head = v["log_head"].as_i64().unwrap_or(-1);
            let caught_up = v["unsequenced_events"] == 0
                && v["projections"].as_array().is_some_and(|ps| {
                    !ps.is_empty() && ps.iter().all(|p| p["position"].as_i64() == Some(head))
                });
            if v["ready"] == true && caught_up {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the surviving instance did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_killed_under_load_lose_nothing() {
    let admin = pg_admin_url();
    let (url, name) = fresh_pg(&admin).await;
    let dir = Dir::new();
    tiaojie(&url, &dir, &["migrate"]);
    let mut a = Instance::start(&url, &dir, &[]);
    let b = Instance::start(&url, &dir, &[]);
    let client = reqwest::Client::new();
    let (_, member, parties) = setup(&client, &a.base, &url, &dir).await;
    let bases = Arc::new(Mutex::new(vec![a.base.clone(), b.base.clone()]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(write_load(
                client.clone(),
                bases.clone(),
                member.clone(),
                parties.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.kill9();
    let killed_at = Instant::now();
    *bases.lock().unwrap() = vec![b.base.clone()];
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap().0);
    }
    assert!(acked.len() > 50, "the load was too light: {}", acked.len());
    // The survivor takes over the sequencer and the projectors.
    wait_caught_up(&client, &b.base, Duration::from_secs(20)).await;
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(10), "takeover took {took:?}");
    assert_store_consistent(&url, &acked).await;
    let before = dump_views(&url).await;
    b.stop();
    tiaojie(&url, &dir, &["projections", "rebuild"]);
    let after = dump_views(&url).await;
    assert_eq!(before, after, "the read models differ from a clean rebuild");
    assert!(tiaojie(&url, &dir, &["audit", "verify"]).contains("verifies"));
    drop_pg(&admin, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_role_may_only_read_and_append_the_record() {
    let admin = pg_admin_url();
    let (url, name) = fresh_pg(&admin).await;
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let owner = format!("tj_owner_{suffix}");
    let app_role = format!("tj_app_{suffix}");
    let mut c = PgConnection::connect(&url).await.unwrap();
    for stmt in [
        format!("CREATE ROLE {owner} LOGIN"),
        format!("CREATE ROLE {app_role} LOGIN"),
        format!("ALTER DATABASE {name} OWNER TO {owner}"),
        format!("ALTER SCHEMA public OWNER TO {owner}"),
    ] {
        c.execute(stmt.as_str()).await.unwrap();
    }
    let dir = Dir::new();
    let owner_url = with_user(&url, &owner);
    let app_url = with_user(&url, &app_role);
    tiaojie(&owner_url, &dir, &["migrate"]);
    // deploy/postgres/grants.sql, for this test's role names.
    let grants = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/postgres/grants.sql"
    ))
    .unwrap()
    .replace("tiaojie_app", &app_role);
    let mut oc = PgConnection::connect(&owner_url).await.unwrap();
    sqlx::raw_sql(&grants).execute(&mut oc).await.unwrap();
    // The service runs with the application role, without migrating.
    let inst = Instance::start(&app_url, &dir, &[("TIAOJIE_MIGRATE_ON_START", "false")]);
    let client = reqwest::Client::new();
    let admin_token = token(
        &app_url,
        &dir,
        &[
            "--role",
            "admin",
            "--name",
            "管理员",
            "--migrate-on-start",
            "false",
        ],
    );
    let g = client
        .post(format!("{}/api/v1/mediation-groups", inst.base))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "小组", "street_office": "南关街道办事处", "communities": ["meiyuan"], "leader": {"name": "组长", "org_role": "street_office", "organisation": "南关街道办事处"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(g.status(), 201, "{}", g.text().await.unwrap());
    wait_caught_up(&client, &inst.base, Duration::from_secs(10)).await;
    let mut ac = PgConnection::connect(&app_url).await.unwrap();
    for sql in [
        "UPDATE events SET payload = payload",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE event_log SET chain_hash = ''",
        "DELETE FROM event_log",
        "ALTER TABLE events DISABLE TRIGGER USER",
        "DROP TABLE events",
    ] {
        let err = ac.execute(sql).await.expect_err(sql).to_string();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&mut ac)
        .await
        .unwrap();
    assert_eq!(n, 1);
    inst.stop();
    drop(ac);
    drop(oc);
    drop_pg(&admin, &name).await;
    for r in [&app_role, &owner] {
        let _ = c.execute(format!("DROP ROLE IF EXISTS {r}").as_str()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_under_write_load_restores_and_verifies() {
    let dir = Dir::new();
    let url = format!("sqlite:{}/live/tiaojie.db", dir.0.display());
    let inst = Instance::start(&url, &dir, &[]);
    let client = reqwest::Client::new();
    let (_, member, parties) = setup(&client, &inst.base, &url, &dir).await;
    let bases = Arc::new(Mutex::new(vec![inst.base.clone()]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(write_load(
                client.clone(),
                bases.clone(),
                member.clone(),
                parties.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Everything acknowledged up to here must be in the backup.
    let marker = client
        .post(format!("{}/api/v1/cases", inst.base))
        .bearer_auth(&member)
        .json(&objection(0, &parties))
        .send()
        .await
        .unwrap();
    let marker: Value = marker.json().await.unwrap();
    let backup = dir.0.join("backups/tiaojie-backup.db");
    let out = tiaojie(&url, &dir, &["backup", backup.to_str().unwrap()]);
    assert!(out.contains("Backup written"), "{out}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    inst.stop();
    let restored_url = format!("sqlite:{}/restored/tiaojie.db", dir.0.display());
    let out = tiaojie(&restored_url, &dir, &["restore", backup.to_str().unwrap()]);
    assert!(out.contains("Restored"), "{out}");
    let out = tiaojie(&restored_url, &dir, &["audit", "verify"]);
    assert!(out.contains("The audit chain verifies"), "{out}");
    // The marker case, acknowledged before the backup began, is in it.
    let db = std::path::Path::new(&dir.0).join("restored/tiaojie.db");
    let mut c =
        <sqlx::SqliteConnection as Connection>::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE aggregate_id = $1")
        .bind(marker["id"].as_str().unwrap())
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // A damaged backup is refused and nothing is replaced.
    let damaged = dir.0.join("backups/damaged.db");
    std::fs::copy(&backup, &damaged).unwrap();
    {
        let mut d = <sqlx::SqliteConnection as Connection>::connect(&format!(
            "sqlite://{}",
            damaged.display()
        ))
        .await
        .unwrap();
        d.execute("DROP TRIGGER events_no_update").await.unwrap();
        d.execute("UPDATE events SET payload = replace(payload, 'tj1:', 'tj1:A') WHERE rowid = (SELECT rowid FROM events WHERE event_type = 'CaseOpened' LIMIT 1)")
            .await
            .unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["restore", damaged.to_str().unwrap()])
        .env("DATABASE_URL", &restored_url)
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A PostgreSQL cluster of this test's own, which it may restart.
struct PrivatePg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().join("bin"))
                    .filter(|p| p.join("initdb").exists())
                    .max()
            })
            .expect("the PostgreSQL server binaries (initdb, pg_ctl) are needed for this test");
        let dir =
            std::env::temp_dir().join(format!("tiaojie-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if as_root {
            Command::new("chown")
                .args(["postgres", dir.to_str().unwrap()])
                .status()
                .unwrap();
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let pg = PrivatePg {
            bin,
            dir,
            port,
            as_root,
        };
        let data = pg.dir.join("data");
        assert!(
            pg.run(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust"
                ]
            ),
            "initdb failed"
        );
        pg.ctl("start");
        pg
    }

    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", exe.to_str().unwrap()]);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "60",
            "-o",
            &opts,
            action,
        ];
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        assert!(self.run("pg_ctl", &args), "pg_ctl {action} failed");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_nothing_and_readiness_tells_the_truth() {
    let pg = PrivatePg::start();
    let (url, _) = fresh_pg(&pg.url()).await;
    let dir = Dir::new();
    tiaojie(&url, &dir, &["migrate"]);
    let inst = Instance::start(&url, &dir, &[]);
    let client = reqwest::Client::new();
    let (_, member, parties) = setup(&client, &inst.base, &url, &dir).await;
    let bases = Arc::new(Mutex::new(vec![inst.base.clone()]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(write_load(
                client.clone(),
                bases.clone(),
                member.clone(),
                parties.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // Watch readiness all along.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let seen = Arc::new(Mutex::new(Vec::<u16>::new()));
    let watcher = {
        let (client, base, watching, seen) = (
            client.clone(),
            inst.base.clone(),
            watching.clone(),
            seen.clone(),
        );
        tokio::spawn(async move {
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let s = client
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(4))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                seen.lock().unwrap().push(s);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.ctl("stop");
    // While the database is down, commands are refused with 503, and readiness says so.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = client
        .post(format!("{}/api/v1/cases", inst.base))
        .bearer_auth(&member)
        .json(&objection(1, &parties))
        .send()
        .await
        .unwrap();
    assert_eq!(during.status(), 503, "{}", during.text().await.unwrap());
    pg.ctl("start");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for w in writers {
        let (a, f) = w.await.unwrap();
        acked.extend(a);
        refused.extend(f);
    }
    // Reconnected on its own: new commands succeed and everything catches up.
    let after = client
        .post(format!("{}/api/v1/cases", inst.base))
        .bearer_auth(&member)
        .json(&objection(2, &parties))
        .send()
        .await
        .unwrap();
    assert!(
        after.status().is_success(),
        "{}",
        after.text().await.unwrap()
    );
    wait_caught_up(&client, &inst.base, Duration::from_secs(20)).await;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    watcher.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&503),
        "readiness never reported the outage: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&200));
    assert!(
        refused.iter().all(|s| *s == 503 || *s == 0),
        "refusals during the outage are 503s: {refused:?}"
    );
    assert_store_consistent(&url, &acked).await;
    assert!(tiaojie(&url, &dir, &["audit", "verify"]).contains("verifies"));
    inst.stop();
}
