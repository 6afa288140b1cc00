//! Helpers of the tests that run the real binary: stores, instances, tokens, load.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The master key of the test stores (32 bytes, base64).
pub const TEST_KEY: &str = "dGlhb2ppZS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";

use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, Row};

pub fn pg_admin_url() -> String {
    std::env::var("TIAOJIE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn with_db(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map(|(b, q)| (b.to_string(), format!("?{q}")))
        .unwrap_or((url.to_string(), String::new()));
    let base = &base[..base.rfind('/').unwrap()];
    format!("{base}/{db}{query}")
}

pub fn with_user(url: &str, user: &str) -> String {
    let rest = url.strip_prefix("postgres://").unwrap();
    let host = rest.split_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("postgres://{user}@{host}")
}

pub async fn fresh_pg(admin: &str) -> (String, String) {
    let name = format!("tj_ops_{}", uuid::Uuid::new_v4().simple());
    let mut c = PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required at {admin}: {e}"));
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    (with_db(admin, &name), name)
}

pub async fn drop_pg(admin: &str, name: &str) {
    if let Ok(mut c) = PgConnection::connect(admin).await {
        let _ = c
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}

pub struct Dir(pub PathBuf);
impl Dir {
    pub fn new() -> Self {
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

pub struct Instance {
    pub child: Child,
    pub base: String,
}

impl Instance {
    pub fn start(url: &str, dir: &Dir, extra_env: &[(&str, &str)]) -> Instance {
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

    pub fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A test that fails before stopping its instance does not leave the server running (and,
/// on a tmpfs, holding the mount busy).
impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn tiaojie(url: &str, dir: &Dir, args: &[&str]) -> String {
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

pub fn token(url: &str, dir: &Dir, args: &[&str]) -> String {
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
pub async fn setup(
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

pub fn objection(n: usize, parties: &[String]) -> Value {
    json!({"kind": "resident_objection", "community": if n % 2 == 0 { "meiyuan" } else { "defu" }, "category": "cause.nuisance",
           "summary": format!("第{n}件"), "channel": "phone", "parties": [{"party_id": parties[n % 2], "role": "complainant"}]})
}

/// Writes cases and notes round-robin to the instances until told to stop; returns every
/// acknowledged (case id, version) and the statuses of the rest.
pub async fn write_load(
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

pub async fn assert_store_consistent(url: &str, acked: &[(String, u64)]) {
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

pub async fn dump_views(url: &str) -> Vec<String> {
    let mut c = PgConnection::connect(url).await.unwrap();
    let mut out = Vec::new();
    for t in [
        "case_status",
        "community_heat",
        "heat_obstructors",
        "heat_obstructor_totals",
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

pub async fn wait_caught_up(client: &reqwest::Client, base: &str, within: Duration) {
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

/// A PostgreSQL cluster of this test's own, which it may restart.
pub struct PrivatePg {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub port: u16,
    pub as_root: bool,
}

impl PrivatePg {
    pub fn start() -> PrivatePg {
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

    pub fn run(&self, tool: &str, args: &[&str]) -> bool {
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

    pub fn ctl(&self, action: &str) {
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

    pub fn url(&self) -> String {
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
