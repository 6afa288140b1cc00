//! The case's documents, generated from its recorded events and the party registry, never
//! typed twice: 受理登记表, 调解笔录 (one per session held), 人民调解协议书, 回访记录 (one per
//! visit) and the 卷宗 that gathers them behind a cover and a table of contents. Each is an
//! A4 page in print CSS, carrying the case number and the verification code of the case's
//! last logged event (`/verify/{code}`). The documents are in Chinese: they are the
//! committee's paperwork.

use super::*;
use tiaojie_app::documents::{stamp, Stamp};

/// Label and value (or anchor and title) pairs.
type Pairs = Vec<(String, String)>;

/// One block of a document.
#[derive(Debug, Clone)]
pub enum Block {
    /// Label and value pairs, two pairs to a row.
    Pairs(Vec<(String, String)>),
    /// A table with a header.
    Grid {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// A heading and a paragraph (an empty paragraph prints as not recorded).
    Text { heading: String, body: String },
    /// A sentence of the form (the law's words).
    Clause(String),
    /// Signature lines, one per person or role.
    Signatures(Vec<String>),
    /// The place for the committee's seal, and the date line.
    Seal(String),
    /// Photos, each with its caption: (address, caption).
    Images(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
pub struct Document {
    /// The anchor inside the case file.
    pub anchor: String,
    pub title: String,
    pub subtitle: String,
    pub blocks: Vec<Block>,
}

#[derive(Template)]
#[template(path = "documents.html")]
pub(super) struct DocumentsPage {
    chrome: Chrome,
    case_id: String,
    case_number: String,
    committee: String,
    group: String,
    stamp: Option<Stamp>,
    /// The 卷宗's cover and contents, when the whole file is printed.
    cover: Option<(Pairs, Pairs)>,
    documents: Vec<Document>,
    printed_at: String,
}

impl DocumentsPage {
    fn not_recorded(&self, body: &str) -> bool {
        body.trim().is_empty()
    }
}

/// The documents a case has now, as (path under `documents/`, title): for the case page's
/// links and the file's contents.
pub(super) fn available(l: &Loaded) -> Vec<(String, String)> {
    let mut out = vec![("intake".to_string(), "受理登记表".to_string())];
    let mut n = 0;
    for e in &l.events {
        match &e.payload {
            CaseEvent::SessionHeld { session_id, .. } => {
                n += 1;
                out.push((
                    format!("minutes/{session_id}"),
                    format!("调解笔录（第{n}次）"),
                ));
            }
            CaseEvent::AgreementReached { .. } => {
                out.push(("agreement".into(), "人民调解协议书".into()))
            }
            _ => {}
        }
    }
    let visits = l
        .events
        .iter()
        .filter(|e| matches!(e.payload, CaseEvent::FollowUpVisitRecorded { .. }))
        .count();
    out.extend((1..=visits).map(|i| (format!("follow-up/{i}"), format!("回访记录（第{i}次）"))));
    if l.events
        .iter()
        .any(|e| matches!(e.payload, CaseEvent::AttachmentAdded { .. }))
    {
        out.push(("attachments".into(), "附件清单".into()));
    }
    if l.events.iter().any(|e| is_after_agreement(&e.payload)) {
        out.push(("performance".into(), "协议履行情况记录".into()));
    }
    out.push(("file".into(), "卷宗（全部文书）".into()));
    out
}

pub async fn document(
    State(app): State<App>,
    signed: Signed,
    Path((raw, kind)): Path<(String, String)>,
) -> Response {
    let l = match load(&app, &signed, &raw, None).await {
        Ok(l) => l,
        Err(e) => return signed.error(e),
    };
    let stamp = match stamp(&app, &l.view.row.case_id).await {
        Ok(s) => s,
        Err(e) => return signed.error(e),
    };
    let w = Writer { app: &app, l: &l };
    let kind = kind.trim_end_matches('/');
    let (documents, cover) = match kind {
        "intake" => (vec![w.intake()], None),
        "attachments" => match attachment_list(&app, &signed, &l).await {
            Some(d) => (vec![d], None),
            None => return signed.error(missing("本案没有附件", "no attachments")),
        },
        "performance" => match w.performance() {
            Some(d) => (vec![d], None),
            None => {
                return signed.error(missing(
                    "本案尚无协议履行情况记录",
                    "no performance recorded yet",
                ))
            }
        },
        "agreement" => match w.agreement() {
            Some(d) => (vec![d], None),
            None => return signed.error(missing("本案尚未达成调解协议", "no agreement yet")),
        },
        "file" => {
            let mut docs = vec![w.intake()];
            docs.extend(w.all_minutes());
            docs.extend(w.agreement());
            docs.extend(w.follow_ups());
            docs.extend(w.performance());
            docs.extend(attachment_list(&app, &signed, &l).await);
            let contents = docs
                .iter()
                .map(|d| (d.anchor.clone(), format!("{}{}", d.title, d.subtitle)))
                .collect();
            (docs, Some((w.cover(), contents)))
        }
        other => {
            let found = if let Some(sid) = other.strip_prefix("minutes/") {
                w.all_minutes()
                    .into_iter()
                    .find(|d| d.anchor == format!("minutes-{sid}"))
            } else if let Some(n) = other.strip_prefix("follow-up/") {
                n.parse::<usize>()
                    .ok()
                    .and_then(|n| w.follow_ups().into_iter().nth(n.wrapping_sub(1)))
            } else {
                None
            };
            match found {
                Some(d) => (vec![d], None),
                None => return signed.error(missing("没有这份文书", "no such document")),
            }
        }
    };
    let title = match (&cover, documents.first()) {
        (Some(_), _) => "人民调解卷宗".to_string(),
        (None, Some(d)) => format!("{}{}", d.title, d.subtitle),
        (None, None) => String::new(),
    };
    let number = l
        .view
        .case_number
        .clone()
        .unwrap_or_else(|| short(&l.view.row.case_id));
    let page = DocumentsPage {
        chrome: signed.chrome(format!("{title} {number}"), "desk"),
        case_id: l.view.row.case_id.clone(),
        case_number: number,
        committee: committee(&l),
        group: l.group_name.clone(),
        stamp,
        cover,
        documents,
        printed_at: crate::local_ts(&app, app.now()),
    };
    render(&page)
}

fn missing(zh: &str, en: &str) -> AppError {
    AppError::new(ErrorKind::NotFound, "no_such_document", en, zh)
}

/// The people's mediation committee whose seal the documents carry.
fn committee(l: &Loaded) -> String {
    if l.street_office.is_empty() {
        "人民调解委员会".into()
    } else {
        format!("{}人民调解委员会", l.street_office)
    }
}

struct Writer<'a> {
    app: &'a App,
    l: &'a Loaded,
}

impl Writer<'_> {
    fn at(&self, t: &Timestamp) -> String {
        local(self.app, &t.to_canonical())
    }

    fn date(&self, t: &Timestamp) -> String {
        let d = t.date_in(self.app.offset());
        format!("{}年{}月{}日", d.year(), u8::from(d.month()), d.day())
    }

    fn member(&self, id: &MemberId) -> String {
        self.l
            .members
            .get(id)
            .or_else(|| self.l.everyone.get(id))
            .cloned()
            .unwrap_or_else(|| short(&id.to_string()))
    }

    fn party(&self, id: &PartyId) -> Option<&PartyLine> {
        let id = id.to_string();
        self.l.parties.iter().find(|p| p.id == id)
    }

    fn party_name(&self, id: &PartyId) -> String {
        self.party(id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| short(&id.to_string()))
    }

    /// Who recorded an event (the metadata's actor).
    fn recorder(&self, e: &EventEnvelope<Case>) -> String {
        EventMetadata::from_map(&e.metadata).actor_name
    }

    fn opened(&self) -> Option<&EventEnvelope<Case>> {
        self.l
            .events
            .iter()
            .find(|e| matches!(e.payload, CaseEvent::CaseOpened { .. }))
    }

    fn mediators(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for e in &self.l.events {
            let found: Vec<MemberId> = match &e.payload {
                CaseEvent::CaseAssigned { assignee, .. } => vec![*assignee],
                CaseEvent::SessionHeld { attendees, .. } => attendees
                    .iter()
                    .filter_map(|a| match a {
                        Attendee::GroupMember { member_id } => Some(*member_id),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            };
            for m in found {
                let n = self.member(&m);
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        names
    }

    /// The parties' basic details, as the registration form and Art. 29 ask.
    fn parties_grid(&self) -> Block {
        let rows = self
            .l
            .parties
            .iter()
            .map(|p| {
                let d = p.data.clone().unwrap_or_default();
                let born = match (&d.birth_date, d.age) {
                    (Some(b), _) => b.clone(),
                    (None, Some(a)) => format!("{a}岁"),
                    _ => String::new(),
                };
                let id = match (&d.id_type, &d.id_number) {
                    (Some(t), Some(n)) if *t != parties::IdType::ResidentId => {
                        format!("{}：{n}", t.label_zh())
                    }
                    (_, Some(n)) => n.clone(),
                    _ => String::new(),
                };
                let address = [
                    [d.building.clone(), d.unit.clone(), d.household.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(""),
                    d.address.clone().unwrap_or_default(),
                ]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("，");
                let mut unit = Vec::new();
                if let Some(o) = &d.organisation {
                    unit.push(o.clone());
                }
                if let Some(w) = d
                    .workplace
                    .as_ref()
                    .filter(|w| Some(*w) != d.organisation.as_ref())
                {
                    unit.push(w.clone());
                }
                if let Some(r) = &d.legal_representative {
                    unit.push(format!("法定代表人：{r}"));
                }
                if let Some(a) = &d.agent {
                    unit.push(format!("委托代理人：{a}"));
                }
                vec![
                    p.role.clone(),
                    p.name.clone(),
                    d.gender
                        .map(|g| g.label_zh().to_string())
                        .unwrap_or_default(),
                    d.ethnicity.clone().unwrap_or_default(),
                    born,
                    id,
                    d.phone.clone().unwrap_or_default(),
                    address,
                    unit.join("；"),
                ]
            })
            .collect();
        Block::Grid {
            head: [
                "身份",
                "姓名或名称",
                "性别",
                "民族",
                "出生日期或年龄",
                "证件号码",
                "联系电话",
                "住址",
                "工作单位、法定代表人、代理人",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }
    }

    /// 受理登记表: parties, the dispute, channel, dates, the receiving mediator.
    fn intake(&self) -> Document {
        let mut pairs = vec![("案号".to_string(), self.number())];
        let mut summary = String::new();
        if let Some(e) = self.opened() {
            if let CaseEvent::CaseOpened {
                kind,
                community,
                category,
                summary: s,
                occurred_at,
                channel,
                ..
            } = &e.payload
            {
                summary = s.clone();
                let opened = EventMetadata::from_map(&e.metadata);
                pairs.extend([
                    ("登记时间".to_string(), self.at(&opened.recorded_at)),
                    ("纠纷发生时间".into(), self.at(occurred_at)),
                    (
                        "来源渠道".into(),
                        labels::channel(Lang::Zh, *channel).into(),
                    ),
                    (
                        "案件类型".into(),
                        labels::kind(Lang::Zh, &serde_plain(kind)),
                    ),
                    (
                        "纠纷类别".into(),
                        category_name(self.app, Lang::Zh, category.as_str()),
                    ),
                    (
                        "小区".into(),
                        community_name(self.app, Lang::Zh, community.as_str()),
                    ),
                    ("接待调解员".into(), self.recorder(e)),
                ]);
            }
        }
        let accepted = self.l.events.iter().find_map(|e| match &e.payload {
            CaseEvent::CaseAccepted { accepted_at } => Some(self.date(accepted_at)),
            _ => None,
        });
        pairs.push((
            "受理日期".into(),
            accepted.unwrap_or_else(|| "尚未受理".into()),
        ));
        let assignee = self.l.events.iter().rev().find_map(|e| match &e.payload {
            CaseEvent::CaseAssigned { assignee, .. } => Some(self.member(assignee)),
            _ => None,
        });
        pairs.push(("承办调解员".into(), assignee.unwrap_or_default()));
        Document {
            anchor: "intake".into(),
            title: "人民调解受理登记表".into(),
            subtitle: String::new(),
            blocks: vec![
                Block::Pairs(pairs),
                self.parties_grid(),
                Block::Text {
                    heading: "纠纷简要情况及申请事项".into(),
                    body: summary,
                },
                Block::Clause(
                    "申请人自愿申请人民调解，已被告知人民调解遵循自愿、平等、合法的原则，当事人享有的权利和承担的义务。"
                        .into(),
                ),
                Block::Signatures(
                    self.l
                        .parties
                        .iter()
                        .filter(|p| {
                            matches!(
                                p.party_role,
                                Some(PartyRole::Complainant) | Some(PartyRole::Respondent)
                            )
                        })
                        .map(|p| format!("申请人/当事人 {}（签名或按指印）", p.name))
                        .chain(["登记人（调解员签名）".to_string()])
                        .collect(),
                ),
            ],
        }
    }

    /// 调解笔录, one per session held.
    fn all_minutes(&self) -> Vec<Document> {
        let places: HashMap<String, String> = self
            .l
            .events
            .iter()
            .filter_map(|e| match &e.payload {
                CaseEvent::SessionScheduled {
                    session_id,
                    location,
                    ..
                } => Some((session_id.to_string(), location.clone())),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for e in &self.l.events {
            let CaseEvent::SessionHeld {
                session_id,
                held_at,
                attendees,
                minutes_summary,
            } = &e.payload
            else {
                continue;
            };
            let mut mediators = Vec::new();
            let mut parties_present = Vec::new();
            let mut others = Vec::new();
            for a in attendees {
                match a {
                    Attendee::GroupMember { member_id } => mediators.push(self.member(member_id)),
                    Attendee::Party { party_id } => parties_present.push(self.party_name(party_id)),
                    Attendee::Other { role } => others.push(role.clone()),
                }
            }
            let n = out.len() + 1;
            let signatures = mediators
                .iter()
                .map(|m| format!("调解员 {m}（签名）"))
                .chain(
                    parties_present
                        .iter()
                        .map(|p| format!("当事人 {p}（签名或按指印）")),
                )
                .chain(others.iter().map(|o| format!("{o}（签名）")))
                .chain([format!("记录人 {}（签名）", self.recorder(e))])
                .collect();
            out.push(Document {
                anchor: format!("minutes-{session_id}"),
                title: "调解笔录".into(),
                subtitle: format!("（第{n}次）"),
                blocks: vec![
                    Block::Pairs(vec![
                        ("案号".into(), self.number()),
                        ("调解时间".into(), self.at(held_at)),
                        (
                            "调解地点".into(),
                            places
                                .get(&session_id.to_string())
                                .cloned()
                                .unwrap_or_default(),
                        ),
                        ("记录人".into(), self.recorder(e)),
                        ("调解员".into(), mediators.join("、")),
                        ("到场当事人".into(), parties_present.join("、")),
                        ("其他参加人员".into(), others.join("、")),
                    ]),
                    Block::Text {
                        heading: "调解记录".into(),
                        body: minutes_summary.clone(),
                    },
                    Block::Clause("以上笔录经当事人核对（或向其宣读），确认无误。".into()),
                    Block::Signatures(signatures),
                ],
            });
        }
        out
    }

    /// 人民调解协议书, with what Art. 29 asks, and the Art. 33 window.
    fn agreement(&self) -> Option<Document> {
        let agreed = self
            .l
            .events
            .iter()
            .rev()
            .find(|e| matches!(e.payload, CaseEvent::AgreementReached { .. }))?;
        let CaseEvent::AgreementReached {
            terms,
            agreed_at,
            facts,
            responsibilities,
            obligations,
            performance_manner: manner,
            performance_place: place,
            performance_due: due,
            copies,
            ..
        } = &agreed.payload
        else {
            return None;
        };
        let duties = obligations
            .iter()
            .map(|o| format!("{}：{}", self.party_name(&o.party_id), o.duty))
            .collect::<Vec<_>>()
            .join("\n");
        let copies = copies.map(usize::from).unwrap_or(self.l.parties.len() + 1);
        let signing: Vec<String> = self
            .l
            .parties
            .iter()
            .map(|p| format!("当事人 {}（签名、盖章或按指印）", p.name))
            .chain(
                self.mediators()
                    .into_iter()
                    .map(|m| format!("人民调解员 {m}（签名）")),
            )
            .collect();
        Some(Document {
            anchor: "agreement".into(),
            title: "人民调解协议书".into(),
            subtitle: String::new(),
            blocks: vec![
                Block::Pairs(vec![
                    ("案号".into(), self.number()),
                    ("达成协议时间".into(), self.at(agreed_at)),
                ]),
                self.parties_grid(),
                Block::Text {
                    heading: "一、纠纷的主要事实、争议事项".into(),
                    body: facts.clone(),
                },
                Block::Text {
                    heading: "二、各方当事人的责任".into(),
                    body: responsibilities.clone(),
                },
                Block::Text {
                    heading: "三、经调解，各方当事人自愿达成如下协议".into(),
                    body: terms.clone(),
                },
                Block::Text {
                    heading: "四、各方当事人的义务".into(),
                    body: duties,
                },
                Block::Pairs(vec![
                    ("履行方式".into(), manner.clone()),
                    ("履行地点".into(), place.clone()),
                    (
                        "履行期限".into(),
                        due.as_ref().map(|d| self.date(d)).unwrap_or_default(),
                    ),
                ]),
                Block::Clause(
                    "本协议自各方当事人签名、盖章或者按指印，人民调解员签名并加盖人民调解委员会印章之日起生效。经人民调解委员会调解达成的调解协议，具有法律约束力，当事人应当按照约定履行（《中华人民共和国人民调解法》第二十九条、第三十一条）。"
                        .into(),
                ),
                Block::Clause(
                    "双方当事人认为有必要的，可以自本协议生效之日起三十日内，共同向人民法院申请司法确认（《中华人民共和国人民调解法》第三十三条）。"
                        .into(),
                ),
                Block::Clause(format!(
                    "本协议一式{copies}份，当事人各执一份，人民调解委员会留存一份。"
                )),
                Block::Signatures(signing),
                Block::Seal(committee(self.l)),
            ],
        })
    }

    /// 协议履行情况记录: how the agreement was carried out, the urgings, the referral to
    /// the court and the judicial confirmation, in order.
    fn performance(&self) -> Option<Document> {
        let mut rows = Vec::new();
        for e in &self.l.events {
            let (at, what, detail) = match &e.payload {
                CaseEvent::PerformanceRecorded {
                    performance,
                    remaining,
                    reported_by,
                    reported_at,
                } => (
                    reported_at,
                    format!("履行情况：{}", performance.label_zh()),
                    match remaining {
                        Some(r) => format!("反映人：{reported_by}；尚未履行：{r}"),
                        None => format!("反映人：{reported_by}"),
                    },
                ),
                CaseEvent::PerformanceUrged {
                    method,
                    performance_due,
                    urged_at,
                } => (
                    urged_at,
                    "督促履行".into(),
                    format!("{method}；新的履行期限：{}", self.date(performance_due)),
                ),
                CaseEvent::ReferredToCourt {
                    court,
                    reason,
                    referred_at,
                    ..
                } => (
                    referred_at,
                    "告知诉权，引导至人民法院".into(),
                    format!("{court}；{reason}"),
                ),
                CaseEvent::JudicialConfirmationApplied { court, applied_at } => {
                    (applied_at, "申请司法确认".into(), court.clone())
                }
                CaseEvent::JudicialConfirmationDecided {
                    confirmed,
                    reason,
                    decided_at,
                } => (
                    decided_at,
                    if *confirmed {
                        "人民法院确认调解协议有效".into()
                    } else {
                        "人民法院不予确认".into()
                    },
                    reason.clone().unwrap_or_default(),
                ),
                _ => continue,
            };
            rows.push(vec![self.at(at), what, detail, self.recorder(e)]);
        }
        if rows.is_empty() {
            return None;
        }
        Some(Document {
            anchor: "performance".into(),
            title: "协议履行情况记录".into(),
            subtitle: String::new(),
            blocks: vec![
                Block::Pairs(vec![("案号".into(), self.number())]),
                Block::Grid {
                    head: vec![
                        "时间".into(),
                        "事项".into(),
                        "情况".into(),
                        "记录人".into(),
                    ],
                    rows,
                },
                Block::Clause(
                    "经人民调解委员会调解达成的调解协议，具有法律约束力，当事人应当按照约定履行。当事人之间就调解协议的履行或者调解协议的内容发生争议的，一方当事人可以向人民法院提起诉讼。（《中华人民共和国人民调解法》第三十一条、第三十二条）"
                        .into(),
                ),
                Block::Signatures(vec!["记录人（签名）".into()]),
            ],
        })
    }

    /// 回访记录, one per visit.
    fn follow_ups(&self) -> Vec<Document> {
        let mut out = Vec::new();
        for e in &self.l.events {
            let CaseEvent::FollowUpVisitRecorded {
                visited_at,
                satisfaction,
                notes,
            } = &e.payload
            else {
                continue;
            };
            let n = out.len() + 1;
            out.push(Document {
                anchor: format!("follow-up-{n}"),
                title: "回访记录".into(),
                subtitle: format!("（第{n}次）"),
                blocks: vec![
                    Block::Pairs(vec![
                        ("案号".into(), self.number()),
                        ("回访时间".into(), self.at(visited_at)),
                        ("回访人".into(), self.recorder(e)),
                        (
                            "当事人满意度".into(),
                            labels::satisfaction(Lang::Zh, *satisfaction).into(),
                        ),
                    ]),
                    Block::Text {
                        heading: "回访情况（协议履行情况、当事人意见）".into(),
                        body: notes.clone().unwrap_or_default(),
                    },
                    Block::Signatures(vec![
                        "回访人（签名）".into(),
                        "被回访人（签名或按指印）".into(),
                    ]),
                ],
            });
        }
        out
    }

    fn number(&self) -> String {
        self.l
            .view
            .case_number
            .clone()
            .unwrap_or_else(|| short(&self.l.view.row.case_id))
    }

    /// The 卷宗's cover.
    fn cover(&self) -> Vec<(String, String)> {
        let r = &self.l.view.row;
        let opened = self
            .opened()
            .map(|e| self.date(&EventMetadata::from_map(&e.metadata).recorded_at));
        let closed = self.l.events.iter().rev().find_map(|e| match &e.payload {
            CaseEvent::CaseClosed {
                outcome, closed_at, ..
            } => Some((
                self.date(closed_at),
                labels::outcome(Lang::Zh, *outcome).to_string(),
            )),
            CaseEvent::CaseWithdrawn { withdrawn_at, .. } => {
                Some((self.date(withdrawn_at), "撤回".to_string()))
            }
            _ => None,
        });
        let ended = matches!(
            self.l.case.status,
            CaseStatus::Closed | CaseStatus::Withdrawn
        );
        let (closed_on, outcome) = match closed.filter(|_| ended) {
            Some((d, o)) => (d, o),
            None => ("（未结案）".into(), "（未结案）".into()),
        };
        vec![
            ("案号".into(), self.number()),
            (
                "当事人".into(),
                self.l
                    .parties
                    .iter()
                    .map(|p| format!("{}（{}）", p.name, p.role))
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
            (
                "纠纷类型".into(),
                format!(
                    "{} · {}",
                    labels::kind(Lang::Zh, &r.kind),
                    category_name(self.app, Lang::Zh, &r.category)
                ),
            ),
            ("调解员".into(), self.mediators().join("、")),
            ("立案日期".into(), opened.unwrap_or_default()),
            ("结案日期".into(), closed_on),
            ("调解结果".into(), outcome),
            (
                "保管期限".into(),
                format!("{}年（自结案之日起）", self.app.settings.retention_years),
            ),
        ]
    }
}

/// An enum's JSON name (`resident_objection`).
fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// An event after the agreement that the performance record lists.
fn is_after_agreement(e: &CaseEvent) -> bool {
    matches!(
        e,
        CaseEvent::PerformanceRecorded { .. }
            | CaseEvent::PerformanceUrged { .. }
            | CaseEvent::ReferredToCourt { .. }
            | CaseEvent::JudicialConfirmationApplied { .. }
            | CaseEvent::JudicialConfirmationDecided { .. }
    )
}

/// 附件清单: every attachment with its type, size and SHA-256, and the photos themselves
/// (for whoever may open them: the case's group, a supervisor after a reveal).
async fn attachment_list(app: &App, signed: &Signed, l: &Loaded) -> Option<Document> {
    let list = super::attachments::lines(app, signed, l, false)
        .await
        .ok()?;
    if list.is_empty() {
        return None;
    }
    let case = &l.view.row.case_id;
    let show = signed.actor.role != Role::Supervisor;
    let rows = list
        .iter()
        .enumerate()
        .map(|(i, a)| {
            vec![
                (i + 1).to_string(),
                a.caption.clone(),
                a.kind.clone(),
                a.size.clone(),
                a.sha256.clone(),
                a.added.clone(),
            ]
        })
        .collect();
    let images = list
        .iter()
        .filter(|a| a.image && show)
        .map(|a| {
            (
                format!("/cases/{case}/attachments/{}", a.id),
                a.caption.clone(),
            )
        })
        .collect::<Vec<_>>();
    let mut blocks = vec![Block::Grid {
        head: vec![
            "序号".into(),
            "说明".into(),
            "类型".into(),
            "大小".into(),
            "SHA-256".into(),
            "上传".into(),
        ],
        rows,
    }];
    if !images.is_empty() {
        blocks.push(Block::Images(images));
    }
    blocks.push(Block::Clause(
        "附件按本案密钥加密保存；SHA-256 为文件内容的哈希值，已记入案件记录的哈希链，可用于核对原件。".into(),
    ));
    Some(Document {
        anchor: "attachments".into(),
        title: "附件清单".into(),
        subtitle: String::new(),
        blocks,
    })
}
