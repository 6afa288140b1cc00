//! `tiaojie backup` and `tiaojie restore` for the SQLite store. (PostgreSQL: `pg_dump` and
//! `pg_restore`, see deploy/README.md.)

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tiaojie_projections::{log, Db, DbOptions};

/// A consistent copy made with `VACUUM INTO`: one read transaction's snapshot, taken while
/// writers go on (WAL mode), written to a new file.
pub async fn backup(db: &Db, path: &Path) -> anyhow::Result<()> {
    let Db::Sqlite(pool) = db else {
        bail!("tiaojie backup copies the SQLite store; for PostgreSQL use pg_dump (see deploy/README.md)");
    };
    if path.exists() {
        bail!("{} exists already; choose a new file name", path.display());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let target = path
        .to_str()
        .context("the backup path is not valid UTF-8")?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(pool)
        .await
        .context("the backup failed")?;
    Ok(())
}

/// The SQLite file a `sqlite:` URL names.
pub fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite:")
        .context("tiaojie restore puts back a SQLite store; the database URL is not sqlite:")?;
    let path = rest.trim_start_matches("//");
    Ok(PathBuf::from(path.split('?').next().unwrap_or(path)))
}

/// Verifies a backup's audit chain, then moves it into place.
pub async fn restore(database_url: &str, backup: &Path) -> anyhow::Result<String> {
    let target = sqlite_path(database_url)?;
    if !backup.is_file() {
        bail!("there is no backup file at {}", backup.display());
    }
    // Verify a scratch copy, so that checking the backup never changes it.
    let scratch = backup.with_extension(format!("verify-{}", std::process::id()));
    std::fs::copy(backup, &scratch).with_context(|| format!("cannot read {}", backup.display()))?;
    let url = format!("sqlite:{}", scratch.display());
    let verified = async {
        let db = Db::connect(&url, &DbOptions::default()).await?;
        let v = log::verify(&db).await?;
        db.close().await;
        Ok::<_, anyhow::Error>(v)
    }
    .await;
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", scratch.display()));
    }
    let v = verified.context("the backup cannot be opened as a tiaojie store")?;
    if !v.ok {
        bail!(
            "the backup's audit chain does not verify (first bad position {}: {}); nothing was replaced",
            v.first_bad_position.unwrap_or(0),
            v.problem.unwrap_or_default()
        );
    }
    let mut kept = String::new();
    if target.exists() {
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let aside = PathBuf::from(format!("{}.replaced-{stamp}", target.display()));
        std::fs::rename(&target, &aside)
            .with_context(|| format!("cannot move {} aside", target.display()))?;
        kept = format!(" The replaced store is kept as {}.", aside.display());
        for ext in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{ext}", target.display()));
            if side.exists() {
                let _ = std::fs::rename(&side, format!("{}{ext}", aside.display()));
            }
        }
    } else if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(backup, &target).with_context(|| format!("cannot write {}", target.display()))?;
    Ok(format!(
        "Restored {} to {}: {} events, audit chain head at position {} ({}).{kept}",
        backup.display(),
        target.display(),
        v.checked,
        v.head_position,
        v.head_hash
    ))
}
