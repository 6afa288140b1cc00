//! `tiaojie backup` and `tiaojie restore` for the SQLite store. (PostgreSQL: `pg_dump` and
//! `pg_restore`, see deploy/README.md.)

use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tiaojie_projections::crypto::{Keyring, MasterKey};
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
    // Written under a temporary name and renamed when complete, so that a failure (a full
    // disk, say) never leaves a partial file that looks like a backup.
    let partial = PathBuf::from(format!("{}.partial-{}", path.display(), std::process::id()));
    let target = partial
        .to_str()
        .context("the backup path is not valid UTF-8")?;
    let written = sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(pool)
        .await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        let why = match tiaojie_projections::StoreError::from(e) {
            tiaojie_projections::StoreError::Storage {
                fault: tiaojie_projections::error::StorageFault::Full,
                ..
            } => format!("the disk of {} is full", path.display()),
            other => other.to_string(),
        };
        bail!("the backup failed ({why}); no backup file was written");
    }
    std::fs::rename(&partial, path).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        anyhow::anyhow!(
            "the backup could not be put in place at {}: {e}",
            path.display()
        )
    })?;
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

/// The master keys a restored store will be opened with: the configured ones, else the
/// `master.key` beside the store. None when there is neither.
fn restore_keys(
    settings: &crate::config::Settings,
    target: &Path,
) -> anyhow::Result<Option<(MasterKey, Vec<MasterKey>)>> {
    let previous = settings
        .previous_master_keys
        .iter()
        .map(|k| MasterKey::parse(k.expose_secret()))
        .collect::<Result<Vec<_>, _>>()
        .context("the previous master key is not valid")?;
    if let Some(k) = &settings.master_key {
        return Ok(Some((
            MasterKey::parse(k.expose_secret()).context("the master key is not valid")?,
            previous,
        )));
    }
    let beside = target
        .parent()
        .map(|p| p.join("master.key"))
        .unwrap_or_else(|| PathBuf::from("master.key"));
    match std::fs::read_to_string(&beside) {
        Ok(text) => Ok(Some((
            MasterKey::parse(&text)
                .with_context(|| format!("the master key in {} is not valid", beside.display()))?,
            previous,
        ))),
        Err(_) => Ok(None),
    }
}

/// Verifies a backup's audit chain and that the configured master key opens its personal
/// data, then moves it into place. Nothing is replaced unless both hold.
pub async fn restore(settings: &crate::config::Settings, backup: &Path) -> anyhow::Result<String> {
    let database_url = settings.database_url.as_str();
    let target = sqlite_path(database_url)?;
    let master = restore_keys(settings, &target)?;
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
        // Without any key, a stand-in that opens nothing: a backup that holds personal
        // data is then refused, one that holds none is fine.
        let (current, previous) = master
            .clone()
            .unwrap_or_else(|| (MasterKey::generate().0, vec![]));
        let keys = Keyring::new(db.clone(), current, previous)
            .check_master()
            .await;
        db.close().await;
        Ok::<_, anyhow::Error>((v, keys))
    }
    .await;
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", scratch.display()));
    }
    let (v, keys) = verified.context("the backup cannot be opened as a tiaojie store")?;
    if let Err(e) = keys {
        bail!(
            "the configured master key does not open the backup's personal data ({e}); give the key the backup was \
             written with (--master-key-file or TIAOJIE_MASTER_KEY, or its master.key beside the store); nothing was replaced"
        );
    }
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
