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

// An instance keeps the aggregates it wrote in memory. When another instance has written
// since, what the state in memory would answer is checked against the stored stream first:
// an `If-Match` of the newer version is accepted, not refused as a mismatch; a command
// decided on the older state is decided again, and nothing is lost or numbered twice.
both!(
    an_aggregate_kept_in_memory_gives_way_to_the_stored_stream,
    |b| async move {
        let store = Store::new(b).await;
        let app = open_app(&store, None).await;
        let other = open_app(&store, None).await;
        let (_, _, _, member) = form_group(&app, "小组", &["defu"]).await;
        let id = CaseId::new();
        app.stores.note_new_case(&id.to_string());
        let run = |app: &tiaojie::app::App, note: &str, expected: Option<u64>| {
            let (app, member, note) = (app.clone(), member.clone(), note.to_string());
            async move {
                tiaojie::commands::case_command(
                    &app,
                    &member,
                    &RequestMeta::new_request(),
                    &id,
                    CaseCommand::AddNote(AddNote { note }),
                    expected,
                )
                .await
            }
        };
        let opened = tiaojie::commands::case_command(
            &app,
            &member,
            &RequestMeta::new_request(),
            &id,
            objection_in(&app, "defu", "扬尘", None).await,
            None,
        )
        .await
        .expect("open");
        assert_eq!(opened.version, 1);
        // The other instance writes twice; this one still holds version 1.
        assert_eq!(run(&other, "b1", None).await.unwrap().version, 2);
        assert_eq!(run(&other, "b2", Some(2)).await.unwrap().version, 3);
        let answered = run(&app, "a1", Some(3))
            .await
            .expect("If-Match of the stored version");
        assert_eq!((answered.version, answered.retries), (4, 0));
        // A stale expectation is still refused, with the stored version.
        let refused = run(&other, "b3", Some(3))
            .await
            .expect_err("a stale If-Match");
        assert!(
            matches!(refused.kind, tiaojie::app_error::ErrorKind::VersionMismatch),
            "{refused:?}"
        );
        assert_eq!(run(&other, "b4", None).await.unwrap().version, 5);
        // Without If-Match, this instance's state in memory (version 4) loses the race
        // once, and the command is decided again on the stored stream.
        let raced = run(&app, "a2", None).await.expect("decided again");
        assert_eq!((raced.version, raced.retries), (6, 1));
        let notes: Vec<u64> = app
            .stores
            .case_events(&id.to_string())
            .await
            .unwrap()
            .iter()
            .map(|e| e.sequence as u64)
            .collect();
        assert_eq!(notes, vec![1, 2, 3, 4, 5, 6]);
        app.db.close().await;
    }
);

// Group commit: appends written together commit together, except the one that clashes
// (its aggregate's next number, or its new data key, taken already), which is answered as
// a conflict and leaves nothing of itself; a command's events are all or nothing.
both!(
    a_group_commit_refuses_only_the_clashing_append,
    |b| async move {
        use cqrs_es::persist::SerializedEvent;
        use tiaojie_projections::append::{Append, AppendError, Appender, NewKey};

        let store = Store::new(b).await;
        let app = open_app(&store, None).await;
        let appender = Appender::new(&app.db);
        let event = |id: &str, sequence: usize, note: &str| SerializedEvent {
            aggregate_id: id.into(),
            sequence,
            aggregate_type: "MediationGroup".into(),
            event_type: "NoteAdded".into(),
            event_version: "1.0".into(),
            payload: serde_json::json!({ "note": note }),
            metadata: serde_json::json!({}),
        };
        let append = |events: Vec<SerializedEvent>, key: Option<&str>| Append {
            aggregate_type: "MediationGroup",
            events,
            key: key.map(|id| NewKey {
                kind: "case",
                id: id.into(),
                kek_id: "k".into(),
                wrapped: format!("wrapped-{id}"),
                created_at: "2026-12-04T00:00:00Z".into(),
            }),
            parties: vec![],
        };
        appender
            .append(append(
                vec![event("g-a", 1, "a"), event("g-a", 2, "b")],
                Some("taken"),
            ))
            .await
            .expect("the first append");
        // One batch, as the writer takes it when these are queued together.
        let answers = tiaojie_projections::append::write(
            &app.db,
            &[
                append(vec![event("g-a", 3, "c"), event("g-a", 2, "d")], None),
                append(vec![event("g-b", 1, "e"), event("g-b", 2, "f")], None),
                append(vec![event("g-c", 1, "g")], Some("taken")),
                append(vec![event("g-d", 1, "h")], Some("new")),
            ],
        )
        .await;
        let [clash, fine, key_taken, fine_with_key] = <[_; 4]>::try_from(answers).unwrap();
        assert!(matches!(clash, Err(AppendError::Conflict)), "{clash:?}");
        assert!(
            matches!(key_taken, Err(AppendError::Conflict)),
            "{key_taken:?}"
        );
        fine.expect("an append beside a clashing one commits");
        fine_with_key.expect("an append with a new key commits");
        let stored: Vec<(String, i64)> = on_db!(&app.db, p => sqlx::query_as(
        "SELECT aggregate_id, sequence FROM events WHERE aggregate_id LIKE 'g-%' ORDER BY aggregate_id, sequence",
    )
    .fetch_all(p)
    .await
    .unwrap());
        let stored: Vec<(&str, i64)> = stored.iter().map(|(a, s)| (a.as_str(), *s)).collect();
        assert_eq!(
            stored,
            vec![("g-a", 1), ("g-a", 2), ("g-b", 1), ("g-b", 2), ("g-d", 1)],
            "all or nothing per command"
        );
        let keys: Vec<(String, String)> = on_db!(&app.db, p => sqlx::query_as(
        "SELECT id, wrapped FROM data_keys WHERE kek_id = 'k' ORDER BY id",
    )
    .fetch_all(p)
    .await
    .unwrap());
        assert_eq!(
            keys,
            vec![
                ("new".to_string(), "wrapped-new".to_string()),
                ("taken".to_string(), "wrapped-taken".to_string())
            ],
            "a key is stored with its events, and a key taken already is not replaced"
        );
        app.db.close().await;
    }
);

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

// The parties a command names are checked in its append's transaction: a command naming a
// party that is not registered, or one whose data was erased, is refused alone and leaves
// nothing of itself (not even its new case's key); the others in the batch commit, each
// answered with the parties it names as the registry holds them.
both!(
    a_group_commit_checks_the_parties_each_command_names,
    |b| async move {
        use cqrs_es::persist::SerializedEvent;
        use tiaojie_projections::append::{write, Append, AppendError, NewKey, PartyUnusable};

        let store = Store::new(b).await;
        let app = open_app(&store, None).await;
        let meta = tiaojie::commands::RequestMeta::new_request();
        let mut registered = vec![];
        for name in ["登记甲", "登记乙"] {
            let id = tiaojie::parties::register(
                &app,
                &tiaojie::auth::Actor::system("test"),
                &meta,
                tiaojie::parties::PartyKind::Resident,
                &tiaojie_events::CommunityId::parse("meiyuan").unwrap(),
                &tiaojie::parties::PartyData {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .to_string();
            registered.push(id);
        }
        let (fine, erased) = (registered[0].clone(), registered[1].clone());
        assert!(tiaojie::parties::erase(
            &app,
            &tiaojie::auth::Actor::system("test"),
            &meta,
            &erased,
            "测试"
        )
        .await
        .unwrap());
        let unknown = tiaojie_events::PartyId::new().to_string();
        let append = |id: &str, parties: Vec<&str>| Append {
            aggregate_type: "Case",
            events: vec![SerializedEvent {
                aggregate_id: id.into(),
                sequence: 1,
                aggregate_type: "Case".into(),
                event_type: "NoteAdded".into(),
                event_version: "1".into(),
                payload: serde_json::json!({ "note": id }),
                metadata: serde_json::json!({}),
            }],
            key: Some(NewKey {
                kind: "case",
                id: id.into(),
                kek_id: "k".into(),
                wrapped: format!("wrapped-{id}"),
                created_at: "2026-12-05T00:00:00Z".into(),
            }),
            parties: parties.into_iter().map(String::from).collect(),
        };
        // All of them may be named: written together, each answered with its parties.
        let answers = write(
            &app.db,
            &[append("p-1", vec![&fine]), append("p-2", vec![])],
        )
        .await;
        let [one, two] = <[_; 2]>::try_from(answers).unwrap();
        let one = one.expect("a command naming a registered party commits");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].party_id, fine);
        assert_eq!(one[0].incidents, 0);
        assert!(!one[0].sealed.is_empty(), "the sealed record comes along");
        assert_eq!(two.expect("a command naming no party commits"), vec![]);
        // Some may not: only they are refused, naming the first party at fault.
        let answers = write(
            &app.db,
            &[
                append("p-3", vec![&fine, &unknown]),
                append("p-4", vec![&fine]),
                append("p-5", vec![&erased, &unknown]),
            ],
        )
        .await;
        let [three, four, five] = <[_; 3]>::try_from(answers).unwrap();
        assert!(
            matches!(&three, Err(AppendError::Party(PartyUnusable { party_id, erased: false })) if *party_id == unknown),
            "{three:?}"
        );
        assert_eq!(four.expect("the others commit")[0].party_id, fine);
        assert!(
            matches!(&five, Err(AppendError::Party(PartyUnusable { party_id, erased: true })) if *party_id == erased),
            "{five:?}"
        );
        let stored: Vec<String> = on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_id LIKE 'p-%' ORDER BY aggregate_id",
    )
    .fetch_all(p)
    .await
    .unwrap());
        assert_eq!(stored, vec!["p-1", "p-2", "p-4"]);
        let keys: Vec<String> = on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT id FROM data_keys WHERE kek_id = 'k' ORDER BY id",
    )
    .fetch_all(p)
    .await
    .unwrap());
        assert_eq!(
            keys,
            vec!["p-1", "p-2", "p-4"],
            "a refused command stores no key"
        );
        app.db.close().await;
    }
);

// A command the database refuses for any reason but a clash (here an event numbered 0,
// which the events table's check refuses) fails alone: the batch is written again one
// command at a time, and the others in it commit.
both!(
    a_bad_append_does_not_fail_the_others_in_its_batch,
    |b| async move {
        use cqrs_es::persist::SerializedEvent;
        use tiaojie_projections::append::{write, Append, AppendError};

        let store = Store::new(b).await;
        let app = open_app(&store, None).await;
        let append = |id: &str, sequence: usize| Append {
            aggregate_type: "MediationGroup",
            events: vec![SerializedEvent {
                aggregate_id: id.into(),
                sequence,
                aggregate_type: "MediationGroup".into(),
                event_type: "NoteAdded".into(),
                event_version: "1.0".into(),
                payload: serde_json::json!({ "note": id }),
                metadata: serde_json::json!({}),
            }],
            key: None,
            parties: vec![],
        };
        let answers = write(
            &app.db,
            &[append("b-1", 1), append("b-bad", 0), append("b-2", 1)],
        )
        .await;
        let [first, bad, second] = <[_; 3]>::try_from(answers).unwrap();
        first.expect("the first command commits");
        second.expect("the last command commits");
        assert!(matches!(bad, Err(AppendError::Failed(_))), "{bad:?}");
        let stored: Vec<String> = on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_id LIKE 'b-%' ORDER BY aggregate_id",
    )
    .fetch_all(p)
    .await
    .unwrap());
        assert_eq!(stored, vec!["b-1".to_string(), "b-2".to_string()]);
        app.db.close().await;
    }
);
