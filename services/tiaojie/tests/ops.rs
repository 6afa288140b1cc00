//! Operations, with real processes: two instances on one PostgreSQL with one of them
//! killed (SIGKILL) under write load; the append-only application role; PostgreSQL
//! restarting under load; a SQLite backup taken under write load and restored.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

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
        "/../../deploy/postgres/grants.sql"
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
    // Once the store is known to be down, requests are answered at once instead of each
    // waiting out the pool's acquire time-out (5 s).
    let started = Instant::now();
    for n in 0..5 {
        let r = client
            .get(format!("{}/api/v1/cases", inst.base))
            .bearer_auth(&member)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "request {n} during the outage");
        assert!(r.headers().get("retry-after").is_some());
    }
    let took = started.elapsed();
    eprintln!("5 requests during the outage answered in {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "requests during a known outage must fail fast, not wait for the pool: {took:?}"
    );
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
