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
                organisation: None,
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

struct GroupSpec {
    name: &'static str,
    office: &'static str,
    district: &'static str,
    people: [(&'static str, OrgRole, &'static str); 6],
}

// Which office covers which district is not stated in the plan; this is demo configuration.
const GROUPS: [GroupSpec; 3] = [
    GroupSpec {
        name: "西关北街片区矛盾调解小组",
        office: "北塬街道办事处",
        district: "xiguan-north",
        people: [
            ("王建国", OrgRole::StreetOffice, "北塬街道办事处"),
            ("李明", OrgRole::Judicial, "北塬司法所"),
            ("赵强", OrgRole::Police, "原州区公安分局北塬派出所"),
            ("刘芳", OrgRole::ResidentsCommittee, "东海社区居委会"),
            (
                "陈静",
                OrgRole::PropertyCompany,
                "固原市安居物业服务有限公司",
            ),
            ("孙伟", OrgRole::Enterprise, "宁夏恒基建设工程有限公司"),
        ],
    },
    GroupSpec {
        name: "西关南街片区矛盾调解小组",
        office: "南关街道办事处",
        district: "xiguan-south",
        people: [
            ("马文华", OrgRole::StreetOffice, "南关街道办事处"),
            ("杨丽", OrgRole::Judicial, "南关司法所"),
            ("周涛", OrgRole::Police, "原州区公安分局南关派出所"),
            ("吴秀兰", OrgRole::ResidentsCommittee, "西关南街社区居委会"),
            (
                "郑海",
                OrgRole::PropertyCompany,
                "固原市宜家物业管理有限公司",
            ),
            ("何志刚", OrgRole::Enterprise, "宁夏六盘建设集团有限公司"),
        ],
    },
    GroupSpec {
        name: "南城路片区矛盾调解小组",
        office: "古雁街道办事处",
        district: "nanchenglu",
        people: [
            ("田玉梅", OrgRole::StreetOffice, "古雁街道办事处"),
            ("高峰", OrgRole::Judicial, "古雁司法所"),
            ("罗军", OrgRole::Police, "原州区公安分局古雁派出所"),
            ("韩冬梅", OrgRole::ResidentsCommittee, "南城路社区居委会"),
            ("冯磊", OrgRole::PropertyCompany, "固原市康泰物业有限公司"),
            ("曹建平", OrgRole::Enterprise, "宁夏固原城建工程有限公司"),
        ],
    },
];

#[derive(Clone, Copy)]
enum Step {
    Accept,
    Assign,
    Session,
    Agree,
    Fail(Route),
    Escalate(Route),
    Incident(u32, bool, &'static str),
    Police,
    Resume,
    FollowUp(Satisfaction),
    Extend,
    Order,
    AnswerOrder,
    Note(&'static str),
    Close(Outcome),
    Withdraw,
}

struct Story {
    community: &'static str,
    kind: CaseKind,
    category: &'static str,
    channel: IntakeChannel,
    summary: &'static str,
    /// Days before now that it happened.
    days_ago: i64,
    /// Parties: complainants, and whether the repeat obstructor of 靖丰苑 is one of them.
    complainants: usize,
    repeat_obstructor: bool,
    steps: &'static [Step],
}

const STORIES: &[Story] = &[
    Story {
        community: "jingfeng-yuan",
        kind: CaseKind::ConstructionObstruction,
        category: "work.roof",
        channel: IntakeChannel::OnSite,
        summary: "3号楼顶层住户阻止吊车进场，要求先明确屋面防水改造后的保修责任，屋面施工停工。",
        days_ago: 75,
        complainants: 0,
        repeat_obstructor: true,
        steps: &[
            Step::Incident(240, true, "work.roof"),
            Step::Police,
            Step::Resume,
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::BasicallySatisfied),
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "jingfeng-yuan",
        kind: CaseKind::ConstructionObstruction,
        category: "work.facade",
        channel: IntakeChannel::OnSite,
        summary: "同一住户再次阻拦外墙脚手架搭设，称施工单位未兑现补偿承诺。",
        days_ago: 40,
        complainants: 0,
        repeat_obstructor: true,
        steps: &[
            Step::Incident(180, true, "work.facade"),
            Step::Police,
            Step::Resume,
            Step::Accept,
            Step::Session,
            Step::Fail(Route::Police),
            Step::Close(Outcome::Referred),
        ],
    },
    Story {
        community: "jingfeng-yuan",
        kind: CaseKind::ConstructionObstruction,
        category: "work.drainage",
        channel: IntakeChannel::GridWorker,
        summary: "该住户第三次阻挡排水管网开挖，施工方报警，小组建议公安机关依法处置。",
        days_ago: 9,
        complainants: 0,
        repeat_obstructor: true,
        steps: &[
            Step::Incident(300, true, "work.drainage"),
            Step::Police,
            Step::Accept,
            Step::Escalate(Route::Police),
        ],
    },
    Story {
        community: "jingfeng-yuan",
        kind: CaseKind::ResidentObjection,
        category: "cause.cost-sharing",
        channel: IntakeChannel::Visit,
        summary:
            "居民对电梯加装及屋面改造中“居民合理分担”部分的分摊比例有异议，认为一楼住户不应分摊。",
        days_ago: 60,
        complainants: 3,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Extend,
            Step::Note("需等待造价评审结果后再议"),
        ],
    },
    Story {
        community: "meiyuan",
        kind: CaseKind::ResidentObjection,
        category: "cause.design",
        channel: IntakeChannel::Deputy,
        summary: "人大代表反映：梅园小区社区综合服务设施选址占用原有绿地，部分居民反对。",
        days_ago: 50,
        complainants: 2,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::Satisfied),
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "meiyuan",
        kind: CaseKind::ConstructionObstruction,
        category: "work.parking",
        channel: IntakeChannel::OnSite,
        summary: "居民在停车场改造区域停放车辆阻止划线施工。",
        days_ago: 20,
        complainants: 0,
        repeat_obstructor: false,
        steps: &[
            Step::Incident(90, false, "work.parking"),
            Step::Resume,
            Step::Accept,
            Step::Session,
            Step::Agree,
        ],
    },
    Story {
        community: "defu",
        kind: CaseKind::ResidentObjection,
        category: "cause.nuisance",
        channel: IntakeChannel::Hotline,
        summary: "12345热线转办：夜间切割作业噪声扰民，要求22时后停止施工。",
        days_ago: 30,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::Satisfied),
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "defu",
        kind: CaseKind::ResidentObjection,
        category: "cause.property-damage",
        channel: IntakeChannel::Visit,
        summary: "外墙保温施工时损坏空调外机，住户要求施工单位赔偿。",
        days_ago: 12,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[Step::Accept, Step::Assign, Step::Session],
    },
    Story {
        community: "dianxin",
        kind: CaseKind::ResidentObjection,
        category: "cause.utility-outage",
        channel: IntakeChannel::Phone,
        summary: "架空线入地改造停电时间超过公告时间，住户要求说明情况。",
        days_ago: 25,
        complainants: 2,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "xinjiekou-c",
        kind: CaseKind::ResidentObjection,
        category: "cause.illegal-structure",
        channel: IntakeChannel::Visit,
        summary: "拆除楼前违建车棚，车棚所有人认为系多年前经同意搭建，要求补偿。",
        days_ago: 45,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Fail(Route::JudicialOffice),
            Step::Order,
            Step::AnswerOrder,
            Step::Close(Outcome::Referred),
        ],
    },
    Story {
        community: "xinjiekou-a-west",
        kind: CaseKind::ConstructionObstruction,
        category: "work.gas",
        channel: IntakeChannel::OnSite,
        summary: "部分住户拒绝燃气管道入户施工，拦阻施工人员进入楼道。",
        days_ago: 15,
        complainants: 0,
        repeat_obstructor: false,
        steps: &[
            Step::Incident(120, false, "work.gas"),
            Step::Accept,
            Step::Session,
        ],
    },
    Story {
        community: "xinjiekou-a-east",
        kind: CaseKind::ResidentObjection,
        category: "cause.access",
        channel: IntakeChannel::GridWorker,
        summary: "道路开挖未设置临时通道，老人出行不便。",
        days_ago: 4,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[],
    },
    Story {
        community: "xinjiekou-d",
        kind: CaseKind::ResidentObjection,
        category: "cause.quality",
        channel: IntakeChannel::Phone,
        summary: "新换雨落管接口渗水，住户质疑施工质量。",
        days_ago: 35,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::Dissatisfied),
        ],
    },
    Story {
        community: "baxiao",
        kind: CaseKind::ResidentObjection,
        category: "cause.parking",
        channel: IntakeChannel::Visit,
        summary: "停车位重新规划后车位减少，居民要求公开分配办法。",
        days_ago: 55,
        complainants: 2,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::Satisfied),
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "xinhe",
        kind: CaseKind::ResidentObjection,
        category: "cause.cost-sharing",
        channel: IntakeChannel::Visit,
        summary: "信合小区（原文亦作信和小区）居民对楼道改造费用分摊有异议。",
        days_ago: 70,
        complainants: 2,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::Satisfied),
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "xinhe",
        kind: CaseKind::ConstructionObstruction,
        category: "work.water-supply",
        channel: IntakeChannel::OnSite,
        summary: "分户计量水表安装时住户拒绝停水，阻止施工人员关闭总阀。",
        days_ago: 18,
        complainants: 0,
        repeat_obstructor: false,
        steps: &[
            Step::Incident(60, false, "work.water-supply"),
            Step::Resume,
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "ziwei-huayuan",
        kind: CaseKind::ResidentObjection,
        category: "cause.design",
        channel: IntakeChannel::Visit,
        summary: "居民对单元门禁改造方案有不同意见，要求召开业主大会。",
        days_ago: 28,
        complainants: 2,
        repeat_obstructor: false,
        steps: &[Step::Accept, Step::Session],
    },
    Story {
        community: "gongxiao-chedui",
        kind: CaseKind::ResidentObjection,
        category: "cause.nuisance",
        channel: IntakeChannel::Hotline,
        summary: "施工扬尘大，要求洒水降尘并覆盖渣土。",
        days_ago: 22,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::Satisfied),
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "dongjianzhan",
        kind: CaseKind::ResidentObjection,
        category: "cause.other",
        channel: IntakeChannel::Phone,
        summary: "反映事项不属于本次改造范围（房屋产权登记问题）。",
        days_ago: 33,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[Step::Close(Outcome::NotAdmissible)],
    },
    Story {
        community: "jixiang-yuan",
        kind: CaseKind::ResidentObjection,
        category: "cause.neighbours",
        channel: IntakeChannel::Visit,
        summary: "楼上楼下住户因防水施工渗漏发生纠纷。",
        days_ago: 16,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[Step::Accept, Step::Withdraw],
    },
    Story {
        community: "minzu",
        kind: CaseKind::ConstructionObstruction,
        category: "work.elderly-accessible",
        channel: IntakeChannel::OnSite,
        summary: "一楼住户阻止无障碍坡道施工，认为占用其门前空间。",
        days_ago: 26,
        complainants: 0,
        repeat_obstructor: false,
        steps: &[
            Step::Incident(150, true, "work.elderly-accessible"),
            Step::Police,
            Step::Resume,
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "wuzhuangbu",
        kind: CaseKind::ResidentObjection,
        category: "cause.property-management",
        channel: IntakeChannel::Visit,
        summary: "改造后物业服务收费标准不明，居民要求公示。",
        days_ago: 8,
        complainants: 3,
        repeat_obstructor: false,
        steps: &[Step::Accept],
    },
    Story {
        community: "lvyuan",
        kind: CaseKind::ResidentObjection,
        category: "cause.cost-sharing",
        channel: IntakeChannel::Petition,
        summary: "信访转办：居民认为节能改造分摊费用未经业主大会表决。",
        days_ago: 65,
        complainants: 2,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Fail(Route::LeadershipGroup),
            Step::Escalate(Route::LeadershipGroup),
            Step::Order,
            Step::AnswerOrder,
        ],
    },
    Story {
        community: "xianghe-jiayuan",
        kind: CaseKind::ConstructionObstruction,
        category: "work.greening",
        channel: IntakeChannel::OnSite,
        summary: "居民阻止移栽楼前树木，绿化施工停工。",
        days_ago: 6,
        complainants: 0,
        repeat_obstructor: false,
        steps: &[
            Step::Incident(210, false, "work.greening"),
            Step::Accept,
            Step::Session,
        ],
    },
    Story {
        community: "gongshang-south",
        kind: CaseKind::ResidentObjection,
        category: "cause.safety",
        channel: IntakeChannel::GridWorker,
        summary: "脚手架未设防护网，居民担心坠物伤人。",
        days_ago: 3,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[Step::Accept, Step::Order],
    },
    Story {
        community: "gongshang-north",
        kind: CaseKind::ResidentObjection,
        category: "cause.nuisance",
        channel: IntakeChannel::Phone,
        summary: "建筑垃圾长期堆放未清运。",
        days_ago: 14,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "jiaojingdui",
        kind: CaseKind::ResidentObjection,
        category: "cause.parking",
        channel: IntakeChannel::Visit,
        summary: "充电桩安装位置占用固定车位。",
        days_ago: 38,
        complainants: 2,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::BasicallySatisfied),
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "yangguang",
        kind: CaseKind::ResidentObjection,
        category: "cause.access",
        channel: IntakeChannel::Phone,
        summary: "施工围挡封堵消防通道。",
        days_ago: 2,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[],
    },
    Story {
        community: "fuyou",
        kind: CaseKind::ConstructionObstruction,
        category: "work.power",
        channel: IntakeChannel::OnSite,
        summary: "住户阻拦供电线路迁改，要求电表箱不得安装在其窗下。",
        days_ago: 11,
        complainants: 0,
        repeat_obstructor: false,
        steps: &[
            Step::Incident(45, false, "work.power"),
            Step::Resume,
            Step::Accept,
            Step::Session,
            Step::Agree,
        ],
    },
    Story {
        community: "donghai-yuanqu",
        kind: CaseKind::ResidentObjection,
        category: "cause.cost-sharing",
        channel: IntakeChannel::Visit,
        summary: "东海园区居民对外墙保温改造的居民分担部分有异议。",
        days_ago: 58,
        complainants: 4,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Agree,
            Step::FollowUp(Satisfaction::Satisfied),
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "donghai-yuanqu",
        kind: CaseKind::ConstructionObstruction,
        category: "work.heating",
        channel: IntakeChannel::OnSite,
        summary: "供热管道改造开挖时住户阻拦，称开挖损坏其自建花池。",
        days_ago: 19,
        complainants: 0,
        repeat_obstructor: false,
        steps: &[
            Step::Incident(360, true, "work.heating"),
            Step::Police,
            Step::Resume,
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Fail(Route::Court),
            Step::Close(Outcome::Referred),
        ],
    },
    Story {
        community: "donghai-yuanqu",
        kind: CaseKind::ConstructionObstruction,
        category: "work.heating",
        channel: IntakeChannel::OnSite,
        summary: "另一住户阻止供热管道接口施工。",
        days_ago: 7,
        complainants: 0,
        repeat_obstructor: false,
        steps: &[Step::Incident(120, false, "work.heating"), Step::Accept],
    },
    Story {
        community: "fuping-yuan",
        kind: CaseKind::ResidentObjection,
        category: "cause.quality",
        channel: IntakeChannel::Hotline,
        summary: "楼梯扶手更换后松动，居民投诉施工质量。",
        days_ago: 24,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Session,
            Step::Agree,
            Step::Close(Outcome::ResolvedByAgreement),
        ],
    },
    Story {
        community: "shuiwu",
        kind: CaseKind::ResidentObjection,
        category: "cause.illegal-structure",
        channel: IntakeChannel::Visit,
        summary: "拆除楼顶违建阳光房，房主拒绝自行拆除。",
        days_ago: 42,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[
            Step::Accept,
            Step::Assign,
            Step::Session,
            Step::Fail(Route::JudicialOffice),
            Step::Escalate(Route::JudicialOffice),
        ],
    },
    Story {
        community: "shuiwu",
        kind: CaseKind::ResidentObjection,
        category: "cause.nuisance",
        channel: IntakeChannel::Phone,
        summary: "周末施工噪声扰民。",
        days_ago: 1,
        complainants: 1,
        repeat_obstructor: false,
        steps: &[],
    },
];

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
    for (gi, spec) in GROUPS.iter().enumerate() {
        // Reuse a group that covers the district already (demo --force on a loaded store).
        let communities: Vec<CommunityId> = app
            .reference
            .communities_of(&tiaojie_events::DistrictId::parse(spec.district)?)
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
            .map(|(name, role, org)| Member {
                member_id: MemberId::new(),
                name: (*name).into(),
                org_role: *role,
                organisation: (*org).into(),
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
                name: spec.name.into(),
                street_office: spec.office.into(),
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
    };
    let mut repeat_obstructor: Option<PartyId> = None;
    let mut people = People::default();
    for story in STORIES {
        let community = c(story.community);
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
        };
        let member = Actor {
            id: format!("demo-{}", members[3].member_id),
            name: members[3].name.clone(),
            role: Role::Member,
            organisation: members[3].organisation.clone(),
            group: Some(*gid),
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
        let mut steps: Vec<Step> = story.steps.to_vec();
        // An obstruction case is opened with its first incident.
        let first_incident = match steps.first() {
            Some(Step::Incident(minutes, police, item))
                if story.kind == CaseKind::ConstructionObstruction =>
            {
                let r = Some((*minutes, *police, *item));
                steps.remove(0);
                r
            }
            _ => None,
        };
        let mut incident = first_incident.map(|_| IncidentId::new());
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
                category: cat(story.category),
                summary: story.summary.into(),
                occurred_at: Some(occurred),
                channel: story.channel,
                parties: parties.clone(),
                incident: first_incident
                    .zip(incident)
                    .map(|((minutes, police, item), id)| IncidentInput {
                        incident_id: id,
                        occurred_at: Some(occurred),
                        location: "施工现场".into(),
                        work_item: cat(item),
                        obstructing_parties: obstructors.clone(),
                        work_stopped_minutes: minutes,
                        police_called: police,
                        description: story.summary.into(),
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
            let (actor, cmd) = match *step {
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
                    }),
                ),
                Step::Fail(route) => (
                    &member,
                    CaseCommand::FailMediation(FailMediation {
                        reason: "双方分歧较大，调解未能达成一致。".into(),
                        next_route: route,
                        failed_at: Some(at),
                    }),
                ),
                Step::Escalate(route) => (
                    &leader,
                    CaseCommand::Escalate(Escalate {
                        route,
                        reason: "超出调解小组处理权限，上报处理。".into(),
                        escalated_at: Some(at),
                    }),
                ),
                Step::Incident(minutes, police, item) => {
                    let id = IncidentId::new();
                    incident = Some(id);
                    (
                        &member,
                        CaseCommand::RecordIncident(RecordIncident {
                            incident: IncidentInput {
                                incident_id: id,
                                occurred_at: Some(at),
                                location: "施工现场".into(),
                                work_item: cat(item),
                                obstructing_parties: obstructors.clone(),
                                work_stopped_minutes: minutes,
                                police_called: police,
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
                Step::FollowUp(s) => (
                    &member,
                    CaseCommand::RecordFollowUp(RecordFollowUp {
                        visited_at: Some(at),
                        satisfaction: s,
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
                Step::Note(text) => (&member, CaseCommand::AddNote(AddNote { note: text.into() })),
                Step::Close(outcome) => (
                    &leader,
                    CaseCommand::CloseCase(CloseCase {
                        outcome: Some(outcome),
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
    STORIES.len()
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
    crate::server::write_private(&path, &(lines.join("\n") + "\n"))?;
    Ok(path)
}
