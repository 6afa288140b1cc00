//! `tiaojie bench rebuild`: fills an empty store with a generated history of realistic case
//! lives (written straight into the events table in large transactions, the way a bulk
//! import would), then measures the sequencer and the rebuild of every read model.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::bail;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tiaojie_events::case::*;
use tiaojie_events::metadata::{EventMetadata, Role};
use tiaojie_events::{
    CategoryCode, CommunityId, GroupId, IncidentId, MemberId, PartyId, SessionId, Timestamp,
};
use tiaojie_projections::db::{upsert, Val};
use tiaojie_projections::{log, on_db, runtime, Db};

use crate::app::App;
use crate::auth::Actor;
use crate::commands::RequestMeta;

#[derive(Debug, Serialize)]
pub struct RebuildBench {
    pub backend: String,
    pub events: i64,
    pub fill_seconds: f64,
    pub fill_events_per_second: f64,
    pub sequencer_seconds: f64,
    pub sequencer_events_per_second: f64,
    pub rebuilds: Vec<runtime::RebuildReport>,
    pub all_read_models_events_per_second: f64,
}

fn work_items() -> [&'static str; 6] {
    [
        "work.roof",
        "work.facade",
        "work.drainage",
        "work.gas",
        "work.heating",
        "work.power",
    ]
}

/// Generates one case's life as events.
fn case_life(
    rng: &mut StdRng,
    community: &CommunityId,
    group: GroupId,
    member: MemberId,
    start: Timestamp,
) -> Vec<CaseEvent> {
    let obstruction = rng.gen_bool(0.35);
    let party = PartyId::new();
    let mut t = start;
    let mut step = |rng: &mut StdRng| {
        t = t.plus(time::Duration::minutes(rng.gen_range(30..3000)));
        t
    };
    let mut v = vec![CaseEvent::CaseOpened {
        kind: if obstruction {
            CaseKind::ConstructionObstruction
        } else {
            CaseKind::ResidentObjection
        },
        community: community.clone(),
        group,
        category: CategoryCode::parse(if obstruction {
            "work.roof"
        } else {
            "cause.cost-sharing"
        })
        .expect("code"),
        summary: "居民对改造费用分摊比例有异议，要求公开测算依据并重新核定。".into(),
        occurred_at: start,
        channel: IntakeChannel::Visit,
        parties: vec![
            PartyRef {
                party_id: party,
                role: if obstruction {
                    PartyRole::Obstructor
                } else {
                    PartyRole::Complainant
                },
            },
            PartyRef {
                party_id: PartyId::new(),
                role: PartyRole::Contractor,
            },
        ],
    }];
    if obstruction {
        let id = IncidentId::new();
        v.push(CaseEvent::ObstructionIncidentRecorded {
            incident: Incident {
                incident_id: id,
                occurred_at: start,
                location: "3号楼东侧".into(),
                work_item: CategoryCode::parse(work_items()[rng.gen_range(0..6)]).expect("code"),
                obstructing_parties: vec![party],
                work_stopped_minutes: rng.gen_range(0..480),
                police_called: rng.gen_bool(0.3),
                description: "居民阻止施工车辆进场。".into(),
            },
        });
        v.push(CaseEvent::PoliceInterventionRecorded {
            incident_id: Some(id),
            police_unit: "派出所".into(),
            intervened_at: step(rng),
            outcome: "现场劝离".into(),
        });
        v.push(CaseEvent::WorkResumed {
            incident_id: id,
            resumed_at: step(rng),
        });
    }
    v.push(CaseEvent::CaseAccepted {
        accepted_at: step(rng),
    });
    v.push(CaseEvent::CaseAssigned {
        assignee: member,
        assigned_at: step(rng),
    });
    let session = SessionId::new();
    let at = step(rng);
    v.push(CaseEvent::SessionScheduled {
        session_id: session,
        scheduled_for: at,
        location: "社区会议室".into(),
    });
    v.push(CaseEvent::SessionHeld {
        session_id: session,
        held_at: at,
        attendees: vec![
            Attendee::GroupMember { member_id: member },
            Attendee::Party { party_id: party },
        ],
        minutes_summary: "各方陈述意见，调解员释明政策。".into(),
    });
    if rng.gen_bool(0.8) {
        let agreed = step(rng);
        v.push(CaseEvent::AgreementReached {
            session_id: session,
            terms: "施工单位调整方案，居民配合施工。".into(),
            agreed_at: agreed,
            follow_up_due: agreed.plus_days(15),
            facts: "改造施工影响居民出行。".into(),
            responsibilities: String::new(),
            obligations: vec![],
            performance_manner: "施工单位书面承诺。".into(),
            performance_place: String::new(),
            performance_due: Some(agreed.plus_days(10)),
            copies: None,
        });
        v.push(CaseEvent::FollowUpVisitRecorded {
            visited_at: step(rng),
            satisfaction: Satisfaction::Satisfied,
            notes: None,
        });
        v.push(CaseEvent::CaseClosed {
            outcome: Outcome::ResolvedByAgreement,
            closed_at: step(rng),
            summary: None,
        });
    } else {
        v.push(CaseEvent::MediationFailed {
            reason: "分歧较大".into(),
            next_route: Route::JudicialOffice,
            failed_at: step(rng),
        });
        v.push(CaseEvent::CaseEscalated {
            route: Route::JudicialOffice,
            reason: "移交司法所".into(),
            escalated_at: step(rng),
        });
    }
    v
}

pub async fn rebuild(app: &App, events: u64, no_fill: bool) -> anyhow::Result<()> {
    let db = &app.db;
    let mut fill_seconds = 0.0;
    if !no_fill {
        let existing: i64 =
            on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await?);
        if existing > 0 {
            bail!("the store already holds {existing} events; point --database-url at an empty store for this benchmark, or pass --no-fill");
        }
        let started = Instant::now();
        fill(app, events).await?;
        fill_seconds = started.elapsed().as_secs_f64();
    }
    let total: i64 =
        on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await?);
    println!(
        "store holds {total} events ({} backend); filled in {fill_seconds:.1} s",
        db.backend().as_str()
    );
    let started = Instant::now();
    let head = log::sequence_all(db, 5000).await?;
    let sequencer_seconds = started.elapsed().as_secs_f64();
    println!("sequencer: log head {head} in {sequencer_seconds:.1} s");
    let mut rebuilds = Vec::new();
    for p in &app.read.projectors {
        let r = runtime::rebuild(db, p.as_ref(), 5000)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "rebuild {:<40} {:>9} events {:>8.2} s {:>10.0} events/s",
            r.name, r.events, r.seconds, r.events_per_second
        );
        rebuilds.push(r);
    }
    let all: Vec<&dyn tiaojie_projections::runtime::Projector> =
        app.read.projectors.iter().map(|p| p.as_ref()).collect();
    let r = runtime::rebuild_many(db, &all, 5000)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "rebuild {:<40} {:>9} events {:>8.2} s {:>10.0} events/s (all read models in one pass)",
        r.name, r.events, r.seconds, r.events_per_second
    );
    let all_seconds = r.seconds;
    rebuilds.push(r);
    let report = RebuildBench {
        backend: db.backend().as_str().into(),
        events: total,
        fill_seconds,
        fill_events_per_second: if fill_seconds > 0.0 {
            total as f64 / fill_seconds
        } else {
            0.0
        },
        sequencer_seconds,
        sequencer_events_per_second: total as f64 / sequencer_seconds.max(1e-9),
        all_read_models_events_per_second: total as f64 / all_seconds.max(1e-9),
        rebuilds,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn fill(app: &App, target: u64) -> anyhow::Result<()> {
    let groups = form_groups(app).await?;
    fill_history(app, &groups, target).await
}

/// One group per district through the command path; community → (group, its leader).
pub async fn form_groups(app: &App) -> anyhow::Result<HashMap<String, (GroupId, MemberId)>> {
    let admin = Actor {
        id: "bench".into(),
        name: "bench".into(),
        role: Role::Admin,
        organisation: "bench".into(),
        group: None,
        account: None,
        member: None,
    };
    let mut groups: HashMap<String, (GroupId, MemberId)> = HashMap::new();
    for d in &app.reference.districts {
        let communities: Vec<CommunityId> = app
            .reference
            .communities_of(&d.id)
            .map(|c| c.id.clone())
            .collect();
        let leader = tiaojie_events::group::Member {
            member_id: MemberId::new(),
            name: "组长".into(),
            org_role: tiaojie_events::group::OrgRole::StreetOffice,
            organisation: "街道办事处".into(),
        };
        let id = GroupId::new();
        crate::commands::group_command(
            app,
            &admin,
            &RequestMeta::new_request(),
            &id,
            tiaojie_events::group::GroupCommand::FormGroup(tiaojie_events::group::FormGroup {
                name: format!("{}矛盾调解小组", d.name_zh),
                street_office: "街道办事处".into(),
                communities: communities.clone(),
                leader: leader.clone(),
                members: vec![],
                formed_at: None,
            }),
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.title))?;
        for c in communities {
            groups.insert(c.to_string(), (id, leader.member_id));
        }
    }
    Ok(groups)
}

/// Appends generated case histories (about `target` events) straight into the store.
pub async fn fill_history(
    app: &App,
    groups: &HashMap<String, (GroupId, MemberId)>,
    target: u64,
) -> anyhow::Result<()> {
    let communities: Vec<CommunityId> = app
        .reference
        .communities
        .iter()
        .map(|c| c.id.clone())
        .collect();
    let mut rng = StdRng::seed_from_u64(2022 + target);
    let start = app.now().minus(time::Duration::days(400));
    let mut written: u64 = 0;
    let mut batch: Vec<Vec<Val>> = Vec::with_capacity(6000);
    let mut last_report = Instant::now();
    let json_cast = matches!(app.db, Db::Postgres(_));
    while written < target {
        let community = &communities[rng.gen_range(0..communities.len())];
        let (group, member) = groups[community.as_str()];
        let at = start.plus(time::Duration::minutes(rng.gen_range(0..400 * 1440)));
        let case_id = uuid::Uuid::now_v7().to_string();
        for (i, e) in case_life(&mut rng, community, group, member, at)
            .into_iter()
            .enumerate()
        {
            let meta = EventMetadata {
                actor_id: "bench-member".into(),
                actor_name: "调解员".into(),
                role: Role::Member,
                organisation: "矛盾调解小组".into(),
                request_id: uuid::Uuid::now_v7().to_string(),
                trace_id: None,
                recorded_at: app.now(),
                app_version: app.version.into(),
                idempotency_key: None,
                account_id: None,
                member_id: None,
            }
            .into_map();
            batch.push(vec![
                Val::from("Case"),
                Val::from(case_id.clone()),
                Val::from(i as i64 + 1),
                Val::from(e.type_name()),
                Val::from(tiaojie_events::EVENT_VERSION),
                Val::from(serde_json::to_string(&e)?),
                Val::from(serde_json::to_string(&meta)?),
            ]);
            written += 1;
        }
        if batch.len() >= 5000 {
            insert(&app.db, std::mem::take(&mut batch), json_cast).await?;
            if last_report.elapsed().as_secs() >= 5 {
                println!("  … {written} events written");
                last_report = Instant::now();
            }
        }
    }
    insert(&app.db, batch, json_cast).await?;
    Ok(())
}

async fn insert(db: &Db, rows: Vec<Vec<Val>>, _pg: bool) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    match db {
        Db::Sqlite(_) => {
            upsert(
                &mut tx,
                "events",
                &[
                    "aggregate_type",
                    "aggregate_id",
                    "sequence",
                    "event_type",
                    "event_version",
                    "payload",
                    "metadata",
                ],
                &[],
                rows,
            )
            .await?;
        }
        Db::Postgres(_) => {
            // payload and metadata are json columns: insert through UNNEST with casts.
            let mut cols: Vec<Vec<String>> = vec![Vec::new(); 7];
            let mut seqs: Vec<i64> = Vec::new();
            for r in rows {
                for (i, v) in r.into_iter().enumerate() {
                    match v {
                        Val::T(Some(s)) => cols[i].push(s),
                        Val::I(Some(n)) => seqs.push(n),
                        _ => {}
                    }
                }
            }
            let tiaojie_projections::db::Tx::Postgres(t) = &mut tx else {
                unreachable!()
            };
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 SELECT a, b, c, d, e, f::json, g::json FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) AS x(a, b, c, d, e, f, g)",
            )
            .bind(&cols[0])
            .bind(&cols[1])
            .bind(&seqs)
            .bind(&cols[3])
            .bind(&cols[4])
            .bind(&cols[5])
            .bind(&cols[6])
            .execute(&mut **t)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
