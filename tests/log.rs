//! The global log and the read models: the chain is the same on both backends, the
//! PostgreSQL fence skips nothing, tampering is found, batches are exactly-once, a stuck
//! projector stops and says so, rebuilds equal incremental projection, heat decays.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Row;
use tiaojie::app::App;
use tiaojie::commands::{case_command, group_command};
use tiaojie_events::case::*;
use tiaojie_events::group::{FormGroup, GroupCommand, Member, OrgRole};
use tiaojie_events::metadata::Role;
use tiaojie_events::Clock;
use tiaojie_events::{
    CaseId, CategoryCode, CommunityId, GroupId, IncidentId, ManualClock, MemberId, PartyId,
    SessionId,
};
use tiaojie_projections::log::{self, SequenceOutcome};
use tiaojie_projections::models::heat::{self, Band};
use tiaojie_projections::on_db;
use tiaojie_projections::runtime::{self, BatchOutcome, FaultHook};
use tiaojie_tests::*;

fn uid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn meta(n: u32) -> RequestMeta {
    RequestMeta {
        request_id: format!("req-{n:04}"),
        trace_id: None,
        idempotency_key: None,
    }
}

/// A fixed scenario: fixed ids, fixed request ids, a manual clock. It gives the same
/// events, byte for byte, wherever it runs.
async fn fixed_scenario(app: &App, clock: &ManualClock) {
    let gid = GroupId(uid(1));
    let leader = Member {
        member_id: MemberId(uid(2)),
        name: "王组长".into(),
        org_role: OrgRole::StreetOffice,
        organisation: "南关街道办事处".into(),
    };
    let judicial = Member {
        member_id: MemberId(uid(3)),
        name: "李司法".into(),
        org_role: OrgRole::Judicial,
        organisation: "南关司法所".into(),
    };
    let admin = Actor {
        id: "admin".into(),
        name: "管理员".into(),
        role: Role::Admin,
        organisation: "执法局".into(),
        group: None,
        account: None,
        member: None,
    };
    group_command(
        app,
        &admin,
        &meta(1),
        &gid,
        GroupCommand::FormGroup(FormGroup {
            name: "南城路片区矛盾调解小组".into(),
            street_office: "古雁街道办事处".into(),
            communities: vec![
                CommunityId::parse("jingfeng-yuan").unwrap(),
                CommunityId::parse("meiyuan").unwrap(),
            ],
            leader: leader.clone(),
            members: vec![judicial.clone()],
            formed_at: None,
        }),
        None,
    )
    .await
    .unwrap();
    let lead = Actor {
        id: "leader".into(),
        name: "王组长".into(),
        role: Role::Leader,
        organisation: "南城路片区矛盾调解小组".into(),
        group: Some(gid),
        account: None,
        member: None,
    };
    let mut n = 1;
    for c in 0..3u128 {
        let case = CaseId(uid(100 + c));
        let party = PartyId(uid(200 + c));
        tiaojie::parties::register_as(
            app,
            &Actor::system("test"),
            &meta(1000 + c as u32),
            party,
            tiaojie::parties::PartyKind::Resident,
            &CommunityId::parse(if c == 1 { "meiyuan" } else { "jingfeng-yuan" }).unwrap(),
            &tiaojie::parties::PartyData {
                name: format!("阻工人{c}"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let session = SessionId(uid(300 + c));
        clock.advance(time::Duration::minutes(7));
        let at = clock.now();
        let cmds = vec![
            CaseCommand::OpenCase(OpenCase {
                kind: CaseKind::ConstructionObstruction,
                community: CommunityId::parse(if c == 1 { "meiyuan" } else { "jingfeng-yuan" })
                    .unwrap(),
                category: CategoryCode::parse("work.roof").unwrap(),
                summary: format!("第{c}起阻工：居民阻止吊车进场"),
                occurred_at: Some(at.minus(time::Duration::hours(3))),
                channel: IntakeChannel::OnSite,
                parties: vec![PartyRef {
                    party_id: party,
                    role: PartyRole::Obstructor,
                }],
                incident: Some(IncidentInput {
                    incident_id: IncidentId(uid(400 + c)),
                    occurred_at: Some(at.minus(time::Duration::hours(3))),
                    location: "3号楼".into(),
                    work_item: CategoryCode::parse("work.roof").unwrap(),
                    obstructing_parties: vec![party],
                    work_stopped_minutes: 90 + c as u32,
                    police_called: c == 0,
                    description: "阻工".into(),
                }),
            }),
            CaseCommand::ResumeWork(ResumeWork {
                incident_id: IncidentId(uid(400 + c)),
                resumed_at: None,
            }),
            CaseCommand::AcceptCase(AcceptCase { accepted_at: None }),
            CaseCommand::ScheduleSession(ScheduleSession {
                session_id: session,
                scheduled_for: at,
                location: "会议室".into(),
            }),
            CaseCommand::RecordSession(RecordSession {
                session_id: session,
                held_at: None,
                attendees: vec![Attendee::GroupMember {
                    member_id: leader.member_id,
                }],
                minutes_summary: "纪要".into(),
            }),
            CaseCommand::ReachAgreement(ReachAgreement {
                session_id: session,
                terms: "协议".into(),
                agreed_at: None,
                follow_up_due: at.plus_days(15),
                details: Default::default(),
            }),
            CaseCommand::CloseCase(CloseCase {
                outcome: Some(Outcome::ResolvedByAgreement),
                closed_at: None,
                summary: None,
            }),
        ];
        for cmd in cmds {
            n += 1;
            clock.advance(time::Duration::seconds(1));
            case_command(app, &lead, &meta(n), &case, cmd, None)
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_scenario_gives_the_same_chain_head_on_both_backends() {
    let mut heads = Vec::new();
    for b in [Backend::Sqlite, Backend::Postgres] {
        let store = Store::new(b).await;
        let clock = Arc::new(ManualClock::new(t0()));
        // Seeded data keys and nonces: the sealed free text is the same bytes on both.
        let mut s = settings(&store.url);
        s.test_key_seed = Some(2022);
        let app = open_app_with(&store, Some(clock.clone()), s).await;
        fixed_scenario(&app, &clock).await;
        app.read.catch_up().await.unwrap();
        let v = log::verify(&app.db).await.unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.checked, 1 + 3 * 8);
        heads.push((v.head_position, v.head_hash));
        app.db.close().await;
    }
    assert_eq!(
        heads[0], heads[1],
        "SQLite and PostgreSQL disagree on the chain head"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_fence_does_not_skip_a_late_committing_transaction() {
    let store = Store::new(Backend::Postgres).await;
    let app = open_app(&store, None).await;
    let (_, _, _, member) = form_group(&app, "小组", &["jingfeng-yuan"]).await;
    let early = CaseId::new();
    let late = CaseId::new();
    case_command(
        &app,
        &member,
        &RequestMeta::new_request(),
        &early,
        objection_in(&app, "jingfeng-yuan", "甲", None).await,
        None,
    )
    .await
    .unwrap();
    app.read.catch_up().await.unwrap();
    let head_before = log::log_head(&app.db).await.unwrap().0;
    // A long transaction appends the next event of `early` and stays open: it has the
    // lower transaction id.
    let tiaojie_projections::Db::Postgres(pool) = &app.db else {
        unreachable!()
    };
    let mut long_tx = pool.begin().await.unwrap();
    let note = serde_json::to_string(&CaseEvent::NoteAdded {
        note: "长事务写入".into(),
    })
    .unwrap();
    sqlx::query("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('Case', $1, 2, 'NoteAdded', '1', $2::json, '{}'::json)")
        .bind(early.to_string())
        .bind(&note)
        .execute(&mut *long_tx)
        .await
        .unwrap();
    // Meanwhile a later transaction commits.
    case_command(
        &app,
        &member,
        &RequestMeta::new_request(),
        &late,
        objection_in(&app, "jingfeng-yuan", "乙", None).await,
        None,
    )
    .await
    .unwrap();
    log::sequence_all(&app.db, 100).await.unwrap();
    let head_during = log::log_head(&app.db).await.unwrap().0;
    assert_eq!(
        head_during, head_before,
        "the sequencer must wait behind the open transaction"
    );
    long_tx.commit().await.unwrap();
    app.read.catch_up().await.unwrap();
    let rows: Vec<(i64, String, i64)> = on_db!(&app.db, p => sqlx::query("SELECT position, aggregate_id, sequence FROM event_log WHERE position > $1 ORDER BY position")
        .bind(head_before).fetch_all(p).await.unwrap().into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect());
    assert_eq!(
        rows,
        vec![
            (head_before + 1, early.to_string(), 2),
            (head_before + 2, late.to_string(), 1)
        ],
        "nothing skipped, commit order kept"
    );
    assert!(log::verify(&app.db).await.unwrap().ok);
    app.db.close().await;
}

both!(only_one_sequencer_works_at_a_time, |b| async move {
    let store = Store::new(b).await;
    let app = open_app(&store, None).await;
    let (_, _, _, member) = form_group(&app, "小组", &["defu"]).await;
    for i in 0..30 {
        case_command(
            &app,
            &member,
            &RequestMeta::new_request(),
            &CaseId::new(),
            objection_in(&app, "defu", &format!("案{i}"), None).await,
            None,
        )
        .await
        .unwrap();
    }
    // Several sequencers race in small batches; the log still has each event once, in order.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match log::sequence_batch(&db, 3).await.unwrap() {
                    SequenceOutcome::Appended { count: 0, .. } => break,
                    _ => tokio::task::yield_now().await,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    app.read.catch_up().await.unwrap();
    let (n, distinct, max): (i64, i64, i64) = on_db!(&app.db, p => {
        let r = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT aggregate_id || ':' || sequence), MAX(position) FROM event_log").fetch_one(p).await.unwrap();
        (r.get(0), r.get(1), r.get(2))
    });
    assert_eq!((n, distinct, max), (31, 31, 31));
    assert!(log::verify(&app.db).await.unwrap().ok);
    app.db.close().await;
});

/// Sequences every stored event (on PostgreSQL, waiting out transactions open elsewhere in
/// the cluster), without projecting.
async fn sequence_everything(app: &App) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        log::sequence_all(&app.db, 100).await.unwrap();
        if log::events_pending(&app.db).await.unwrap().1 == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events were left unsequenced"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn tamper(app: &App, b: Backend, sql: &str) {
    on_db!(&app.db, p => {
        if b == Backend::Postgres {
            sqlx::query("ALTER TABLE events DISABLE TRIGGER USER").execute(p).await.unwrap();
            sqlx::query("ALTER TABLE event_log DISABLE TRIGGER USER").execute(p).await.unwrap();
        } else {
            for t in ["events_no_update", "events_no_delete", "event_log_no_update", "event_log_no_delete"] {
                sqlx::query(&format!("DROP TRIGGER IF EXISTS {t}")).execute(p).await.unwrap();
            }
        }
        for stmt in sql.split(';') {
            sqlx::query(stmt).execute(p).await.unwrap();
        }
    });
}

both!(tampering_is_found_at_its_position, |b| async move {
    let cases = [
        ("change a payload", "UPDATE events SET payload = REPLACE(payload::text, 'tj1:', 'tj1:A')::json WHERE (aggregate_id, sequence) IN (SELECT aggregate_id, sequence FROM event_log WHERE position = 10)", 10),
        ("delete a log row", "DELETE FROM event_log WHERE position = 7", 7),
        ("delete an event", "DELETE FROM events WHERE (aggregate_id, sequence) IN (SELECT aggregate_id, sequence FROM event_log WHERE position = 12)", 12),
        ("reorder two positions", "UPDATE event_log SET position = -5 WHERE position = 5;UPDATE event_log SET position = 5 WHERE position = 6;UPDATE event_log SET position = 6 WHERE position = -5", 5),
    ];
    for (what, sql, bad) in cases {
        let store = Store::new(b).await;
        let clock = Arc::new(ManualClock::new(t0()));
        let app = open_app(&store, Some(clock.clone())).await;
        fixed_scenario(&app, &clock).await;
        app.read.catch_up().await.unwrap();
        assert!(log::verify(&app.db).await.unwrap().ok);
        let sql = if b == Backend::Sqlite {
            sql.replace("::text", "").replace("::json", "")
        } else {
            sql.to_string()
        };
        tamper(&app, b, &sql).await;
        let v = log::verify(&app.db).await.unwrap();
        assert!(!v.ok, "{what}: not detected");
        assert_eq!(v.first_bad_position, Some(bad), "{what}: {v:?}");
        app.db.close().await;
    }
});

both!(
    a_batch_is_exactly_once_whatever_crashes_where,
    |b| async move {
        let store = Store::new(b).await;
        let clock = Arc::new(ManualClock::new(t0()));
        let app = open_app(&store, Some(clock.clone())).await;
        fixed_scenario(&app, &clock).await;
        sequence_everything(&app).await;
        // Every projector "crashes" once between writing its views and moving its checkpoint.
        let crashed: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let c2 = crashed.clone();
        let fault: FaultHook = Arc::new(move |name: &str, _pos: i64| {
            let mut c = c2.lock().unwrap();
            if c.iter().any(|x| x == name) {
                false
            } else {
                c.push(name.to_string());
                true
            }
        });
        let upcasters = runtime::Upcasters::default();
        for p in &app.read.projectors {
            let r = runtime::run_batch(
                &app.db,
                p.as_ref(),
                p.name(),
                "",
                7,
                &upcasters,
                Some(&fault),
            )
            .await;
            assert!(r.is_err(), "{} did not crash", p.name());
            assert_eq!(
                runtime::checkpoint_of(&app.db, p.name()).await.unwrap(),
                0,
                "the checkpoint must not move"
            );
            // Restart: the batch runs again from the same checkpoint.
            loop {
                match runtime::run_batch(
                    &app.db,
                    p.as_ref(),
                    p.name(),
                    "",
                    7,
                    &upcasters,
                    Some(&fault),
                )
                .await
                .unwrap()
                {
                    BatchOutcome::Applied { count: 0, .. } => break,
                    _ => continue,
                }
            }
        }
        assert_eq!(crashed.lock().unwrap().len(), app.read.projectors.len());
        let incremental = dump_views(&app).await;
        let rebuilt = rebuild_all(&app).await;
        assert_eq!(incremental, rebuilt);
        app.db.close().await;
    }
);

both!(rebuild_equals_incremental_for_the_demo, |b| async move {
    let store = Store::new(b).await;
    let app = open_app(&store, None).await;
    tiaojie::demo::load(&app, false).await.unwrap();
    app.read.catch_up().await.unwrap();
    let incremental = dump_views(&app).await;
    assert!(incremental
        .iter()
        .any(|(t, rows)| t == "case_status" && rows.len() == tiaojie::demo::stories()));
    let rebuilt = rebuild_all(&app).await;
    assert_eq!(incremental, rebuilt);
    // And the projections status reports no lag.
    let (head, unsequenced, list) = runtime::status(&app.db, &app.read.projectors)
        .await
        .unwrap();
    assert_eq!(unsequenced, 0);
    assert!(list
        .iter()
        .all(|p| p.position == head && p.lag == 0 && p.last_error.is_none()));
    app.db.close().await;
});

/// A case of a random history: its id, parties, sessions and incidents.
type RandomCase = (CaseId, Vec<PartyId>, Vec<SessionId>, Vec<IncidentId>);

/// Random histories: commands chosen at random (many refused by the rules), run through the
/// command service against the real store, projected incrementally in random batch sizes,
/// then rebuilt.
async fn random_history(app: &App, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (_, members, leader, member) = form_group(
        app,
        "随机小组",
        &["jingfeng-yuan", "meiyuan", "defu", "dianxin"],
    )
    .await;
    let communities = ["jingfeng-yuan", "meiyuan", "defu", "dianxin"];
    let mut cases: Vec<RandomCase> = Vec::new();
    let upcasters = runtime::Upcasters::default();
    for step in 0..160 {
        let pick = rng.gen_range(0..16);
        if cases.is_empty() || pick == 0 || pick == 1 {
            let id = CaseId::new();
            let obstruction = rng.gen_bool(0.4);
            let community = communities[rng.gen_range(0..4)];
            let party = register_party(app, community, "马秀英").await;
            let incident = IncidentId::new();
            let cmd = CaseCommand::OpenCase(OpenCase {
                kind: if obstruction {
                    CaseKind::ConstructionObstruction
                } else {
                    CaseKind::ResidentObjection
                },
                community: CommunityId::parse(community).unwrap(),
                category: CategoryCode::parse(if obstruction {
                    "work.roads"
                } else {
                    "cause.nuisance"
                })
                .unwrap(),
                summary: format!("随机案件{step}"),
                occurred_at: None,
                channel: IntakeChannel::Phone,
                parties: vec![PartyRef {
                    party_id: party,
                    role: if obstruction {
                        PartyRole::Obstructor
                    } else {
                        PartyRole::Complainant
                    },
                }],
                incident: obstruction.then(|| IncidentInput {
                    incident_id: incident,
                    occurred_at: None,
                    location: "工地".into(),
                    work_item: CategoryCode::parse("work.roads").unwrap(),
                    obstructing_parties: vec![party],
                    work_stopped_minutes: rng.gen_range(0..600),
                    police_called: rng.gen_bool(0.3),
                    description: "阻工".into(),
                }),
            });
            if case_command(app, &member, &RequestMeta::new_request(), &id, cmd, None)
                .await
                .is_ok()
            {
                cases.push((
                    id,
                    vec![party],
                    vec![],
                    if obstruction { vec![incident] } else { vec![] },
                ));
            }
            continue;
        }
        let i = rng.gen_range(0..cases.len());
        let (id, parties, sessions, incidents) = cases[i].clone();
        let any_session = sessions.last().copied().unwrap_or_else(SessionId::new);
        let any_incident = incidents.last().copied().unwrap_or_else(IncidentId::new);
        let (actor, cmd) = match pick {
            2 => (
                &member,
                CaseCommand::AcceptCase(AcceptCase { accepted_at: None }),
            ),
            3 => {
                let s = SessionId::new();
                cases[i].2.push(s);
                (
                    &member,
                    CaseCommand::ScheduleSession(ScheduleSession {
                        session_id: s,
                        scheduled_for: app.now(),
                        location: "会议室".into(),
                    }),
                )
            }
            4 => (
                &member,
                CaseCommand::RecordSession(RecordSession {
                    session_id: any_session,
                    held_at: None,
                    attendees: vec![Attendee::GroupMember {
                        member_id: members[0].member_id,
                    }],
                    minutes_summary: "纪要".into(),
                }),
            ),
            5 => (
                &member,
                CaseCommand::ReachAgreement(ReachAgreement {
                    session_id: any_session,
                    terms: "协议".into(),
                    agreed_at: None,
                    follow_up_due: app.now().plus_days(15),
                    details: Default::default(),
                }),
            ),
            6 => (
                &member,
                CaseCommand::FailMediation(FailMediation {
                    reason: "分歧".into(),
                    next_route: Route::Court,
                    failed_at: None,
                }),
            ),
            7 => (
                &leader,
                CaseCommand::Escalate(Escalate {
                    route: Route::Police,
                    reason: "多次阻工".into(),
                    escalated_at: None,
                }),
            ),
            8 => {
                let inc = IncidentId::new();
                cases[i].3.push(inc);
                (
                    &member,
                    CaseCommand::RecordIncident(RecordIncident {
                        incident: IncidentInput {
                            incident_id: inc,
                            occurred_at: None,
                            location: "工地".into(),
                            work_item: CategoryCode::parse("work.roof").unwrap(),
                            obstructing_parties: parties.clone(),
                            work_stopped_minutes: rng.gen_range(0..300),
                            police_called: false,
                            description: "阻工".into(),
                        },
                    }),
                )
            }
            9 => (
                &member,
                CaseCommand::RecordPoliceIntervention(RecordPoliceIntervention {
                    incident_id: incidents.last().copied(),
                    police_unit: "派出所".into(),
                    intervened_at: None,
                    outcome: "劝离".into(),
                }),
            ),
            10 => (
                &member,
                CaseCommand::ResumeWork(ResumeWork {
                    incident_id: any_incident,
                    resumed_at: None,
                }),
            ),
            11 => (
                &member,
                CaseCommand::RecordFollowUp(RecordFollowUp {
                    visited_at: None,
                    satisfaction: Satisfaction::Satisfied,
                    notes: None,
                }),
            ),
            12 => (
                &leader,
                CaseCommand::CloseCase(CloseCase {
                    outcome: Some(
                        [
                            Outcome::ResolvedByAgreement,
                            Outcome::Referred,
                            Outcome::ResolvedOtherwise,
                            Outcome::NotAdmissible,
                        ][rng.gen_range(0..4)],
                    ),
                    closed_at: None,
                    summary: None,
                }),
            ),
            13 => (
                &leader,
                CaseCommand::ReopenCase(ReopenCase {
                    reason: "重启".into(),
                    reopened_at: None,
                }),
            ),
            14 => (
                &member,
                CaseCommand::Withdraw(Withdraw {
                    reason: "撤回".into(),
                    withdrawn_at: None,
                }),
            ),
            _ => (
                &member,
                CaseCommand::AddNote(AddNote {
                    note: "备注".into(),
                }),
            ),
        };
        let _ = case_command(app, actor, &RequestMeta::new_request(), &id, cmd, None).await;
        if rng.gen_bool(0.2) {
            // Project incrementally, in batches of random size.
            let size = rng.gen_range(1..20);
            log::sequence_all(&app.db, rng.gen_range(1..10))
                .await
                .unwrap();
            for p in &app.read.projectors {
                runtime::run_batch(&app.db, p.as_ref(), p.name(), "", size, &upcasters, None)
                    .await
                    .unwrap();
            }
        }
    }
    log::sequence_all(&app.db, 50).await.unwrap();
    for p in &app.read.projectors {
        while let BatchOutcome::Applied { count, .. } =
            runtime::run_batch(&app.db, p.as_ref(), p.name(), "", 13, &upcasters, None)
                .await
                .unwrap()
        {
            if count == 0 {
                break;
            }
        }
    }
}

// The running read side (the sequencer and every read model in one cycle, projecting what
// the sequencer hands over) leaves the same read models as a rebuild from the log.
both!(the_running_read_side_equals_a_rebuild, |b| async move {
    let store = Store::new(b).await;
    let t = TestApp::start(&store, None).await;
    random_history(&t.app, 4).await;
    // Every stored event logged, and every read model at the log's head.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, pending) = log::events_pending(&t.app.db).await.unwrap();
        let head = log::log_head(&t.app.db).await.unwrap().0;
        if pending == 0
            && t.app
                .read
                .wait_for_position(head, std::time::Duration::from_secs(1))
                .await
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "caught up by {head}");
    }
    let incremental = dump_views(&t.app).await;
    let rebuilt = rebuild_all(&t.app).await;
    assert_eq!(incremental, rebuilt);
    t.stop().await;
});

both!(
    rebuild_equals_incremental_for_random_histories,
    |b| async move {
        for seed in [1u64, 2, 3] {
            let store = Store::new(b).await;
            let app = open_app(&store, None).await;
            random_history(&app, seed).await;
            let incremental = dump_views(&app).await;
            let rebuilt = rebuild_all(&app).await;
            assert_eq!(incremental, rebuilt, "seed {seed}");
            assert!(log::verify(&app.db).await.unwrap().ok);
            app.db.close().await;
        }
    }
);

both!(
    a_projector_stops_at_an_event_it_cannot_apply,
    |b| async move {
        let store = Store::new(b).await;
        let app = open_app(&store, None).await;
        let (_, _, _, member) = form_group(&app, "小组", &["meiyuan"]).await;
        let id = CaseId::new();
        case_command(
            &app,
            &member,
            &RequestMeta::new_request(),
            &id,
            objection_in(&app, "meiyuan", "甲", None).await,
            None,
        )
        .await
        .unwrap();
        // An event this release cannot read, written behind the command path's back.
        let json = if b == Backend::Postgres {
            "$1::json"
        } else {
            "$1"
        };
        on_db!(&app.db, p => {
            sqlx::query(&format!("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('Case', $2, 2, 'Teleported', '1', {json}, '{{}}')"))
                .bind(r#"{"type":"Teleported"}"#).bind(id.to_string()).execute(p).await.unwrap();
        });
        let other = CaseId::new();
        case_command(
            &app,
            &member,
            &RequestMeta::new_request(),
            &other,
            objection_in(&app, "meiyuan", "乙", None).await,
            None,
        )
        .await
        .unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let tasks = app.read.spawn(rx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, _, list) = runtime::status(&app.db, &app.read.projectors)
                .await
                .unwrap();
            // The audit trail goes on past it (marking the event it cannot read); every
            // other read model stops right before it.
            let audit = list.iter().find(|p| p.name == "audit_trail").unwrap();
            if list
                .iter()
                .all(|p| p.failed_position.is_some() || p.name == "audit_trail")
                && audit.position == 4
            {
                assert_eq!(audit.failed_position, None);
                for p in list.iter().filter(|p| p.name != "audit_trail") {
                    assert_eq!(p.failed_position, Some(3), "{}: {p:?}", p.name);
                    assert_eq!(
                        p.position, 2,
                        "{} must stop before the event, not skip it: {p:?}",
                        p.name
                    );
                    assert!(
                        p.last_error.as_deref().unwrap_or("").contains("position 3"),
                        "{p:?}"
                    );
                }
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "projectors did not report the stuck event: {list:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(!app.read.health.healthy());
        let _ = stop.send(true);
        for t in tasks {
            t.await.unwrap();
        }
        // The case after the bad event is not in the read model: nothing was skipped.
        let v =
            tiaojie_projections::models::case_status::get(&app.db, &other.to_string(), &app.now())
                .await
                .unwrap();
        assert!(v.is_none());
        app.db.close().await;
    }
);

both!(heat_decays_with_the_clock, |b| async move {
    let store = Store::new(b).await;
    let clock = Arc::new(ManualClock::new(t0()));
    let app = open_app(&store, Some(clock.clone())).await;
    let (_, _, _, member) = form_group(&app, "小组", &["dianxin"]).await;
    let party = register_party(&app, "dianxin", "马秀英").await;
    let cmd = CaseCommand::OpenCase(OpenCase {
        kind: CaseKind::ConstructionObstruction,
        community: CommunityId::parse("dianxin").unwrap(),
        category: CategoryCode::parse("work.power").unwrap(),
        summary: "阻工".into(),
        occurred_at: None,
        channel: IntakeChannel::OnSite,
        parties: vec![PartyRef {
            party_id: party,
            role: PartyRole::Obstructor,
        }],
        incident: Some(IncidentInput {
            incident_id: IncidentId::new(),
            occurred_at: None,
            location: "工地".into(),
            work_item: CategoryCode::parse("work.power").unwrap(),
            obstructing_parties: vec![party],
            work_stopped_minutes: 240,
            police_called: true,
            description: "阻工".into(),
        }),
    });
    case_command(
        &app,
        &member,
        &RequestMeta::new_request(),
        &CaseId::new(),
        cmd,
        None,
    )
    .await
    .unwrap();
    app.read.catch_up().await.unwrap();
    let heat_at = |now| {
        let app = app.clone();
        async move {
            heat::communities(&app.db, &app.read_config, &now)
                .await
                .unwrap()
                .into_iter()
                .find(|c| c.id == "dianxin")
                .unwrap()
        }
    };
    // Case 2 + incident 2 + 4 h × 0.5 = 6.
    let h0 = heat_at(clock.now()).await;
    assert!((h0.heat - 6.0).abs() < 0.01, "{h0:?}");
    assert_eq!(h0.band, Band::Amber);
    assert_eq!(h0.work_stopped_hours, 4.0);
    let h1 = heat_at(clock.now().plus_days(14)).await;
    assert!((h1.heat - 3.0).abs() < 0.01, "one half-life later: {h1:?}");
    assert_eq!(h1.band, Band::Green);
    let h2 = heat_at(clock.now().plus_days(28)).await;
    assert!((h2.heat - 1.5).abs() < 0.01);
    // A community without reports says so.
    let quiet = heat::communities(&app.db, &app.read_config, &clock.now())
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == "fuyou")
        .unwrap();
    assert!(!quiet.reports);
    assert_eq!(quiet.band, Band::NoReports);
    // Districts are normalised per 100 households (南城路片区: 831).
    let d = heat::districts(&app.db, &app.read_config, &clock.now())
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.id == "nanchenglu")
        .unwrap();
    assert!(
        (d.heat_per_100_households.unwrap() - 6.0 * 100.0 / 831.0).abs() < 0.01,
        "{d:?}"
    );
    app.db.close().await;
});

both!(repeat_obstructors_are_counted, |b| async move {
    let store = Store::new(b).await;
    let app = open_app(&store, None).await;
    let (_, _, _, member) = form_group(&app, "小组", &["jingfeng-yuan"]).await;
    let party = register_party(&app, "jingfeng-yuan", "马秀英").await;
    for i in 0..3 {
        let cmd = CaseCommand::OpenCase(OpenCase {
            kind: CaseKind::ConstructionObstruction,
            community: CommunityId::parse("jingfeng-yuan").unwrap(),
            category: CategoryCode::parse("work.roof").unwrap(),
            summary: format!("第{i}次阻工"),
            occurred_at: None,
            channel: IntakeChannel::OnSite,
            parties: vec![PartyRef {
                party_id: party,
                role: PartyRole::Obstructor,
            }],
            incident: Some(IncidentInput {
                incident_id: IncidentId::new(),
                occurred_at: None,
                location: "工地".into(),
                work_item: CategoryCode::parse("work.roof").unwrap(),
                obstructing_parties: vec![party],
                work_stopped_minutes: 30,
                police_called: false,
                description: "阻工".into(),
            }),
        });
        case_command(
            &app,
            &member,
            &RequestMeta::new_request(),
            &CaseId::new(),
            cmd,
            None,
        )
        .await
        .unwrap();
        app.read.catch_up().await.unwrap();
        let c = heat::communities(&app.db, &app.read_config, &app.now())
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.id == "jingfeng-yuan")
            .unwrap();
        // Two incidents make a repeat obstructor (the default threshold).
        assert_eq!(c.repeat_obstructors, if i >= 1 { 1 } else { 0 });
    }
    let list = heat::repeat_obstructors(&app.db, 2, Some(&["jingfeng-yuan".to_string()]))
        .await
        .unwrap();
    assert_eq!(list, vec![(party.to_string(), 3)]);
    assert!(
        heat::repeat_obstructors(&app.db, 2, Some(&["meiyuan".to_string()]))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(heat::repeat_obstructors(&app.db, 4, None)
        .await
        .unwrap()
        .is_empty());
    app.db.close().await;
});

both!(reads_keep_working_during_a_rebuild, |b| async move {
    let store = Store::new(b).await;
    let app = open_app(&store, None).await;
    tiaojie::demo::load(&app, false).await.unwrap();
    app.read.catch_up().await.unwrap();
    // 0: before the rebuild, 1: rebuilding, 2: done. Only reads that began and ended while
    // the rebuild ran are counted.
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let first_read = Arc::new(tokio::sync::Notify::new());
    let reader = {
        let app = app.clone();
        let phase = phase.clone();
        let first_read = first_read.clone();
        tokio::spawn(async move {
            let mut during = 0;
            loop {
                let began = phase.load(Ordering::SeqCst);
                if began == 2 {
                    break;
                }
                let page = tiaojie_projections::models::case_status::list(
                    &app.db,
                    &app.keys,
                    &Default::default(),
                    &app.now(),
                    None,
                )
                .await
                .expect("read during rebuild");
                assert!(
                    !page.items.is_empty(),
                    "a read during the rebuild saw no cases"
                );
                heat::communities(&app.db, &app.read_config, &app.now())
                    .await
                    .expect("heat during rebuild");
                first_read.notify_one();
                if began == 1 && phase.load(Ordering::SeqCst) == 1 {
                    during += 1;
                }
                tokio::task::yield_now().await;
            }
            during
        })
    };
    first_read.notified().await;
    phase.store(1, Ordering::SeqCst);
    for p in &app.read.projectors {
        runtime::rebuild(&app.db, p.as_ref(), 5).await.unwrap();
    }
    phase.store(2, Ordering::SeqCst);
    let during = reader.await.unwrap();
    assert!(during > 0, "no read completed while the rebuild ran");
    app.db.close().await;
});
