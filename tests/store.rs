//! The event store: migrations, append-only enforcement, metadata, and concurrent writers
//! on one case, on SQLite and PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;

use tiaojie_events::case::{AddNote, CaseCommand};
use tiaojie_events::CaseId;
use tiaojie_projections::on_db;
use tiaojie_tests::*;

both!(migrations_are_idempotent, |b| async move {
    let store = Store::new(b).await;
    let app = open_app(&store, None).await;
    tiaojie_projections::migrate(&app.db, &app.read.projectors)
        .await
        .expect("second migration");
    app.db.close().await;
    // A second process opening the same store migrates again, harmlessly.
    let again = open_app(&store, None).await;
    let n: i64 = on_db!(&again.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM projection_checkpoint").fetch_one(p).await.unwrap());
    assert_eq!(
        n, 6,
        "one checkpoint per read model, however often migrated"
    );
    again.db.close().await;
});

both!(events_are_append_only, |b| async move {
    let store = Store::new(b).await;
    let app = open_app(&store, None).await;
    let (_, _, _, member) = form_group(&app, "小组", &["jingfeng-yuan"]).await;
    let id = CaseId::new();
    tiaojie::commands::case_command(
        &app,
        &member,
        &RequestMeta::new_request(),
        &id,
        objection_in(&app, "jingfeng-yuan", "漏水", None).await,
        None,
    )
    .await
    .expect("open");
    app.read.catch_up().await.expect("catch up");
    let attempts = [
        "UPDATE events SET payload = payload",
        "DELETE FROM events",
        "UPDATE event_log SET chain_hash = 'x'",
        "DELETE FROM event_log",
    ];
    for sql in attempts {
        let r = on_db!(&app.db, p => sqlx::query(sql).execute(p).await.map(|_| ()));
        let err = r.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if b == Backend::Postgres {
        for sql in ["TRUNCATE events", "TRUNCATE event_log"] {
            let r = on_db!(&app.db, p => sqlx::query(sql).execute(p).await.map(|_| ()));
            let err = r.expect_err(sql).to_string();
            assert!(err.contains("append-only"), "{sql}: {err}");
        }
    }
    let n: i64 = on_db!(&app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await.unwrap());
    assert_eq!(
        n, 2,
        "the group's and the case's first event are still there"
    );
    app.db.close().await;
});

both!(every_event_carries_its_metadata, |b| async move {
    let store = Store::new(b).await;
    let app = open_app(&store, None).await;
    let (_, _, _, member) = form_group(&app, "小组", &["meiyuan"]).await;
    let id = CaseId::new();
    let meta = RequestMeta {
        request_id: "req-123".into(),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        idempotency_key: None,
    };
    tiaojie::commands::case_command(
        &app,
        &member,
        &meta,
        &id,
        objection_in(&app, "meiyuan", "噪声", None).await,
        None,
    )
    .await
    .expect("open");
    let events = app
        .stores
        .case_events(&id.to_string())
        .await
        .expect("events");
    let m = tiaojie_events::metadata::EventMetadata::from_map(&events[0].metadata);
    assert_eq!(m.actor_id, member.id);
    assert_eq!(m.role, tiaojie_events::metadata::Role::Member);
    assert_eq!(m.organisation, "小组");
    assert_eq!(m.request_id, "req-123");
    assert_eq!(
        m.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(m.app_version, env!("CARGO_PKG_VERSION"));
    assert!(m.recorded_at.unix_micros() > 0);
    app.db.close().await;
});

both!(
    concurrent_writers_on_one_case_lose_nothing,
    |b| async move {
        let store = Store::new(b).await;
        let app = open_app(&store, None).await;
        let (_, _, _, member) = form_group(&app, "小组", &["defu"]).await;
        let id = CaseId::new();
        tiaojie::commands::case_command(
            &app,
            &member,
            &RequestMeta::new_request(),
            &id,
            objection_in(&app, "defu", "扬尘", None).await,
            None,
        )
        .await
        .expect("open");
        let writers = 16;
        let per_writer = 6;
        // Two instances on one store, as two service processes: commands on one case take
        // turns within an instance and race across instances.
        let other = Arc::new(open_app(&store, None).await);
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for w in 0..writers {
            let app = if w % 2 == 0 {
                app.clone()
            } else {
                other.clone()
            };
            let member = member.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..per_writer {
                    let note = format!("writer {w} note {i}");
                    let r = tiaojie::commands::case_command(
                        &app,
                        &member,
                        &RequestMeta::new_request(),
                        &id,
                        CaseCommand::AddNote(AddNote { note: note.clone() }),
                        None,
                    )
                    .await;
                    match r {
                        Ok(o) => acked.push((note, o.version, o.retries)),
                        Err(e) => panic!("a writer lost: {} {}", e.code, e.title),
                    }
                }
                acked
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.expect("writer"));
        }
        assert_eq!(acked.len(), writers * per_writer);
        let retries: u32 = acked.iter().map(|a| a.2).sum();
        assert!(
            retries > 0,
            "16 writers on one case, from two instances, must have collided at least once"
        );
        // Every acknowledged note is stored exactly once, sequences are 1..=n without gaps,
        // and each answer's version is the sequence of its event.
        let rows: Vec<(i64, String)> = app
            .stores
            .case_events(&id.to_string())
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.sequence as i64,
                    serde_json::to_string(&e.payload).unwrap(),
                )
            })
            .collect();
        assert_eq!(rows.len(), 1 + writers * per_writer);
        for (i, (seq, _)) in rows.iter().enumerate() {
            assert_eq!(*seq, i as i64 + 1);
        }
        let mut seen = HashSet::new();
        for (note, version, _) in &acked {
            let (_, payload) = &rows[*version as usize - 1];
            assert!(
                payload.contains(note.as_str()),
                "version {version} holds {payload}, not {note}"
            );
            assert!(seen.insert(*version), "two answers claim version {version}");
        }
        app.db.close().await;
    }
);

/// The SQLite append is one multi-row statement: a clash on any event is an
/// optimistic-lock conflict (which the command path retries), and nothing of that append
/// is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clashing_sqlite_append_is_a_conflict_and_writes_nothing() {
    use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
    use tiaojie_events::group::MediationGroup;
    use tiaojie_projections::db::Db;
    use tiaojie_projections::sqlite_append::SqliteAppendRepository;

    let store = Store::new(Backend::Sqlite).await;
    let app = open_app(&store, None).await;
    let Db::Sqlite(pool) = &app.db else {
        panic!("a SQLite store")
    };
    let repo = SqliteAppendRepository::new(pool.clone());
    let event = |sequence: usize, note: &str| SerializedEvent {
        aggregate_id: "append-test".into(),
        sequence,
        aggregate_type: "MediationGroup".into(),
        event_type: "NoteAdded".into(),
        event_version: "1.0".into(),
        payload: serde_json::json!({ "note": note }),
        metadata: serde_json::json!({}),
    };
    repo.persist::<MediationGroup>(&[event(1, "a"), event(2, "b")], None)
        .await
        .expect("the first append");
    let clash = repo
        .persist::<MediationGroup>(&[event(3, "c"), event(2, "d")], None)
        .await;
    assert!(
        matches!(clash, Err(PersistenceError::OptimisticLockError)),
        "{clash:?}"
    );
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM events WHERE aggregate_id = 'append-test' ORDER BY sequence",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(stored, vec![1, 2], "all or nothing");
    let read = repo
        .get_events::<MediationGroup>("append-test")
        .await
        .expect("read back");
    assert_eq!(read[1].payload, serde_json::json!({ "note": "b" }));
    app.db.close().await;
}

/// A transaction cut off while its `BEGIN` is in flight (a client gone, a time-out) leaves
/// no pooled connection inside a transaction: sqlx's PostgreSQL `begin` is not cancel-safe
/// (transact-rs/sqlx#4393), so `Db::begin` begins in a task of its own. PostgreSQL only:
/// sqlx's SQLite `begin` is cancel-safe. One pooled connection, watched from another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_cut_off_while_it_begins_leaves_none_open() {
    let store = Store::new(Backend::Postgres).await;
    let options = tiaojie_projections::DbOptions {
        max_connections: 1,
        ..Default::default()
    };
    let db = tiaojie_projections::Db::connect(&store.url, &options)
        .await
        .unwrap();
    let pid: i32 = on_db!(&db, p => sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(p)
        .await
        .unwrap());
    let mut watcher = <sqlx::PgConnection as sqlx::Connection>::connect(&store.url)
        .await
        .unwrap();
    let mut cut = 0;
    for i in 0..200u64 {
        let wait = std::time::Duration::from_micros(i % 100);
        match tokio::time::timeout(wait, db.begin()).await {
            Err(_) => cut += 1,
            Ok(tx) => drop(tx),
        }
        // An abandoned transaction's ROLLBACK is queued and sent a moment later; on a busy
        // machine that moment can be long. A leaked one never ends: wait up to 3 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let state = loop {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
                    .bind(pid)
                    .fetch_optional(&mut watcher)
                    .await
                    .unwrap()
                    .flatten();
            if state.as_deref() == Some("idle") || std::time::Instant::now() > deadline {
                break state;
            }
        };
        assert_eq!(
            state.as_deref(),
            Some("idle"),
            "attempt {i}: the pooled connection is left {state:?}"
        );
    }
    assert!(cut > 0, "no attempt was cut off; the test proves nothing");
}
