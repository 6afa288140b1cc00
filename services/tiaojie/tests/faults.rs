//! Faults of the machine under the store, through the real binary: a full disk and a
//! read-only store (SQLite on a small tmpfs the test mounts, as root), a read-only and an
//! exhausted and a slow PostgreSQL, a backup onto a full disk, and a master key file that
//! cannot be read. Writes during a fault are refused with 507 or 503, never 500; every
//! acknowledged command survives; when the fault is mended the node recovers by itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A tmpfs of `size` mounted for this test, unmounted at the end.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        assert!(
            is_root(),
            "this test mounts a small tmpfs to fill it, which needs root: run it as root (tests/run.sh in CI runs as root)"
        );
        let dir =
            std::env::temp_dir().join(format!("tiaojie-fs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                dir.to_str().unwrap(),
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "could not mount a tmpfs at {} (the test needs mount(8) and root)",
            dir.display()
        );
        Tmpfs(dir)
    }

    fn remount(&self, opts: &str) -> bool {
        Command::new("mount")
            .args(["-o", &format!("remount,{opts}"), self.0.to_str().unwrap()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Fills the file system up to the last byte; answers the filler's path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", self.0.to_str().unwrap()])
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn readyz(client: &reqwest::Client, base: &str) -> (u16, Value) {
    match client.get(format!("{base}/readyz")).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or_default())
        }
        Err(_) => (0, Value::Null),
    }
}

async fn wait_for(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sqlite_count(path: &Path, acked: &[(String, u64)]) -> usize {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mut missing = 0;
    for (id, version) in acked {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE aggregate_id = $1 AND sequence = $2",
        )
        .bind(id)
        .bind(*version as i64)
        .fetch_one(&mut c)
        .await
        .unwrap();
        if n != 1 {
            missing += 1;
        }
    }
    missing
}

fn no_500(statuses: &[u16]) {
    assert!(
        !statuses.iter().any(|s| *s >= 500 && *s != 503 && *s != 507),
        "an answer during the fault was neither 503 nor 507: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_refused_and_recovered_without_a_restart() {
    let fs = Tmpfs::mount("24m");
    let db = fs.0.join("tiaojie.db");
    let url = format!("sqlite:{}", db.display());
    let dir = Dir::new();
    tiaojie(&url, &dir, &["migrate"]);
    let inst = Instance::start(&url, &dir, &[]);
    let client = reqwest::Client::new();
    let (_, member, parties) = setup(&client, &inst.base, &url, &dir).await;
    let bases = Arc::new(Mutex::new(vec![inst.base.clone()]));
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
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let filler = fs.fill();
    // While the disk is full: writes get 507 (or 503), readiness says the node cannot write.
    let mut seen: Vec<u16> = Vec::new();
    wait_for(
        "a refusal of a write on the full disk",
        Duration::from_secs(20),
        async || {
            let r = client
                .post(format!("{}/api/v1/cases", inst.base))
                .bearer_auth(&member)
                .json(&objection(0, &parties))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            seen.push(status);
            if status == 507 {
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["code"], "insufficient_storage");
                assert!(v["detail"].as_str().unwrap().contains("空间已满"));
                true
            } else {
                false
            }
        },
    )
    .await;
    no_500(&seen);
    wait_for(
        "readiness to say the node cannot write",
        Duration::from_secs(10),
        async || {
            let (s, v) = readyz(&client, &inst.base).await;
            s == 503 && v["writable"] == false
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Space comes back: the node recovers by itself, without a restart.
    std::fs::remove_file(&filler).unwrap();
    wait_caught_up(&client, &inst.base, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for w in writers {
        let (a, f) = w.await.unwrap();
        acked.extend(a);
        refused.extend(f);
    }
    no_500(&refused);
    assert!(
        refused.iter().any(|s| *s == 507 || *s == 503),
        "the writers met the fault: {refused:?}"
    );
    let r = client
        .post(format!("{}/api/v1/cases", inst.base))
        .bearer_auth(&member)
        .json(&objection(1, &parties))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "writes work again");
    wait_caught_up(&client, &inst.base, Duration::from_secs(30)).await;
    inst.stop();
    assert_eq!(
        sqlite_count(&db, &acked).await,
        0,
        "an acknowledged command was lost"
    );
    let verify = tiaojie(&url, &dir, &["audit", "verify"]);
    assert!(
        verify.contains("verif") || verify.contains("ok"),
        "{verify}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sqlite_store_is_refused_with_a_sentence_and_opens_once_writable() {
    let fs = Tmpfs::mount("16m");
    let db = fs.0.join("tiaojie.db");
    let url = format!("sqlite:{}", db.display());
    let dir = Dir::new();
    tiaojie(&url, &dir, &["migrate"]);
    // The volume comes back read-only (after a crash, say): the service says so.
    assert!(fs.remount("ro"), "remount read-only");
    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &url)
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "serve started on a read-only store");
    assert!(!text.contains("panicked"), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("tiaojie: ") && last.contains("read-only"),
        "a sentence: {text}"
    );
    // Writable again: it opens, and nothing was half-written.
    assert!(fs.remount("rw"), "remount read-write");
    let inst = Instance::start(&url, &dir, &[]);
    let client = reqwest::Client::new();
    let (_, member, parties) = setup(&client, &inst.base, &url, &dir).await;
    let r = client
        .post(format!("{}/api/v1/cases", inst.base))
        .bearer_auth(&member)
        .json(&objection(0, &parties))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_caught_up(&client, &inst.base, Duration::from_secs(20)).await;
    inst.stop();
}

async fn terminate_sessions(admin: &str, db: &str) {
    let mut c = PgConnection::connect(admin).await.unwrap();
    c.execute(
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()")
            .as_str(),
    )
    .await
    .unwrap();
}

async fn alter_db(admin: &str, db: &str, setting: &str) {
    let mut c = PgConnection::connect(admin).await.unwrap();
    c.execute(format!("ALTER DATABASE {db} {setting}").as_str())
        .await
        .unwrap();
    drop(c);
    // Settings take effect in new sessions: end the old ones, as a failover would.
    terminate_sessions(admin, db).await;
}

/// Posts objections until one is answered as `until` says; answers every status seen.
async fn post_until(
    client: &reqwest::Client,
    base: &str,
    member: &str,
    parties: &[String],
    within: Duration,
    until: impl Fn(u16, &Value) -> bool,
) -> Vec<u16> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        if let Ok(r) = client
            .post(format!("{base}/api/v1/cases"))
            .bearer_auth(member)
            .json(&objection(seen.len(), parties))
            .timeout(Duration::from_secs(15))
            .send()
            .await
        {
            let s = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            let v: Value = r.json().await.unwrap_or_default();
            assert!(s < 500 || retry, "{s} without Retry-After: {v}");
            seen.push(s);
            if until(s, &v) {
                return seen;
            }
        } else {
            seen.push(0);
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_exhausted_or_slow_postgres_is_503_and_the_pool_recovers() {
    let admin = pg_admin_url();
    let (admin_url, name) = fresh_pg(&admin).await;
    // The service's own role, not a superuser: limits on connections apply to it.
    let role = format!("tj_fault_{}", &name[7..19]);
    {
        let mut c = PgConnection::connect(&admin).await.unwrap();
        c.execute(format!("CREATE ROLE {role} LOGIN").as_str())
            .await
            .unwrap();
        c.execute(format!("ALTER DATABASE {name} OWNER TO {role}").as_str())
            .await
            .unwrap();
        let mut d = PgConnection::connect(&admin_url).await.unwrap();
        d.execute(format!("ALTER SCHEMA public OWNER TO {role}").as_str())
            .await
            .unwrap();
    }
    let url = with_user(&admin_url, &role);
    let dir = Dir::new();
    tiaojie(&url, &dir, &["migrate"]);
    let inst = Instance::start(&url, &dir, &[]);
    let client = reqwest::Client::new();
    let (_, member, parties) = setup(&client, &inst.base, &url, &dir).await;
    let ok = |s: u16, _: &Value| s == 201;

    // A read-only server (a standby after a failover): 503 storage_read_only, reads go on.
    alter_db(&admin, &name, "SET default_transaction_read_only = on").await;
    let seen = post_until(
        &client,
        &inst.base,
        &member,
        &parties,
        Duration::from_secs(20),
        |s, v| s == 503 && v["code"] == "storage_read_only",
    )
    .await;
    no_500(&seen);
    wait_for(
        "readiness to say the node cannot write",
        Duration::from_secs(10),
        async || {
            let (s, v) = readyz(&client, &inst.base).await;
            s == 503 && v["writable"] == false
        },
    )
    .await;
    let r = client
        .get(format!("{}/api/v1/cases", inst.base))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "reads work on a read-only server");
    alter_db(&admin, &name, "RESET default_transaction_read_only").await;
    no_500(
        &post_until(
            &client,
            &inst.base,
            &member,
            &parties,
            Duration::from_secs(20),
            ok,
        )
        .await,
    );
    wait_caught_up(&client, &inst.base, Duration::from_secs(20)).await;

    // No connections to be had: 503, never 500, and the pool recovers.
    alter_db(&admin, &name, "CONNECTION LIMIT 0").await;
    let seen = post_until(
        &client,
        &inst.base,
        &member,
        &parties,
        Duration::from_secs(30),
        |s, _| s == 503,
    )
    .await;
    no_500(&seen);
    alter_db(&admin, &name, "CONNECTION LIMIT -1").await;
    no_500(
        &post_until(
            &client,
            &inst.base,
            &member,
            &parties,
            Duration::from_secs(30),
            ok,
        )
        .await,
    );

    // Statements that take too long: 503 with Retry-After, and back when they do not.
    alter_db(&admin, &name, "SET statement_timeout = 1").await;
    let seen = post_until(
        &client,
        &inst.base,
        &member,
        &parties,
        Duration::from_secs(30),
        |s, _| s == 503,
    )
    .await;
    no_500(&seen);
    alter_db(&admin, &name, "RESET statement_timeout").await;
    no_500(
        &post_until(
            &client,
            &inst.base,
            &member,
            &parties,
            Duration::from_secs(30),
            ok,
        )
        .await,
    );
    wait_caught_up(&client, &inst.base, Duration::from_secs(30)).await;
    inst.stop();
    drop_pg(&admin, &name).await;
    if let Ok(mut c) = PgConnection::connect(&admin).await {
        let _ = c
            .execute(format!("DROP ROLE IF EXISTS {role}").as_str())
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_onto_a_full_disk_fails_clearly_and_leaves_no_partial_file() {
    let dir = Dir::new();
    let url = format!("sqlite:{}/tiaojie.db", dir.0.display());
    tiaojie(&url, &dir, &["demo"]);
    let fs = Tmpfs::mount("128k");
    let target = fs.0.join("backup.db");
    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["backup", target.to_str().unwrap()])
        .env("DATABASE_URL", &url)
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "a backup onto a full disk succeeded");
    assert!(
        text.contains("full") && text.contains("no backup file"),
        "{text}"
    );
    let left: Vec<_> = std::fs::read_dir(&fs.0).unwrap().collect();
    assert!(left.is_empty(), "files were left behind: {left:?}");
}

#[test]
fn an_unreadable_master_key_file_is_a_sentence() {
    let dir = Dir::new();
    let url = format!("sqlite:{}/tiaojie.db", dir.0.display());
    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["serve", "--master-key-file", "/nonexistent/master.key"])
        .env("DATABASE_URL", &url)
        .env_remove("TIAOJIE_MASTER_KEY")
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success());
    assert!(
        text.contains("cannot read the master key file /nonexistent/master.key"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}
