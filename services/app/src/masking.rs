//! Masking of free text for viewers who see personal data masked (supervisors, until they
//! reveal a case's parties with a logged reason).
//!
//! Summaries, minutes and agreement terms are written by mediators and often name the
//! parties. Hiding free text from supervisors altogether would defeat supervision, which
//! is about what happened; so free text is shown with the case's registered parties'
//! names, phone numbers and ID numbers masked as the party table masks them (马秀英 →
//! 马**), and with every other run of digits that looks like a phone or ID number masked
//! too. Names of people who are not registered parties cannot be recognised; that limit is
//! stated in the README.

use serde_json::Value;
use tiaojie_events::case::{free_text_fields, CaseEvent};
use tiaojie_events::metadata::Role;
use tiaojie_events::PartyId;
use tiaojie_projections::models::case_status::SummaryMask;
use tiaojie_projections::StoreError;

use crate::app::App;
use crate::app_error::AppResult;
use crate::auth::Actor;
use crate::parties;

/// Whether this viewer sees free text masked.
pub fn masks_for(actor: &Actor) -> bool {
    actor.role == Role::Supervisor
}

/// Replaces what identifies a case's parties inside free text.
#[derive(Debug, Clone, Default)]
pub struct TextMasker {
    /// (clear, masked), longest first, so that a full name goes before a part of it.
    pairs: Vec<(String, String)>,
}

impl TextMasker {
    /// The masker of a case's parties, from their registry records.
    pub async fn for_parties(app: &App, ids: &[PartyId]) -> AppResult<TextMasker> {
        let mut pairs = Vec::new();
        for id in ids {
            let Some(d) = parties::clear_data(app, &id.to_string()).await? else {
                continue;
            };
            let m = parties::mask(&d);
            if d.name.chars().count() >= 2 {
                pairs.push((d.name.clone(), m.name.clone()));
            }
            for (clear, masked) in [(&d.phone, &m.phone), (&d.id_number, &m.id_number)] {
                if let (Some(c), Some(mc)) = (clear, masked) {
                    if c.len() >= 5 {
                        pairs.push((c.clone(), mc.clone()));
                    }
                }
            }
        }
        pairs.sort_by_key(|p| std::cmp::Reverse(p.0.chars().count()));
        pairs.dedup();
        Ok(TextMasker { pairs })
    }

    /// The masker of a case as stored.
    pub async fn for_case(app: &App, case_id: &str) -> AppResult<TextMasker> {
        let (case, _) = app.stores.load_case(case_id).await?;
        Self::for_case_state(app, &case).await
    }

    /// The masker of a case as of `version` or later (a case's parties are only ever
    /// added, so a later state names every party an earlier one did).
    pub async fn for_case_at(app: &App, case_id: &str, version: u64) -> AppResult<TextMasker> {
        let (case, _) = app.stores.case_at_least(case_id, version).await?;
        Self::for_case_state(app, &case).await
    }

    async fn for_case_state(app: &App, case: &tiaojie_events::case::Case) -> AppResult<TextMasker> {
        let ids: Vec<PartyId> = case.parties.iter().map(|p| p.party_id).collect();
        Self::for_parties(app, &ids).await
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (clear, masked) in &self.pairs {
            if out.contains(clear.as_str()) {
                out = out.replace(clear.as_str(), masked);
            }
        }
        mask_numbers(&out)
    }

    /// The event with every free-text field masked.
    pub fn event(&self, e: &CaseEvent) -> CaseEvent {
        let Ok(mut v) = serde_json::to_value(e) else {
            return e.clone();
        };
        for path in free_text_fields(e.type_name()) {
            for pointer in tiaojie_projections::crypto::text_pointers(&v, path) {
                if let Some(Value::String(s)) = v.pointer_mut(&pointer) {
                    *s = self.apply(s);
                }
            }
        }
        serde_json::from_value(v).unwrap_or_else(|_| e.clone())
    }
}

/// Masks runs of digits that look like phone or ID numbers: 7 or more digits (a final X
/// of an ID number included) keep their first three and last four.
pub fn mask_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '-') {
                i += 1;
            }
            if i < chars.len() && matches!(chars[i], 'X' | 'x') {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            let digits = run.chars().filter(|c| c.is_ascii_alphanumeric()).count();
            if digits >= 7 {
                let keep: Vec<char> = run.chars().collect();
                let head: String = keep[..3].iter().collect();
                let tail: String = keep[keep.len() - 4..].iter().collect();
                out.push_str(&head);
                out.push_str(&"*".repeat(keep.len() - 7));
                out.push_str(&tail);
            } else {
                out.push_str(&run);
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Masks summaries in case lists for a masked viewer, case by case.
pub struct ListMask(pub App);

#[async_trait::async_trait]
impl SummaryMask for ListMask {
    async fn mask(&self, case_id: &str, text: String) -> Result<String, StoreError> {
        let ids: Vec<PartyId> =
            tiaojie_projections::models::case_parties::parties_of(&self.0.db, case_id)
                .await?
                .into_iter()
                .filter_map(|(p, _)| PartyId::parse(&p).ok())
                .collect();
        let m = TextMasker::for_parties(&self.0, &ids)
            .await
            .map_err(|e| StoreError::Database(e.title))?;
        Ok(m.apply(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_look_like_phones_or_ids_are_masked() {
        assert_eq!(mask_numbers("电话13895412345"), "电话138****2345");
        assert_eq!(
            mask_numbers("身份证640402199001011234"),
            "身份证640***********1234"
        );
        assert_eq!(mask_numbers("64040219900101123X"), "640***********123X");
        assert_eq!(mask_numbers("0954-2034567"), "095*****4567");
        assert_eq!(
            mask_numbers("3号楼2单元，停工3.5小时，2022年"),
            "3号楼2单元，停工3.5小时，2022年"
        );
        let m = TextMasker {
            pairs: vec![("马秀英".into(), "马**".into())],
        };
        assert_eq!(m.apply("马秀英称费用过高"), "马**称费用过高");
    }
}
