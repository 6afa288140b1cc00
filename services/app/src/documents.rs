//! Verification codes of printed documents. A document carries the start of the chain hash
//! of the case's last logged event when it was made: the code names that event, and the
//! hash chain vouches for everything before it. `verify` tells whether a paper in hand
//! matches the record, and whether the case has moved on since.

use serde::Serialize;
use sqlx::Row;
use tiaojie_projections::{on_db, StoreError};
use utoipa::ToSchema;

use crate::app::App;
use crate::app_error::{AppError, AppResult};
use crate::auth::Actor;
use crate::commands::scope;

/// Hex digits of the chain hash a code holds (48 bits).
const CODE_DIGITS: usize = 12;

/// The stamp of a document: the code and the event it reflects.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stamp {
    /// `A1B2-C3D4-E5F6`.
    pub code: String,
    /// The case event's sequence (version).
    pub sequence: i64,
}

/// `a1b2c3d4e5f6…` as `A1B2-C3D4-E5F6`.
pub fn code_of(chain_hash: &str) -> String {
    let head: String = chain_hash
        .chars()
        .take(CODE_DIGITS)
        .collect::<String>()
        .to_uppercase();
    head.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// A code as typed (any case, with or without hyphens or spaces), as the hash's start.
fn normalise(code: &str) -> Option<String> {
    let hex: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '—'))
        .collect::<String>()
        .to_lowercase();
    (hex.len() == CODE_DIGITS && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// The stamp of the case's last logged event; none before its opening is logged.
pub async fn stamp(app: &App, case_id: &str) -> AppResult<Option<Stamp>> {
    let row: Option<(String, i64)> = on_db!(&app.db, p => {
        sqlx::query("SELECT chain_hash, sequence FROM event_log WHERE aggregate_type = 'Case' AND aggregate_id = $1 ORDER BY sequence DESC LIMIT 1")
            .bind(case_id)
            .fetch_optional(p)
            .await
            .map_err(StoreError::from)?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
            .map_err(StoreError::from)?
    });
    Ok(row.map(|(hash, sequence)| Stamp {
        code: code_of(&hash),
        sequence,
    }))
}

/// What a verification code says about a paper.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verification {
    pub code: String,
    pub case_id: String,
    pub case_number: Option<String>,
    /// The event the paper reflects.
    pub sequence: i64,
    pub event_type: String,
    pub recorded_at: String,
    /// The case's last event now; later than `sequence` when the case moved on.
    pub latest_sequence: i64,
    pub latest_event_type: String,
    pub latest_recorded_at: String,
    /// The paper shows the case as it stands.
    pub current: bool,
}

/// Looks a code up, for a signed-in reader of the case: a member of another group learns
/// nothing about a case outside their scope.
pub async fn verify(app: &App, actor: &Actor, code: &str) -> AppResult<Verification> {
    if !actor.reads_cases() {
        return Err(AppError::forbidden_zh((
            "this role does not read cases",
            "该账号不能查看案件",
        )));
    }
    let not_found = || {
        AppError::new(
            crate::app_error::ErrorKind::NotFound,
            "unknown_code",
            "No document of the record has this verification code; check the code as printed",
            "没有与该核验码相符的文书，请核对纸面上印的核验码",
        )
        .with_field("code", "unknown")
    };
    let hex = normalise(code).ok_or_else(|| {
        AppError::invalid(
            "invalid_code",
            "a verification code has 12 letters and digits, as printed: A1B2-C3D4-E5F6",
            "核验码为12位字母和数字，如 A1B2-C3D4-E5F6",
        )
        .with_field("code", "12 hex digits")
    })?;
    let found: Option<(String, i64, String, String)> = on_db!(&app.db, p => {
        sqlx::query("SELECT aggregate_id, sequence, event_type, recorded_at FROM event_log WHERE substr(chain_hash, 1, 12) = $1 AND aggregate_type = 'Case' ORDER BY position LIMIT 1")
            .bind(&hex)
            .fetch_optional(p)
            .await
            .map_err(StoreError::from)?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .transpose()
            .map_err(StoreError::from)?
    });
    let (case_id, sequence, event_type, recorded_at) = found.ok_or_else(not_found)?;
    if let Some(scope) = scope(app, actor).await? {
        let community = app.stores.case_community(&case_id).await?;
        if !community.is_some_and(|c| scope.contains(&c)) {
            return Err(not_found());
        }
    }
    let (latest_sequence, latest_event_type, latest_recorded_at): (i64, String, String) = on_db!(&app.db, p => {
        let r = sqlx::query("SELECT sequence, event_type, recorded_at FROM event_log WHERE aggregate_type = 'Case' AND aggregate_id = $1 ORDER BY sequence DESC LIMIT 1")
            .bind(&case_id)
            .fetch_one(p)
            .await
            .map_err(StoreError::from)?;
        (
            r.try_get(0).map_err(StoreError::from)?,
            r.try_get(1).map_err(StoreError::from)?,
            r.try_get(2).map_err(StoreError::from)?,
        )
    });
    Ok(Verification {
        code: code_of(&hex),
        case_number: crate::numbering::of(app, &case_id).await?,
        case_id,
        current: latest_sequence == sequence,
        sequence,
        event_type,
        recorded_at,
        latest_sequence,
        latest_event_type,
        latest_recorded_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_as_typed() {
        let code = code_of("a1b2c3d4e5f60718293a4b5c6d7e8f90");
        assert_eq!(code, "A1B2-C3D4-E5F6");
        assert_eq!(normalise(&code).unwrap(), "a1b2c3d4e5f6");
        assert_eq!(normalise("a1b2 c3d4 e5f6").unwrap(), "a1b2c3d4e5f6");
        assert!(normalise("A1B2-C3D4-E5F").is_none());
        assert!(normalise("G1B2-C3D4-E5F6").is_none());
    }
}
