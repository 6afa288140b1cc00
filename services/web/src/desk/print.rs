//! The printable case file.

use super::*;

#[derive(Template)]
#[template(path = "print.html")]
pub(super) struct PrintPage {
    chrome: Chrome,
    case: CaseLine,
    facts: Vec<Fact>,
    summary: String,
    parties: Vec<PartyLine>,
    sections: Vec<(String, Vec<TimelineEntry>)>,
    group: String,
    street_office: String,
    printed_at: String,
}

/// The sections of the printed case file and the events each gathers.
pub(super) const PRINT_SECTIONS: [(&str, &str, &[&str]); 7] = [
    (
        "一、受理登记",
        "1. Intake",
        &["CaseOpened", "PartyAdded", "CaseAccepted", "CaseAssigned"],
    ),
    (
        "二、调解记录",
        "2. Mediation sessions",
        &["SessionScheduled", "SessionHeld", "DeadlineExtended"],
    ),
    (
        "三、阻挡施工与处置",
        "3. Obstruction and police",
        &[
            "ObstructionIncidentRecorded",
            "PoliceInterventionRecorded",
            "WorkResumed",
        ],
    ),
    (
        "四、调解协议",
        "4. Agreement",
        &["AgreementReached", "MediationFailed", "CaseEscalated"],
    ),
    (
        "五、回访与督办",
        "5. Follow-up and supervision",
        &[
            "FollowUpVisitRecorded",
            "SupervisionOrderIssued",
            "SupervisionOrderAnswered",
        ],
    ),
    (
        "六、结案",
        "6. Closure",
        &["CaseClosed", "CaseWithdrawn", "CaseReopened"],
    ),
    (
        "七、备注与更正",
        "7. Notes and corrections",
        &["NoteAdded", "CorrectionRecorded"],
    ),
];

pub async fn print(State(app): State<App>, signed: Signed, Path(raw): Path<String>) -> Response {
    let lang = signed.web.lang;
    let l = match load(&app, &signed, &raw, None).await {
        Ok(l) => l,
        Err(e) => return signed.error(e),
    };
    let mut all = timeline(&app, lang, &l);
    all.reverse();
    let pick = |kinds: &[&str]| -> Vec<TimelineEntry> {
        all.iter()
            .filter(|e| kinds.contains(&e.kind.as_str()))
            .cloned()
            .collect()
    };
    let sections: Vec<(String, Vec<TimelineEntry>)> = PRINT_SECTIONS
        .iter()
        .map(|(zh, en, kinds)| (lang.t(zh, en).to_string(), pick(kinds)))
        .collect();
    let case = line(&app, lang, &l.view);
    let page = PrintPage {
        chrome: signed.chrome(
            format!(
                "{} {}",
                lang.t("人民调解案卷", "Mediation case file"),
                case.short
            ),
            "desk",
        ),
        facts: facts(&app, lang, &l),
        summary: l.view.row.summary.clone(),
        parties: l.parties.clone(),
        sections,
        group: l.group_name.clone(),
        street_office: l.street_office.clone(),
        printed_at: crate::local_ts(&app, app.now()),
        case,
    };
    render(&page)
}
