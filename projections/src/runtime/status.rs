//! Each read model's position and lag behind the log.

use super::*;

/// One line of `tiaojie projections status`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub position: i64,
    pub log_head: i64,
    pub lag: i64,
    pub updated_at: String,
    pub failed_position: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn status(
    db: &Db,
    projectors: &[Arc<dyn Projector>],
) -> Result<(i64, i64, Vec<ProjectionStatus>), StoreError> {
    let (head, _) = log::log_head(db).await?;
    let (_, unsequenced) = log::events_pending(db).await?;
    let mut out = Vec::new();
    for p in projectors {
        let row: Option<(i64, String, Option<i64>, Option<String>)> = on_db!(db, pool => {
            sqlx::query("SELECT position, updated_at, failed_position, last_error FROM projection_checkpoint WHERE name = $1")
                .bind(p.name())
                .fetch_optional(pool)
                .await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .transpose()?
        });
        let (position, updated_at, failed_position, last_error) =
            row.unwrap_or((0, String::new(), None, None));
        out.push(ProjectionStatus {
            name: p.name().to_string(),
            position,
            log_head: head,
            lag: head - position,
            updated_at,
            failed_position,
            last_error,
        });
    }
    Ok((head, unsequenced, out))
}
