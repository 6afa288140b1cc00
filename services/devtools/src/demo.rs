//! `tiaojie demo`: a realistic scenario loaded through the command service, the same path
//! the HTTP handlers take (permissions, metadata, aggregate rules). Three mediation groups,
//! one per district, and three dozen cases across the communities: objections and
//! obstructions with work stoppage, sessions, agreements, failures, escalations, a repeat
//! obstructor, supervision orders, follow-ups and closures. Business times lie in the last
//! three months so that deadlines and heat look as they would in a running programme.

use tiaojie_events::case::*;
use tiaojie_events::group::{FormGroup, GroupCommand, Member, OrgRole};
use tiaojie_events::metadata::Role;
use tiaojie_events::{
    CaseId, CategoryCode, CommunityId, GroupId, IncidentId, MemberId, OrderId, PartyId, SessionId,
};

use crate::app::App;
use crate::app_error::AppError;
use crate::auth::Actor;
use crate::commands::{self, RequestMeta};
use crate::parties::{PartyData, PartyKind};

/// What the demo created.
#[derive(Debug, Default, serde::Serialize)]
pub struct DemoReport {
    pub groups: usize,
    pub cases: usize,
    pub commands: usize,
    pub parties: usize,
}

/// Fictional residents and representatives, with names and phone numbers: the demo's
/// personal data, which must never appear in clear in the store or the logs.
pub const RESIDENTS: [(&str, &str); 24] = [
    ("张建华", "13895412345"),
    ("李秀英", "13995401122"),
    ("王志强", "15809547733"),
    ("刘桂兰", "18095418866"),
    ("陈国庆", "13709542291"),
    ("杨淑珍", "13519546604"),
    ("赵德明", "15909543378"),
    ("黄丽萍", "18709541159"),
    ("周永刚", "13895437720"),
    ("吴玉梅", "13995448813"),
    ("徐海军", "15809541947"),
    ("孙凤英", "18095412273"),
    ("马福祥", "13709549901"),
    ("朱红梅", "13519548462"),
    ("胡建国", "15909542215"),
    ("郭晓燕", "18709546637"),
    ("何振华", "13895440058"),
    ("高桂芳", "13995441196"),
    ("罗成林", "15809543324"),
    ("郑美玲", "18095415508"),
    ("梁志勇", "13709543367"),
    ("谢玉兰", "13519541148"),
    ("韩宝山", "15909547762"),
    ("冯秀兰", "18709549905"),
];

pub const REPRESENTATIVES: [(&str, &str, &str); 4] = [
    ("刘强", "13895470012", "宁夏恒基建设工程有限公司"),
    ("杜晓东", "13995470023", "宁夏六盘建设集团有限公司"),
    ("宋建军", "15809570034", "宁夏固原城建工程有限公司"),
    ("邓丽", "18095470045", "固原市安居物业服务有限公司"),
];

#[derive(Default)]
struct People {
    next_resident: usize,
    next_representative: usize,
    registered: usize,
}

async fn register(
    app: &App,
    actor: &Actor,
    community: &CommunityId,
    kind: PartyKind,
    people: &mut People,
) -> Result<PartyId, anyhow::Error> {
    let meta = RequestMeta::new_request();
    let data = match kind {
        PartyKind::Resident => {
            let (name, phone) = RESIDENTS[people.next_resident % RESIDENTS.len()];
            people.next_resident += 1;
            PartyData {
                name: name.into(),
                phone: Some(phone.into()),
                building: Some(format!("{}号楼", 1 + people.next_resident % 6)),
                unit: Some(format!("{}单元", 1 + people.next_resident % 3)),
                household: Some(format!(
                    "{}0{}",
                    1 + people.next_resident % 6,
                    1 + people.next_resident % 2
                )),
                ethnicity: Some(
                    if people.next_resident % 3 == 0 {
                        "回族"
                    } else {
                        "汉族"
                    }
                    .into(),
                ),
                age: Some(38 + (people.next_resident * 7 % 40) as u8),
                ..PartyData::default()
            }
        }
        _ => {
            let (name, phone, org) =
                REPRESENTATIVES[people.next_representative % REPRESENTATIVES.len()];
            people.next_representative += 1;
            PartyData {
                name: name.into(),
                phone: Some(phone.into()),
                organisation: Some(org.into()),
                workplace: Some(org.into()),
                ..PartyData::default()
            }
        }
    };
    let id = crate::parties::register(app, actor, &meta, kind, community, &data)
        .await
        .map_err(api)?;
    people.registered += 1;
    Ok(id)
}

/// The demo's data: groups and stories, in `demo.toml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoData {
    groups: Vec<GroupSpec>,
    stories: Vec<Story>,
}

// Which office covers which district is not stated in the plan; this is demo configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    name: String,
    office: String,
    district: String,
    /// The street office's leader first, then the members.
    people: Vec<Person>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Person {
    name: String,
    org_role: OrgRole,
    organisation: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Step {
    Accept,
    Assign,
    Session,
    Agree,
    Fail {
        route: Route,
    },
    Escalate {
        route: Route,
    },
    Incident {
        minutes: u32,
        police_called: bool,
        work_item: String,
    },
    Police,
    Resume,
    FollowUp {
        satisfaction: Satisfaction,
    },
    Extend,
    Order,
    AnswerOrder,
    Note {
        text: String,
    },
    Close {
        outcome: Outcome,
    },
    Withdraw,
    /// How the agreement is carried out, as the complainant reports it.
    Perform {
        performance: Performance,
    },
    /// The parties urged to carry it out, with ten more days.
    Urge,
    /// The receiving level's reply to the escalation or the next route.
    Reply,
    /// The signed agreement, scanned and attached.
    Attach,
}

/// Written into the demo's scanned agreement: the store must never hold it in clear.
pub const DEMO_SCAN_MARKER: &str = "TIAOJIE-DEMO-SCAN-7f3a";

/// A one-page PDF standing for a scan of the signed agreement.
fn scanned_agreement() -> Vec<u8> {
    format!(
        "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n% {DEMO_SCAN_MARKER} 人民调解协议书（各方签字）\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    .into_bytes()
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Story {
    community: String,
    kind: CaseKind,
    category: String,
    channel: IntakeChannel,
    summary: String,
    /// Days before now that it happened.
    days_ago: i64,
    /// Parties: complainants, and whether the repeat obstructor of 靖丰苑 is one of them.
    complainants: usize,
    repeat_obstructor: bool,
    steps: Vec<Step>,
}

fn data() -> &'static DemoData {
    static DATA: std::sync::LazyLock<DemoData> = std::sync::LazyLock::new(|| {
        toml::from_str(include_str!("demo.toml")).expect("demo.toml is valid (tested)")
    });
    &DATA
}

fn c(s: &str) -> CommunityId {
    CommunityId::parse(s).expect("demo community codes are valid")
}

fn cat(s: &str) -> CategoryCode {
    CategoryCode::parse(s).expect("demo category codes are valid")
}

/// Loads the scenario. Refuses when cases exist already, unless `force`.
pub async fn load(app: &App, force: bool) -> Result<DemoReport, anyhow::Error> {
    if !force {
        let existing: i64 = tiaojie_projections::on_db!(&app.db, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE aggregate_type = 'Case'").fetch_one(p).await?
        });
        if existing > 0 {
            anyhow::bail!("the store already holds {existing} case events; run `tiaojie demo --force` to add the demo anyway");
        }
    }
    let mut report = DemoReport::default();
    let admin = Actor::system("演示数据加载");
    let admin = Actor {
        role: Role::Admin,
        id: "demo-admin".into(),
        organisation: "原州区综合执法局".into(),
        ..admin
    };
    let now = app.now();
    let mut groups: Vec<(GroupId, &GroupSpec, Vec<Member>, Vec<CommunityId>)> = Vec::new();
    for (gi, spec) in data().groups.iter().enumerate() {
        // Reuse a group that covers the district already (demo --force on a loaded store).
        let communities: Vec<CommunityId> = app
            .reference
            .communities_of(&tiaojie_events::DistrictId::parse(&spec.district)?)
            .map(|x| x.id.clone())
            .collect();
        if let Some((id, g)) = app
            .directory
            .groups()
            .await?
            .into_iter()
            .find(|(_, g)| g.communities.iter().any(|x| communities.contains(x)))
        {
            groups.push((
                id,
                spec,
                g.members.values().cloned().collect(),
                g.communities.clone(),
            ));
            continue;
        }
        let members: Vec<Member> = spec
            .people
            .iter()
            .map(|p| Member {
                member_id: MemberId::new(),
                name: p.name.clone(),
                org_role: p.org_role,
                organisation: p.organisation.clone(),
            })
            .collect();
        let id = GroupId::new();
        let meta = RequestMeta::new_request();
        commands::group_command(
            app,
            &admin,
            &meta,
            &id,
            GroupCommand::FormGroup(FormGroup {
                name: spec.name.clone(),
                street_office: spec.office.clone(),
                communities: communities.clone(),
                leader: members[0].clone(),
                members: members[1..].to_vec(),
                formed_at: Some(now.plus_days(-(90 + gi as i64))),
            }),
            None,
        )
        .await
        .map_err(api)?;
        report.groups += 1;
        report.commands += 1;
        groups.push((id, spec, members, communities));
    }
    let supervisor = Actor {
        id: "demo-supervisor".into(),
        name: "督查员".into(),
        role: Role::Supervisor,
        organisation: "原州区委督查室".into(),
        group: None,
        account: None,
        member: None,
    };
    let mut repeat_obstructor: Option<PartyId> = None;
    let mut people = People::default();
    for story in &data().stories {
        let community = c(&story.community);
        let Some((gid, _, members, _)) =
            groups.iter().find(|(_, _, _, cs)| cs.contains(&community))
        else {
            continue;
        };
        let leader = Actor {
            id: format!("demo-{}", members[0].member_id),
            name: members[0].name.clone(),
            role: Role::Leader,
            organisation: members[0].organisation.clone(),
            group: Some(*gid),
            account: None,
            member: Some(members[0].member_id),
        };
        let member = Actor {
            id: format!("demo-{}", members[3].member_id),
            name: members[3].name.clone(),
            role: Role::Member,
            organisation: members[3].organisation.clone(),
            group: Some(*gid),
            account: None,
            member: Some(members[3].member_id),
        };
        let occurred = now
            .plus_days(-story.days_ago)
            .plus(time::Duration::hours(2));
        // The residents and representatives, registered in the party registry first;
        // cases name them by id only.
        let mut parties: Vec<PartyRef> = Vec::new();
        for _ in 0..story.complainants {
            let id = register(app, &member, &community, PartyKind::Resident, &mut people).await?;
            parties.push(PartyRef {
                party_id: id,
                role: PartyRole::Complainant,
            });
        }
        if story.kind == CaseKind::ConstructionObstruction {
            let obstructor = match (story.repeat_obstructor, repeat_obstructor) {
                (true, Some(id)) => id,
                (repeat, _) => {
                    let id = register(app, &member, &community, PartyKind::Resident, &mut people)
                        .await?;
                    if repeat {
                        repeat_obstructor = Some(id);
                    }
                    id
                }
            };
            parties.push(PartyRef {
                party_id: obstructor,
                role: PartyRole::Obstructor,
            });
        }
        let contractor =
            register(app, &member, &community, PartyKind::Contractor, &mut people).await?;
        parties.push(PartyRef {
            party_id: contractor,
            role: PartyRole::Contractor,
        });
        report.parties = people.registered;
        let obstructors: Vec<PartyId> = parties
            .iter()
            .filter(|p| p.role == PartyRole::Obstructor)
            .map(|p| p.party_id)
            .collect();
        let case_id = CaseId::new();
        let mut steps: Vec<Step> = story.steps.clone();
        // An obstruction case is opened with its first incident.
        let first_incident = match steps.first() {
            Some(Step::Incident {
                minutes,
                police_called,
                work_item,
            }) if story.kind == CaseKind::ConstructionObstruction => {
                let r = Some((*minutes, *police_called, work_item.clone()));
                steps.remove(0);
                r
            }
            _ => None,
        };
        let mut incident = first_incident.as_ref().map(|_| IncidentId::new());
        let run = |actor: &Actor, cmd: CaseCommand| {
            let actor = actor.clone();
            async move {
                let meta = RequestMeta::new_request();
                commands::case_command(app, &actor, &meta, &case_id, cmd, None)
                    .await
                    .map_err(api)
            }
        };
        run(
            &member,
            CaseCommand::OpenCase(OpenCase {
                kind: story.kind,
                community: community.clone(),
                category: cat(&story.category),
                summary: story.summary.clone(),
                occurred_at: Some(occurred),
                channel: story.channel,
                parties: parties.clone(),
                incident: first_incident
                    .zip(incident)
                    .map(|((minutes, police, item), id)| IncidentInput {
                        incident_id: id,
                        occurred_at: Some(occurred),
                        location: "施工现场".into(),
                        work_item: cat(&item),
                        obstructing_parties: obstructors.clone(),
                        work_stopped_minutes: minutes,
                        police_called: police,
                        description: story.summary.clone(),
                    }),
            }),
        )
        .await?;
        report.cases += 1;
        report.commands += 1;
        // Each later step happens a little after the previous one, never in the future.
        let span_days = (story.days_ago - 1).max(0) as f64;
        let n = steps.len().max(1) as f64;
        let mut session: Option<SessionId> = None;
        let mut order: Option<OrderId> = None;
        for (i, step) in steps.iter().enumerate() {
            let at = occurred.plus(time::Duration::minutes(
                ((i as f64 + 1.0) / n * span_days * 1440.0) as i64 + 30,
            ));
            let at = if at > now { now } else { at };
            let (actor, cmd) = match step {
                Step::Accept => (
                    &member,
                    CaseCommand::AcceptCase(AcceptCase {
                        accepted_at: Some(at),
                    }),
                ),
                Step::Assign => (
                    &leader,
                    CaseCommand::AssignCase(AssignCase {
                        assignee: members[1].member_id,
                        assigned_at: Some(at),
                    }),
                ),
                Step::Session => {
                    let sid = SessionId::new();
                    run(
                        &member,
                        CaseCommand::ScheduleSession(ScheduleSession {
                            session_id: sid,
                            scheduled_for: at,
                            location: "社区党群服务中心会议室".into(),
                        }),
                    )
                    .await?;
                    report.commands += 1;
                    session = Some(sid);
                    let attendees = vec![
                        Attendee::GroupMember {
                            member_id: members[0].member_id,
                        },
                        Attendee::GroupMember {
                            member_id: members[1].member_id,
                        },
                        Attendee::GroupMember {
                            member_id: members[5].member_id,
                        },
                    ]
                    .into_iter()
                    .chain(parties.iter().map(|p| Attendee::Party {
                        party_id: p.party_id,
                    }))
                    .collect();
                    (
                        &member,
                        CaseCommand::RecordSession(RecordSession {
                            session_id: sid,
                            held_at: Some(at),
                            attendees,
                            minutes_summary: "各方陈述意见，调解员释明政策。".into(),
                        }),
                    )
                }
                Step::Agree => (
                    &member,
                    CaseCommand::ReachAgreement(ReachAgreement {
                        session_id: session.expect("a session precedes an agreement in the demo"),
                        terms: "施工单位调整施工方案并书面承诺保修责任，居民配合施工。".into(),
                        agreed_at: Some(at),
                        follow_up_due: at.plus_days(app.settings.follow_up_days),
                        details: AgreementDetails {
                            facts: "改造施工影响居民出行和采光，居民对施工方案有异议。".into(),
                            responsibilities: "施工单位未充分公示施工方案，应承担主要责任。".into(),
                            obligations: parties
                                .iter()
                                .map(|p| Obligation {
                                    party_id: p.party_id,
                                    duty: match p.role {
                                        PartyRole::Contractor => {
                                            "按调整后的方案施工，竣工后保修两年。"
                                        }
                                        _ => "配合施工，不再阻挡。",
                                    }
                                    .into(),
                                })
                                .collect(),
                            performance_manner: "施工单位书面承诺，社区监督落实。".into(),
                            performance_place: "本小区施工现场".into(),
                            performance_due: Some(at.plus_days(10)),
                            copies: None,
                        },
                    }),
                ),
                Step::Fail { route } => (
                    &member,
                    CaseCommand::FailMediation(FailMediation {
                        reason: "双方分歧较大，调解未能达成一致。".into(),
                        next_route: *route,
                        failed_at: Some(at),
                    }),
                ),
                Step::Escalate { route } => (
                    &leader,
                    CaseCommand::Escalate(Escalate {
                        route: *route,
                        reason: "超出调解小组处理权限，上报处理。".into(),
                        escalated_at: Some(at),
                    }),
                ),
                Step::Incident {
                    minutes,
                    police_called,
                    work_item,
                } => {
                    let id = IncidentId::new();
                    incident = Some(id);
                    (
                        &member,
                        CaseCommand::RecordIncident(RecordIncident {
                            incident: IncidentInput {
                                incident_id: id,
                                occurred_at: Some(at),
                                location: "施工现场".into(),
                                work_item: cat(work_item),
                                obstructing_parties: obstructors.clone(),
                                work_stopped_minutes: *minutes,
                                police_called: *police_called,
                                description: "再次阻拦施工。".into(),
                            },
                        }),
                    )
                }
                Step::Police => (
                    &member,
                    CaseCommand::RecordPoliceIntervention(RecordPoliceIntervention {
                        incident_id: incident,
                        police_unit: members[2].organisation.clone(),
                        intervened_at: Some(at),
                        outcome: "民警到场劝解，现场秩序恢复。".into(),
                    }),
                ),
                Step::Resume => (
                    &member,
                    CaseCommand::ResumeWork(ResumeWork {
                        incident_id: incident.expect("an incident precedes resumption"),
                        resumed_at: Some(at),
                    }),
                ),
                Step::FollowUp { satisfaction: s } => (
                    &member,
                    CaseCommand::RecordFollowUp(RecordFollowUp {
                        visited_at: Some(at),
                        satisfaction: *s,
                        notes: Some("电话回访。".into()),
                    }),
                ),
                Step::Extend => (
                    &member,
                    CaseCommand::ExtendDeadline(ExtendDeadline {
                        new_due: now.plus_days(20),
                        reason: "等待造价评审结果，各方同意延长调解期限。".into(),
                        consenting_parties: parties.iter().map(|p| p.party_id).collect(),
                        extended_at: Some(at),
                    }),
                ),
                Step::Order => {
                    let id = OrderId::new();
                    order = Some(id);
                    (
                        &supervisor,
                        CaseCommand::IssueSupervisionOrder(IssueSupervisionOrder {
                            order_id: id,
                            office: "原州区委督查室".into(),
                            instructions: "请于5个工作日内报告调处进展。".into(),
                            respond_by: now.plus_days(5),
                        }),
                    )
                }
                Step::AnswerOrder => (
                    &leader,
                    CaseCommand::AnswerSupervisionOrder(AnswerSupervisionOrder {
                        order_id: order.expect("an order precedes its answer"),
                        answer: "已组织召开调解会，并已移交相关部门。".into(),
                    }),
                ),
                Step::Note { text } => (
                    &member,
                    CaseCommand::AddNote(AddNote { note: text.clone() }),
                ),
                Step::Close { outcome } => (
                    &leader,
                    CaseCommand::CloseCase(CloseCase {
                        outcome: Some(*outcome),
                        closed_at: Some(at),
                        summary: None,
                    }),
                ),
                Step::Withdraw => (
                    &member,
                    CaseCommand::Withdraw(Withdraw {
                        reason: "当事人双方已自行协商解决。".into(),
                        withdrawn_at: Some(at),
                    }),
                ),
                Step::Perform { performance } => (
                    &member,
                    CaseCommand::RecordPerformance(RecordPerformance {
                        performance: *performance,
                        remaining: (*performance != Performance::Performed)
                            .then(|| "雨落管接口返修尚未完成。".into()),
                        reported_by: "申请人电话反映".into(),
                        reported_at: Some(at),
                    }),
                ),
                Step::Urge => (
                    &member,
                    CaseCommand::UrgePerformance(UrgePerformance {
                        method: "约谈施工单位项目经理，要求限期返修。".into(),
                        performance_due: now.plus_days(10),
                        urged_at: Some(at),
                    }),
                ),
                Step::Attach => {
                    let meta = RequestMeta::new_request();
                    tiaojie_app::attachments::add(
                        app,
                        &member,
                        &meta,
                        &case_id,
                        tiaojie_app::attachments::Upload {
                            bytes: scanned_agreement(),
                            caption: Some("各方签字的人民调解协议书（扫描件）".into()),
                            documents: None,
                        },
                    )
                    .await
                    .map_err(api)?;
                    report.commands += 1;
                    continue;
                }
                Step::Reply => (
                    &member,
                    CaseCommand::RecordEscalationReply(RecordEscalationReply {
                        reply: "已收悉，将依法受理并告知当事人办理流程。".into(),
                        replied_at: Some(at),
                    }),
                ),
            };
            run(actor, cmd).await?;
            report.commands += 1;
        }
    }
    Ok(report)
}

fn api(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{} ({}): {}", e.title, e.code, e.detail_zh)
}

/// The demo's time base, for tests.
pub fn stories() -> usize {
    data().stories.len()
}

/// Sign-in tokens for trying the web interface on the demo: each group's leader and one
/// member, a supervision office and a dashboard screen. Written to a file only the operator
/// can read; answers its path.
pub async fn sign_in_tokens(
    app: &App,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, anyhow::Error> {
    let now = app.now();
    let mut lines = vec![
        "# tiaojie demo: sign-in tokens for the web interface (keep this file private)".to_string(),
        "# role\tgroup\tname\ttoken".to_string(),
    ];
    for (id, g) in app.directory.groups().await? {
        let Some(leader) = g.leader.and_then(|l| g.members.get(&l)) else {
            continue;
        };
        let (_, secret) = crate::auth::create_token(
            &app.db,
            &leader.name,
            Role::Leader,
            Some(id),
            &leader.organisation,
            now,
        )
        .await?;
        lines.push(format!("leader\t{}\t{}\t{secret}", g.name, leader.name));
        if let Some(m) = g.members.values().find(|m| Some(m.member_id) != g.leader) {
            let (_, secret) = crate::auth::create_token(
                &app.db,
                &m.name,
                Role::Member,
                Some(id),
                &m.organisation,
                now,
            )
            .await?;
            lines.push(format!("member\t{}\t{}\t{secret}", g.name, m.name));
        }
    }
    let (_, secret) = crate::auth::create_token(
        &app.db,
        "督查员",
        Role::Supervisor,
        None,
        "原州区委督查室",
        now,
    )
    .await?;
    lines.push(format!("supervisor\t-\t督查员\t{secret}"));
    let (_, secret) = crate::auth::create_token(
        &app.db,
        "指挥中心大屏",
        Role::Dashboard,
        None,
        "原州区社会治理指挥中心",
        now,
    )
    .await?;
    lines.push(format!("dashboard\t-\t指挥中心大屏\t{secret}"));
    std::fs::create_dir_all(dir)?;
    let path = dir.join("demo-tokens.txt");
    crate::files::write_private(&path, &(lines.join("\n") + "\n"))?;
    app.tokens.tie_old_tokens().await?;
    Ok(path)
}

/// Accounts for trying the demo: every member of every group (the leaders among them), a
/// supervisor, an administrator, and a kiosk credential for the command centre's wall
/// screen. Their passwords are written to `demo-accounts.txt`, readable by the operator
/// only (tab-separated: role, group, name, login, password; the kiosk's key in the last
/// column). Demo passwords need no change at the first sign-in. Answers the file's path.
pub async fn demo_accounts(
    app: &App,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, anyhow::Error> {
    use crate::accounts::{self, Kind, NewAccount};
    let system = Actor::system("demo");
    let mut lines = vec![
        "# tiaojie demo: accounts for the web interface (keep this file private)".to_string(),
        "# role\tgroup\tname\tlogin\tpassword".to_string(),
    ];
    let make = |role: Role,
                member: Option<(GroupId, tiaojie_events::MemberId)>,
                name: &str,
                org: &str,
                login: String| {
        let new = NewAccount {
            login,
            display_name: name.to_string(),
            organisation: org.to_string(),
            role,
            kind: Kind::Person,
            member,
            phone: None,
            password: Some(accounts::one_time_password()),
        };
        let system = system.clone();
        async move {
            accounts::create(app, new, &system, "demo")
                .await
                .map_err(api)
        }
    };
    for (gi, (id, g)) in app.directory.groups().await?.into_iter().enumerate() {
        let mut n = 0;
        for m in g.members.values() {
            let leader = g.leader == Some(m.member_id);
            let login = if leader {
                format!("g{}.leader", gi + 1)
            } else {
                n += 1;
                format!("g{}.member{n}", gi + 1)
            };
            let (a, password) = make(
                Role::Member,
                Some((id, m.member_id)),
                &m.name,
                &m.organisation,
                login,
            )
            .await?;
            let role = if leader { "leader" } else { "member" };
            lines.push(format!(
                "{role}\t{}\t{}\t{}\t{password}",
                g.name, m.name, a.login
            ));
        }
    }
    let (a, password) = make(
        Role::Supervisor,
        None,
        "督查员",
        "原州区委督查室",
        "supervisor".into(),
    )
    .await?;
    lines.push(format!("supervisor\t-\t督查员\t{}\t{password}", a.login));
    let (a, password) = make(
        Role::Admin,
        None,
        "系统管理员",
        "原州区综合执法局",
        "admin".into(),
    )
    .await?;
    lines.push(format!("admin\t-\t系统管理员\t{}\t{password}", a.login));
    let (kiosk, _) = accounts::create(
        app,
        NewAccount {
            login: "kiosk-command-centre".into(),
            display_name: "指挥中心大屏".into(),
            organisation: "原州区社会治理指挥中心".into(),
            role: Role::Dashboard,
            kind: Kind::Kiosk,
            member: None,
            phone: None,
            password: None,
        },
        &system,
        "demo",
    )
    .await
    .map_err(api)?;
    let (_, key) =
        crate::auth::create_account_token(&app.db, &kiosk, "kiosk", None, app.now()).await?;
    lines.push(format!("kiosk\t-\t指挥中心大屏\t-\t{key}"));
    std::fs::create_dir_all(dir)?;
    let path = dir.join("demo-accounts.txt");
    crate::files::write_private(&path, &(lines.join("\n") + "\n"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_data_reads() {
        let d = super::data();
        assert_eq!(d.groups.len(), 3);
        assert!(d.groups.iter().all(|g| g.people.len() == 6));
        assert_eq!(d.stories.len(), 35);
    }
}
