//! `tiaojie bench load`: starts the real `tiaojie serve` as a child process on the same
//! store and drives it over HTTP from concurrent clients with a realistic mix (about 70 %
//! commands), measuring throughput, latency percentiles, errors, projection lag, the
//! server's peak memory and the events stored; then measures the database's own limit for
//! single-row inserts into an events-shaped table with the same client count and
//! durability, and prints the ratio. Repeats after the store holds more history.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use tiaojie_events::metadata::Role;
use tiaojie_events::GroupId;
use tiaojie_projections::{log, on_db, runtime, Db};

use crate::app::App;
use crate::auth;
use crate::config::LoadArgs;

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn latency(mut v: Vec<u32>) -> Latency {
    v.sort_unstable();
    let q = |p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        f64::from(v[i]) / 1000.0
    };
    Latency {
        count: v.len(),
        p50_ms: q(0.50),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        max_ms: v.last().map(|x| f64::from(*x) / 1000.0).unwrap_or(0.0),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadRun {
    pub backend: String,
    pub clients: usize,
    pub seconds: f64,
    pub history_events_before: i64,
    pub commands: usize,
    pub commands_per_second: f64,
    pub reads: usize,
    pub reads_per_second: f64,
    pub write_latency: Latency,
    pub read_latency: Latency,
    pub errors_by_status: BTreeMap<u16, usize>,
    /// Commands the rules refused (422), by problem code; counted among the commands.
    pub refused_by_code: BTreeMap<String, usize>,
    pub projection_lag: Latency,
    pub lag_timeouts: usize,
    pub server_peak_rss_mb: f64,
    pub events_in_store: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawLimit {
    pub clients: usize,
    pub seconds: f64,
    pub inserts_per_second: f64,
    pub latency: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub machine: String,
    pub runs: Vec<LoadRun>,
    pub raw_limit: Option<RawLimit>,
    /// Commands per second at the smallest history, divided by the raw insert limit.
    pub ratio_to_raw_limit: Option<f64>,
}

struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(database_url: &str) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("cannot find the tiaojie binary")?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .env_remove("TIAOJIE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start tiaojie serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        break rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string();
                    }
                }
                _ => bail!("tiaojie serve ended before listening"),
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, address })
    }

    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A group: its id, communities, leader token, member token and member ids.
type GroupTokens = (GroupId, Vec<String>, String, String, Vec<String>);

struct Tokens {
    groups: Vec<GroupTokens>,
    supervisor: String,
    dashboard: String,
    /// Registered parties per community: cases name parties of the registry.
    parties: HashMap<String, Vec<String>>,
}

#[derive(Clone)]
struct Case {
    id: String,
    status: &'static str,
    session: Option<String>,
}

#[derive(Default)]
struct Samples {
    writes: Vec<u32>,
    reads: Vec<u32>,
    lag: Vec<u32>,
    lag_timeouts: usize,
    errors: BTreeMap<u16, usize>,
    refused: BTreeMap<String, usize>,
}

async fn events_in_store(db: &Db) -> anyhow::Result<i64> {
    Ok(
        on_db!(db, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events").fetch_one(p).await?),
    )
}

pub async fn load(app: &App, args: &LoadArgs) -> anyhow::Result<()> {
    let db = &app.db;
    if events_in_store(db).await? > 0 {
        bail!("the store is not empty; point --database-url at an empty store for this benchmark");
    }
    let mut levels: Vec<u64> = args
        .history
        .split(',')
        .map(|s| s.trim().replace('_', "").parse::<u64>())
        .collect::<Result<_, _>>()
        .context("--history must be numbers separated by commas, e.g. 10000,100000,1000000")?;
    levels.sort_unstable();
    let groups = crate::bench::form_groups(app).await?;
    // Tokens: a leader and a member per group, a supervisor, a dashboard.
    let mut by_group: BTreeMap<String, (GroupId, Vec<String>)> = BTreeMap::new();
    for (community, (gid, _)) in &groups {
        by_group
            .entry(gid.to_string())
            .or_insert_with(|| (*gid, vec![]))
            .1
            .push(community.clone());
    }
    let mut tokens = Tokens {
        groups: vec![],
        supervisor: String::new(),
        dashboard: String::new(),
        parties: HashMap::new(),
    };
    let registrar = crate::auth::Actor::system("bench");
    for community in groups.keys() {
        let community_id = tiaojie_events::CommunityId::parse(community)?;
        let mut ids = Vec::new();
        for i in 0..16 {
            let data = crate::parties::PartyData {
                name: format!("压测居民{i}"),
                building: Some(format!("{}号楼", i % 6 + 1)),
                ..Default::default()
            };
            let id = crate::parties::register(
                app,
                &registrar,
                &crate::commands::RequestMeta::new_request(),
                crate::parties::PartyKind::Resident,
                &community_id,
                &data,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.title))?;
            ids.push(id.to_string());
        }
        tokens.parties.insert(community.clone(), ids);
    }
    for (_, (gid, communities)) in by_group {
        let (_, leader) = auth::create_token(
            db,
            "bench leader",
            Role::Leader,
            Some(gid),
            "bench",
            app.now(),
        )
        .await?;
        let (_, member) = auth::create_token(
            db,
            "bench member",
            Role::Member,
            Some(gid),
            "bench",
            app.now(),
        )
        .await?;
        let state = app.directory.group_state(&gid).await?.context("group")?;
        let members = state.members.keys().map(|m| m.to_string()).collect();
        tokens
            .groups
            .push((gid, communities, leader, member, members));
    }
    tokens.supervisor = auth::create_token(
        db,
        "bench supervisor",
        Role::Supervisor,
        None,
        "督查室",
        app.now(),
    )
    .await?
    .1;
    tokens.dashboard = auth::create_token(
        db,
        "bench dashboard",
        Role::Dashboard,
        None,
        "大屏",
        app.now(),
    )
    .await?
    .1;
    let tokens = Arc::new(tokens);

    let mut runs = Vec::new();
    for level in &levels {
        let have = events_in_store(db).await? as u64;
        if *level > have {
            println!("filling the store to {level} events …");
            crate::bench::fill_history(app, &groups, level - have).await?;
        }
        log::sequence_all(db, 5000).await?;
        let all: Vec<&dyn runtime::Projector> =
            app.read.projectors.iter().map(|p| p.as_ref()).collect();
        runtime::rebuild_many(db, &all, 5000)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        settle(db).await;
        let before = events_in_store(db).await?;
        let server = Server::start(&app.settings.database_url)?;
        println!(
            "load against {} ({} events stored, {} clients, {} s) …",
            server.address, before, args.clients, args.seconds
        );
        let run = drive(&server.address, tokens.clone(), args).await?;
        let rss = server.peak_rss_mb();
        server.stop();
        let after = events_in_store(db).await?;
        let r = LoadRun {
            backend: db.backend().as_str().into(),
            clients: args.clients,
            seconds: run.0,
            history_events_before: before,
            commands: run.1.writes.len(),
            commands_per_second: run.1.writes.len() as f64 / run.0,
            reads: run.1.reads.len(),
            reads_per_second: run.1.reads.len() as f64 / run.0,
            write_latency: latency(run.1.writes.clone()),
            read_latency: latency(run.1.reads.clone()),
            errors_by_status: run.1.errors.clone(),
            refused_by_code: run.1.refused.clone(),
            projection_lag: latency(run.1.lag.clone()),
            lag_timeouts: run.1.lag_timeouts,
            server_peak_rss_mb: rss,
            events_in_store: after,
        };
        print_run(&r);
        runs.push(r);
    }
    let raw = if args.no_raw {
        None
    } else {
        Some(raw_limit(app, args.clients, args.seconds.min(15)).await?)
    };
    if let Some(r) = &raw {
        println!(
            "raw limit: {:.0} single-row inserts/s from {} clients (p50 {:.2} ms, p99 {:.2} ms)",
            r.inserts_per_second, r.clients, r.latency.p50_ms, r.latency.p99_ms
        );
    }
    let ratio = raw.as_ref().and_then(|r| {
        runs.first()
            .map(|x| x.commands_per_second / r.inserts_per_second)
    });
    if let Some(x) = ratio {
        println!("tiaojie ÷ raw limit: {:.0} %", x * 100.0);
    }
    let report = LoadReport {
        machine: format!(
            "{} cores",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0)
        ),
        runs,
        raw_limit: raw,
        ratio_to_raw_limit: ratio,
    };
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Measures the steady state, not the aftermath of the bulk fill: on PostgreSQL statistics
/// refreshed (autovacuum would, soon), dead rows vacuumed and dirty pages written out; on
/// SQLite the WAL folded back. SQLite is not analysed: the service never analyses it, and
/// with statistics the bundled SQLite (built with STAT4) compiles a statement that compares
/// an indexed column with a parameter again at every execution (5 % of the server's CPU
/// in a profile of this load). In interleaved runs at 10k events the difference stayed
/// within the spread: 1,025–1,113 cmd/s analysed, 1,068–1,178 not.
async fn settle(db: &Db) {
    let statements: &[&str] = match db {
        Db::Postgres(_) => &["VACUUM ANALYZE", "CHECKPOINT"],
        Db::Sqlite(_) => &["PRAGMA wal_checkpoint(TRUNCATE)"],
    };
    for sql in statements {
        let r: Result<(), sqlx::Error> =
            on_db!(db, p => sqlx::query(sql).execute(p).await.map(|_| ()));
        if let Err(e) = r {
            println!("  ({sql} skipped: {e})");
        }
    }
}

fn print_run(r: &LoadRun) {
    println!(
        "{:>9} events | {:>7.0} cmd/s | write p50 {:>6.2} p95 {:>6.2} p99 {:>6.2} max {:>7.2} ms | read p50 {:>6.2} p99 {:>6.2} ms | lag p50 {:>6.1} p99 {:>6.1} ms | rss {:>6.1} MB | errors {:?} | refused {:?}",
        r.history_events_before,
        r.commands_per_second,
        r.write_latency.p50_ms,
        r.write_latency.p95_ms,
        r.write_latency.p99_ms,
        r.write_latency.max_ms,
        r.read_latency.p50_ms,
        r.read_latency.p99_ms,
        r.projection_lag.p50_ms,
        r.projection_lag.p99_ms,
        r.server_peak_rss_mb,
        r.errors_by_status,
        r.refused_by_code
    );
}

async fn drive(
    address: &str,
    tokens: Arc<Tokens>,
    args: &LoadArgs,
) -> anyhow::Result<(f64, Samples)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = format!("http://{address}");
    let samples = Arc::new(Mutex::new(Samples::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writes_done = Arc::new(AtomicU64::new(0));
    // Warm-up: a few seconds not measured.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let client = client.clone();
        let base = base.clone();
        let tokens = tokens.clone();
        let samples = samples.clone();
        let stop = stop.clone();
        let writes_done = writes_done.clone();
        let write_percent = args.write_percent;
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(i as u64 + 7);
            let (_, communities, leader, member, members) = &tokens.groups[i % tokens.groups.len()];
            let mut cases: Vec<Case> = Vec::new();
            let mut local = Samples::default();
            while !stop.load(Ordering::Relaxed) {
                let write = rng.gen_range(0..100) < write_percent;
                if write {
                    let r = one_write(
                        &client,
                        &base,
                        &mut rng,
                        &tokens.parties,
                        communities,
                        leader,
                        member,
                        members,
                        &mut cases,
                        &mut local.refused,
                    )
                    .await;
                    match r {
                        Ok((micros, Some(token))) => {
                            local.writes.push(micros);
                            let n = writes_done.fetch_add(1, Ordering::Relaxed);
                            if n % 10 == 0 {
                                // Projection lag: from the answer until every read model has it.
                                let client = client.clone();
                                // The case itself: a primary-key read, so the probe measures the
                                // wait, not the query.
                                let case = token.split(':').nth(1).unwrap_or_default().to_string();
                                let url =
                                    format!("{base}/api/v1/cases/{case}?consistent_with={token}");
                                let dashboard = tokens.supervisor.clone();
                                let samples = samples.clone();
                                tokio::spawn(async move {
                                    let t = Instant::now();
                                    let ok = client
                                        .get(url)
                                        .bearer_auth(dashboard)
                                        .send()
                                        .await
                                        .map(|r| r.status().is_success())
                                        .unwrap_or(false);
                                    let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
                                    if ok {
                                        s.lag.push(t.elapsed().as_micros() as u32);
                                    } else {
                                        s.lag_timeouts += 1;
                                    }
                                });
                            }
                        }
                        Ok((micros, None)) => local.writes.push(micros),
                        Err(status) => *local.errors.entry(status).or_default() += 1,
                    }
                } else {
                    let pick = rng.gen_range(0..100);
                    let (url, token) = if pick < 35 {
                        (format!("{base}/api/v1/cases?limit=20"), member.clone())
                    } else if pick < 60 && !cases.is_empty() {
                        (
                            format!(
                                "{base}/api/v1/cases/{}",
                                cases[rng.gen_range(0..cases.len())].id
                            ),
                            member.clone(),
                        )
                    } else if pick < 80 {
                        (
                            format!("{base}/api/v1/heat/communities"),
                            tokens.dashboard.clone(),
                        )
                    } else {
                        (
                            format!("{base}/api/v1/audit?limit=50"),
                            tokens.supervisor.clone(),
                        )
                    };
                    let t = Instant::now();
                    match client.get(url).bearer_auth(token).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            local.reads.push(t.elapsed().as_micros() as u32);
                        }
                        Ok(r) => *local.errors.entry(r.status().as_u16()).or_default() += 1,
                        Err(_) => *local.errors.entry(0).or_default() += 1,
                    }
                }
            }
            let mut s = samples.lock().unwrap_or_else(|e| e.into_inner());
            s.writes.extend(local.writes);
            s.reads.extend(local.reads);
            for (k, v) in local.errors {
                *s.errors.entry(k).or_default() += v;
            }
            for (k, v) in local.refused {
                *s.refused.entry(k).or_default() += v;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the last lag probes finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((elapsed, s))
}

/// A session's planned time: an hour from now (the domain refuses a session planned
/// before the case it is for).
fn in_an_hour() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One command chosen by the mix; answers its latency and consistency token. A command
/// the rules refuse (a case closed meanwhile, work still stopped at closure) is counted
/// by its code, and its case is left.
#[allow(clippy::too_many_arguments)]
async fn one_write(
    client: &reqwest::Client,
    base: &str,
    rng: &mut StdRng,
    parties: &HashMap<String, Vec<String>>,
    communities: &[String],
    leader: &str,
    member: &str,
    members: &[String],
    cases: &mut Vec<Case>,
    refused: &mut BTreeMap<String, usize>,
) -> Result<(u32, Option<String>), u16> {
    let pick = rng.gen_range(0..100);
    let in_state = |cases: &Vec<Case>, s: &[&str]| -> Option<usize> {
        let idx: Vec<usize> = cases
            .iter()
            .enumerate()
            .filter(|(_, c)| s.contains(&c.status))
            .map(|(i, _)| i)
            .collect();
        (!idx.is_empty()).then(|| idx[idx.len() - 1 - (pick as usize % idx.len().min(8))])
    };
    let community = &communities[rng.gen_range(0..communities.len())];
    let pool = &parties[community];
    let party = pool[rng.gen_range(0..pool.len())].clone();
    let open_obstruction = json!({
        "kind": "construction_obstruction", "community": community, "category": "work.roof",
        "summary": "居民阻止吊车进场，屋面施工停工。", "channel": "on_site",
        "parties": [{"party_id": party, "role": "obstructor"}],
        "incident": {"location": "3号楼", "work_item": "work.roof", "obstructing_parties": [party], "work_stopped_minutes": rng.gen_range(0..300), "police_called": rng.gen_bool(0.3), "description": "阻止施工"}
    });
    let open_objection = json!({
        "kind": "resident_objection", "community": community, "category": "cause.cost-sharing",
        "summary": "居民对改造费用分摊比例有异议。", "channel": "visit",
        "parties": [{"party_id": party, "role": "complainant"}]
    });
    // (index of the case, path, body, token, next status, remembers)
    let (idx, path, body, token, next): (Option<usize>, String, Value, &str, &'static str) =
        if cases.len() < 3 || pick < 20 {
            (
                None,
                "/api/v1/cases".into(),
                open_objection,
                member,
                "reported",
            )
        } else if pick < 32 {
            (
                None,
                "/api/v1/cases".into(),
                open_obstruction,
                member,
                "reported",
            )
        } else if let (true, Some(i)) = (pick < 46, in_state(cases, &["reported"])) {
            (
                Some(i),
                format!("/api/v1/cases/{}/acceptance", cases[i].id),
                json!({}),
                member,
                "accepted",
            )
        } else if let (true, Some(i)) = (pick < 60, in_state(cases, &["accepted"])) {
            (
                Some(i),
                format!("/api/v1/cases/{}/sessions", cases[i].id),
                json!({"scheduled_for": in_an_hour(), "location": "会议室"}),
                member,
                "scheduled",
            )
        } else if let (true, Some(i)) = (pick < 68, in_state(cases, &["scheduled"])) {
            let sid = cases[i].session.clone().unwrap_or_default();
            (
                Some(i),
                format!("/api/v1/cases/{}/sessions/{sid}/record", cases[i].id),
                json!({"attendees": [{"kind": "group_member", "member_id": members[0]}], "minutes_summary": "各方陈述意见"}),
                member,
                "held",
            )
        } else if let (true, Some(i)) = (pick < 76, in_state(cases, &["held"])) {
            let sid = cases[i].session.clone().unwrap_or_default();
            (
                Some(i),
                format!("/api/v1/cases/{}/agreement", cases[i].id),
                json!({"session_id": sid, "terms": "分期缴纳"}),
                member,
                "agreed",
            )
        } else if let (true, Some(i)) = (pick < 84, in_state(cases, &["agreed"])) {
            (
                Some(i),
                format!("/api/v1/cases/{}/closure", cases[i].id),
                json!({"outcome": "resolved_by_agreement"}),
                leader,
                "closed",
            )
        } else if let (true, Some(i)) = (
            pick < 92,
            in_state(cases, &["reported", "accepted", "scheduled", "held"]),
        ) {
            (
                Some(i),
                format!("/api/v1/cases/{}/incidents", cases[i].id),
                json!({"location": "工地", "work_item": "work.facade", "work_stopped_minutes": 60, "description": "再次阻工"}),
                member,
                "",
            )
        } else {
            let i = rng.gen_range(0..cases.len());
            (
                Some(i),
                format!("/api/v1/cases/{}/notes", cases[i].id),
                json!({"note": "电话联系当事人"}),
                member,
                "",
            )
        };
    let t = Instant::now();
    let r = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|_| 0u16)?;
    let status = r.status();
    let answer: Value = r.json().await.unwrap_or_default();
    let micros = t.elapsed().as_micros() as u32;
    if !status.is_success() {
        // A closed case refuses notes and incidents: forget it and move on.
        if let Some(i) = idx {
            if status.as_u16() == 422 {
                cases.remove(i);
                let code = answer["code"].as_str().unwrap_or("unknown").to_string();
                *refused.entry(code).or_default() += 1;
                return Ok((micros, None));
            }
        }
        return Err(status.as_u16());
    }
    match idx {
        None => cases.push(Case {
            id: answer["id"].as_str().unwrap_or_default().to_string(),
            status: "reported",
            session: None,
        }),
        Some(i) => {
            if next == "scheduled" {
                cases[i].session = answer["created_id"].as_str().map(str::to_string);
            }
            if !next.is_empty() {
                cases[i].status = next;
            }
            if next == "closed" {
                cases.remove(i);
            }
        }
    }
    if cases.len() > 200 {
        cases.remove(0);
    }
    Ok((
        micros,
        answer["consistency_token"].as_str().map(str::to_string),
    ))
}

/// The database's own limit: single-row, autocommitted inserts into an events-shaped table
/// from the same number of clients, with the same durability settings.
async fn raw_limit(app: &App, clients: usize, seconds: u64) -> anyhow::Result<RawLimit> {
    let db = &app.db;
    let create = match db {
        Db::Sqlite(_) => "CREATE TABLE IF NOT EXISTS bench_raw_events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, sequence integer NOT NULL, event_type text NOT NULL, event_version text NOT NULL, payload text NOT NULL, metadata text NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence)) STRICT",
        Db::Postgres(_) => "CREATE TABLE IF NOT EXISTS bench_raw_events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, sequence bigint NOT NULL, event_type text NOT NULL, event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    };
    on_db!(db, p => { sqlx::query(create).execute(p).await?; });
    // A pool as large as the client count (SQLite's writes queue on its lock either way).
    let options = tiaojie_projections::DbOptions {
        max_connections: clients as u32,
        ..Default::default()
    };
    let pool = Db::connect(&app.settings.database_url, &options).await?;
    let payload = r#"{"type":"NoteAdded","note":"居民对改造费用分摊比例有异议，要求公开测算依据并重新核定。"}"#;
    let metadata = r#"{"actor_id":"bench","actor_name":"调解员","role":"member","organisation":"矛盾调解小组","request_id":"01a20000-0000-7000-8000-000000000000","recorded_at":"2022-05-01T02:00:00.000000Z","app_version":"0.1.0"}"#;
    let sql = match db {
        Db::Sqlite(_) => {
            "INSERT INTO bench_raw_events VALUES ($1, $2, $3, 'NoteAdded', '1', $4, $5)"
        }
        Db::Postgres(_) => {
            "INSERT INTO bench_raw_events VALUES ($1, $2, $3, 'NoteAdded', '1', $4::json, $5::json)"
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let id = uuid::Uuid::now_v7().to_string();
            let mut lat = Vec::new();
            let mut seq = 0i64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let t = Instant::now();
                let r: Result<(), sqlx::Error> = on_db!(&pool, p => sqlx::query(sql).bind("Case").bind(&id).bind(seq).bind(payload).bind(metadata).execute(p).await.map(|_| ()));
                if r.is_ok() {
                    lat.push(t.elapsed().as_micros() as u32);
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    pool.close().await;
    on_db!(db, p => { sqlx::query("DROP TABLE bench_raw_events").execute(p).await?; });
    Ok(RawLimit {
        clients,
        seconds: elapsed,
        inserts_per_second: all.len() as f64 / elapsed,
        latency: latency(all),
    })
}
