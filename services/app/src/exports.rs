//! Excel workbooks for reporting upward (台账, statistics), written with `rust_xlsxwriter`:
//! Chinese headers, Beijing time, names rather than codes, parties masked as the viewer must
//! see them. Each opens in Excel and WPS (plain cells, one format for headers).

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use tiaojie_events::Timestamp;
use tiaojie_projections::models::case_status::{self, CaseFilter};

use crate::app::App;
use crate::app_error::{AppError, AppResult};
use crate::auth::Actor;
use crate::commands::RequestMeta;
use crate::stats::{key_name, By, Figures, PeriodStats};

/// The media type of an xlsx workbook.
pub const XLSX_MEDIA_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The `Content-Disposition` of a download named `name` (ASCII).
pub fn attachment_disposition(name: &str) -> String {
    format!("attachment; filename=\"{name}\"")
}

fn xlsx_err(e: XlsxError) -> AppError {
    tracing::error!(error = %e, "an Excel export could not be written");
    AppError::internal()
}

/// A time as Beijing (local) time, to the minute.
pub(crate) fn local(app: &App, t: &str) -> String {
    Timestamp::parse(t)
        .map(|t| {
            let l = t.as_offset().to_offset(app.offset());
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                l.year(),
                l.month() as u8,
                l.day(),
                l.hour(),
                l.minute()
            )
        })
        .unwrap_or_default()
}

fn header(ws: &mut Worksheet, heads: &[&str]) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold().set_background_color("#E8EEF4");
    for (i, h) in heads.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *h, &bold)?;
        ws.set_column_width(i as u16, (h.chars().count() as f64 * 2.2).max(10.0))?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

const FIGURES: &[&str] = &[
    "登记",
    "受理",
    "结案",
    "调解成功",
    "其他方式化解",
    "移交处理",
    "不予受理",
    "未能化解",
    "撤回",
    "调解不成",
    "上报/移交",
    "调解成功率",
    "按期办结率",
    "平均办理天数",
    "中位办理天数",
    "阻工事件",
    "停工小时",
    "下发督办",
    "按期答复督办",
    "督办按期答复率",
];

fn figure_values(f: &Figures) -> Vec<Option<f64>> {
    let n = |v: i64| Some(v as f64);
    vec![
        n(f.received),
        n(f.accepted),
        n(f.closed),
        n(f.resolved_by_agreement),
        n(f.resolved_otherwise),
        n(f.referred),
        n(f.not_admissible),
        n(f.unresolved),
        n(f.withdrawn),
        n(f.failed),
        n(f.escalated),
        f.success_rate,
        f.on_time_rate,
        f.mean_days,
        f.median_days,
        n(f.incidents),
        Some(f.hours_stopped),
        n(f.orders_issued),
        n(f.orders_answered_on_time),
        f.orders_on_time_rate,
    ]
}

fn by_zh(by: By) -> &'static str {
    match by {
        By::District => "片区",
        By::Community => "小区",
        By::Category => "纠纷类别",
        By::Channel => "来源",
        By::Kind => "案件类型",
    }
}

/// The statistics of a period as a workbook: the figures (this period and the one before,
/// side by side), the cases overdue now, and what each figure counts.
pub fn stats_xlsx(s: &PeriodStats) -> AppResult<Vec<u8>> {
    let build = || -> Result<Vec<u8>, XlsxError> {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.set_name("统计")?;
        let mut heads = vec![by_zh(s.by)];
        let labels: Vec<String> = FIGURES
            .iter()
            .flat_map(|f| [format!("{f}（本期）"), format!("{f}（上期）")])
            .collect();
        heads.extend(labels.iter().map(String::as_str));
        header(ws, &heads)?;
        let pct = Format::new().set_num_format("0.0%");
        for (r, row) in s.rows.iter().chain([&s.total]).enumerate() {
            let r = r as u32 + 1;
            ws.write_string(r, 0, &row.name)?;
            let (cur, prev) = (figure_values(&row.current), figure_values(&row.previous));
            for (i, (c, p)) in cur.iter().zip(prev.iter()).enumerate() {
                let rate = FIGURES[i].ends_with('率');
                for (k, v) in [c, p].iter().enumerate() {
                    let col = (1 + 2 * i + k) as u16;
                    match (v, rate) {
                        (Some(v), true) => ws.write_number_with_format(r, col, *v, &pct)?,
                        (Some(v), false) => ws.write_number(r, col, *v)?,
                        (None, _) => ws.write_string(r, col, "—")?,
                    };
                }
            }
        }
        let last = s.rows.len() as u32 + 3;
        ws.write_string(
            last,
            0,
            format!(
                "本期 {} 至 {}；上期 {} 至 {}（北京时间）",
                s.from, s.to, s.previous_from, s.previous_to
            ),
        )?;
        let od = wb.add_worksheet();
        od.set_name("逾期案件")?;
        header(od, &["案号", "小区", "期限类型", "期限", "承办人"])?;
        for (r, o) in s.overdue.iter().enumerate() {
            let r = r as u32 + 1;
            od.write_string(
                r,
                0,
                o.case_number.clone().unwrap_or_else(|| o.case_id.clone()),
            )?;
            od.write_string(r, 1, &o.community)?;
            od.write_string(r, 2, due_kind_zh(&o.due_kind))?;
            od.write_string(r, 3, &o.due_at)?;
            od.write_string(
                r,
                4,
                o.holder.clone().unwrap_or_else(|| "（未指派）".into()),
            )?;
        }
        let defs = wb.add_worksheet();
        defs.set_name("口径说明")?;
        header(defs, &["指标", "说明"])?;
        defs.set_column_width(1, 90)?;
        for (r, d) in s.definitions.iter().enumerate() {
            defs.write_string(r as u32 + 1, 0, &d.figure)?;
            defs.write_string(r as u32 + 1, 1, &d.zh)?;
        }
        wb.save_to_buffer()
    };
    build().map_err(xlsx_err)
}

fn due_kind_zh(k: &str) -> &'static str {
    match k {
        "acceptance" => "受理期限",
        "mediation" => "调解期限",
        "extension" => "延长后的调解期限",
        "follow_up" => "回访期限",
        "performance" => "协议履行期限",
        "judicial_confirmation" => "司法确认申请期限",
        "escalation_reply" => "上报答复期限",
        "supervision_order" => "督办答复期限",
        _ => "期限",
    }
}

fn status_zh(s: &str) -> &'static str {
    tiaojie_events::case::CaseStatus::parse(s)
        .map(|s| s.label_zh())
        .unwrap_or("—")
}

fn outcome_zh(o: &str) -> &'static str {
    match o {
        "withdrawn" => "撤回",
        other => other
            .parse::<tiaojie_events::case::Outcome>()
            .map(|o| o.label_zh())
            .unwrap_or("—"),
    }
}

/// The case ledger (台账): the cases a list with `filter` shows the viewer, newest first,
/// up to 20,000 rows. Parties appear as the viewer may see them (masked for supervisors);
/// dashboards get no ledger.
pub async fn cases_xlsx(
    app: &App,
    actor: &Actor,
    meta: &RequestMeta,
    mut filter: CaseFilter,
) -> AppResult<Vec<u8>> {
    if !actor.reads_cases() {
        return Err(AppError::forbidden_zh((
            "this role does not read cases",
            "该账号不能查看案件台账",
        )));
    }
    let mut cases = Vec::new();
    filter.limit = 500;
    loop {
        let page = case_status::list(&app.db, &app.keys, &filter, &app.now(), None)
            .await
            .map_err(|e| match e {
                case_status::QueryError::BadCursor => {
                    AppError::invalid("invalid_cursor", "the cursor is not valid", "分页参数无效")
                }
                case_status::QueryError::Store(s) => AppError::store(s),
            })?;
        cases.extend(page.items);
        match page.next_cursor {
            Some(c) if cases.len() < 20_000 => filter.cursor = Some(c),
            _ => break,
        }
    }
    let ids: Vec<&str> = cases.iter().map(|c| c.row.case_id.as_str()).collect();
    let numbers = crate::numbering::texts(app, &ids).await?;
    let mut members = std::collections::BTreeMap::new();
    for (_, g) in app.directory.groups().await? {
        for (id, m) in g.members {
            members.insert(id.to_string(), m.name);
        }
    }
    let mut rows = Vec::with_capacity(cases.len());
    for c in &cases {
        let r = &c.row;
        let mut names = Vec::new();
        for (party, _) in
            tiaojie_projections::models::case_parties::parties_of(&app.db, &r.case_id).await?
        {
            let name = match crate::parties::view(app, actor, meta, &party, None, Some(&r.case_id))
                .await
            {
                Ok(v) => v
                    .data
                    .map(|d| d.name)
                    .unwrap_or_else(|| "（已删除）".into()),
                Err(_) => "—".into(),
            };
            names.push(name);
        }
        let days = match (&r.accepted_at, &r.closed_at) {
            (Some(a), Some(c)) => match (Timestamp::parse(a), Timestamp::parse(c)) {
                (Ok(a), Ok(c)) => Some(
                    ((c.as_offset() - a.as_offset()).as_seconds_f64() / 86_400.0 * 10.0).round()
                        / 10.0,
                ),
                _ => None,
            },
            _ => None,
        };
        rows.push((
            numbers
                .get(&r.case_id)
                .cloned()
                .unwrap_or_else(|| r.case_id.clone()),
            local(app, &r.reported_at),
            names.join("、"),
            key_name(app, By::Category, &r.category),
            key_name(app, By::Community, &r.community),
            r.assignee
                .as_ref()
                .and_then(|a| members.get(a).cloned())
                .unwrap_or_default(),
            status_zh(&r.status),
            r.outcome.as_deref().map(outcome_zh).unwrap_or(""),
            r.closed_at
                .as_deref()
                .map(|t| local(app, t))
                .unwrap_or_default(),
            days,
        ));
    }
    let build = || -> Result<Vec<u8>, XlsxError> {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.set_name("案件台账")?;
        header(
            ws,
            &[
                "案号",
                "登记日期",
                "当事人",
                "纠纷类型",
                "小区",
                "承办调解员",
                "状态",
                "结果",
                "结案日期",
                "办理天数",
            ],
        )?;
        ws.set_column_width(0, 26)?;
        ws.set_column_width(2, 24)?;
        for (i, row) in rows.iter().enumerate() {
            let r = i as u32 + 1;
            ws.write_string(r, 0, &row.0)?;
            ws.write_string(r, 1, &row.1)?;
            ws.write_string(r, 2, &row.2)?;
            ws.write_string(r, 3, &row.3)?;
            ws.write_string(r, 4, &row.4)?;
            ws.write_string(r, 5, &row.5)?;
            ws.write_string(r, 6, row.6)?;
            ws.write_string(r, 7, row.7)?;
            ws.write_string(r, 8, &row.8)?;
            match row.9 {
                Some(d) => ws.write_number(r, 9, d)?,
                None => ws.write_string(r, 9, "")?,
            };
        }
        wb.save_to_buffer()
    };
    build().map_err(xlsx_err)
}

fn role_zh(r: &str) -> &'static str {
    match r {
        "member" => "调解小组成员",
        "leader" => "调解小组组长",
        "supervisor" => "督查室",
        "admin" => "管理员",
        "dashboard" => "大屏",
        "system" => "系统",
        _ => "—",
    }
}

/// The audit trail as a workbook, oldest first, with the list's filters, up to 50,000
/// rows: Beijing time, the case number, the community's name, what happened in Chinese,
/// who did it, and the chain hash that proves the row.
pub async fn audit_xlsx(
    app: &App,
    mut f: tiaojie_projections::models::audit::AuditFilter,
) -> AppResult<Vec<u8>> {
    use tiaojie_projections::models::audit;
    f.ascending = true;
    f.limit = 1000;
    let numbers = crate::numbering::Numberer::new(app).await?;
    let mut entries = Vec::new();
    let mut names = std::collections::HashMap::new();
    loop {
        let page = audit::list(&app.db, &f).await.map_err(|e| match e {
            Some(s) => AppError::store(s),
            None => AppError::invalid("invalid_cursor", "The cursor is not valid", "分页游标无效"),
        })?;
        names.extend(numbers.of_entries(&app.db, &page.items).await?);
        entries.extend(page.items);
        match page.next_cursor {
            Some(c) if entries.len() < 50_000 => f.cursor = Some(c),
            _ => break,
        }
    }
    let build = || -> Result<Vec<u8>, XlsxError> {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.set_name("审计记录")?;
        header(
            ws,
            &[
                "序号",
                "录入时间",
                "发生时间",
                "案号",
                "小区",
                "事项",
                "操作人",
                "身份",
                "单位",
                "链哈希",
            ],
        )?;
        ws.set_column_width(5, 40)?;
        ws.set_column_width(9, 66)?;
        for (i, e) in entries.iter().enumerate() {
            let r = i as u32 + 1;
            ws.write_number(r, 0, e.position as f64)?;
            ws.write_string(r, 1, local(app, &e.recorded_at))?;
            ws.write_string(
                r,
                2,
                e.business_at
                    .as_deref()
                    .map(|t| local(app, t))
                    .unwrap_or_default(),
            )?;
            ws.write_string(
                r,
                3,
                e.case_id
                    .as_deref()
                    .and_then(|c| names.get(c))
                    .cloned()
                    .unwrap_or_default(),
            )?;
            ws.write_string(
                r,
                4,
                e.community
                    .as_deref()
                    .map(|c| key_name(app, By::Community, c))
                    .unwrap_or_default(),
            )?;
            ws.write_string(r, 5, &e.summary_zh)?;
            ws.write_string(r, 6, &e.actor_name)?;
            ws.write_string(r, 7, role_zh(&e.role))?;
            ws.write_string(r, 8, &e.organisation)?;
            ws.write_string(r, 9, &e.chain_hash)?;
        }
        wb.save_to_buffer()
    };
    build().map_err(xlsx_err)
}
