//! The application: everything a request or a CLI command needs, built once.

use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::sync::Arc;

use tiaojie_events::{CaseServices, Clock, Reference, SystemClock, TimeBounds};
use tiaojie_projections::crypto::{Keyring, MasterKey};
use tiaojie_projections::directory::StoreDirectory;
use tiaojie_projections::models::{self, ReadModelConfig};
use tiaojie_projections::runtime::{ReadSide, RuntimeOptions};
use tiaojie_projections::store::EventStores;
use tiaojie_projections::{Db, DbOptions, StoreError};

use crate::auth::TokenCache;
use crate::config::{redact, Settings};

/// The service: its settings, store, read side and caches. Every request and every
/// middleware layer clones it, so a clone is one reference count: copying the parts one by
/// one (about forty reference counts and a vector) cost 4 % of the server's CPU while
/// opening cases, measured.
#[derive(Clone)]
pub struct App(Arc<AppParts>);

impl std::ops::Deref for App {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl App {
    /// The same service with other settings (tests and tools that vary one setting).
    pub fn with_settings(&self, settings: Settings) -> App {
        let mut parts = (*self.0).clone();
        parts.settings = Arc::new(settings);
        App(Arc::new(parts))
    }
}

/// What [`App`] holds.
#[derive(Clone)]
pub struct AppParts {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub reference: Arc<Reference>,
    pub clock: Arc<dyn Clock>,
    pub stores: EventStores,
    pub directory: StoreDirectory,
    pub read: ReadSide,
    pub read_config: ReadModelConfig,
    pub tokens: TokenCache,
    pub keys: Arc<Keyring>,
    pub limits: Arc<crate::limits::Limits>,
    pub health: Arc<crate::health::StoreHealth>,
    /// This app's metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Case numbers already read: a number never changes once the log has given it.
    pub case_numbers: crate::numbering::NumberCache,
    /// The heat read model's inputs while its checkpoint stands still.
    pub heat: Arc<models::heat::HeatCache>,
    pub version: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Reference(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Key(String),
}

/// The master key: configured, or for a SQLite store kept in `master.key` beside it
/// (created, readable by the owner only, on first use).
pub fn master_key(settings: &Settings) -> Result<(MasterKey, Vec<MasterKey>), AppError> {
    let parse = |t: &str, what: &str| {
        MasterKey::parse(t).map_err(|e| AppError::Key(format!("the {what} is not valid: {e}")))
    };
    let previous = settings
        .previous_master_keys
        .iter()
        .map(|k| parse(k.expose_secret(), "previous master key"))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(k) = &settings.master_key {
        return Ok((parse(k.expose_secret(), "master key")?, previous));
    }
    if !settings.database_url.starts_with("sqlite:") {
        return Err(AppError::Key(
            "a PostgreSQL store needs a master key for personal data: set TIAOJIE_MASTER_KEY or --master-key-file \
             (generate one with `head -c 32 /dev/urandom | base64`)"
                .into(),
        ));
    }
    let dir = crate::files::data_dir(&settings.database_url);
    let path = dir.join("master.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok((parse(&text, "master key in master.key")?, previous));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| AppError::Key(format!("cannot create {}: {e}", dir.display())))?;
    let (key, text) = MasterKey::generate();
    crate::files::write_private(&path, &format!("{text}\n"))
        .map_err(|e| AppError::Key(format!("cannot write {}: {e}", path.display())))?;
    tracing::warn!(file = %path.display(), "created a master key for personal data; keep a copy of it with the backups, apart from the database");
    Ok((key, previous))
}

/// The window business times must fall in: the configured earliest day, else the
/// programme's start, else 2000-01-01.
pub fn time_bounds(settings: &Settings, reference: &Reference) -> TimeBounds {
    let mut b = TimeBounds::default();
    if let Some(t) = settings
        .earliest_business_date
        .as_deref()
        .and_then(crate::config::earliest_date)
        .or_else(|| reference.starts_at())
    {
        b.earliest = t;
    }
    b
}

/// The sentence for a master key that does not open the store's data keys.
pub fn key_mismatch(e: &tiaojie_projections::crypto::KeyError) -> String {
    format!(
        "the master key does not open this store's personal data ({e}). This happens after a \
         restore or a move with another key file. Give the key the store was written with \
         (--master-key-file or TIAOJIE_MASTER_KEY), and during a key rotation the previous one \
         too (--previous-master-key-file); nothing was changed"
    )
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Loads the reference data: the embedded Guyuan plan, or a file.
pub fn load_reference(path: Option<&PathBuf>) -> Result<Reference, AppError> {
    match path {
        None => Ok(Reference::guyuan_2022()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                AppError::Reference(format!(
                    "cannot read the reference file {}: {e}",
                    p.display()
                ))
            })?;
            Reference::from_toml(&text).map_err(|e| {
                AppError::Reference(format!(
                    "the reference file {} is not valid: {e}",
                    p.display()
                ))
            })
        }
    }
}

impl App {
    /// Connects, migrates and wires the services. Starts nothing in the background.
    pub async fn open(
        settings: Settings,
        clock: Arc<dyn Clock>,
        runtime: RuntimeOptions,
    ) -> Result<App, AppError> {
        let reference = Arc::new(load_reference(settings.reference.as_ref())?);
        let options = DbOptions {
            max_connections: settings.db_max_connections,
            ..DbOptions::default()
        };
        tracing::info!(database = %redact(&settings.database_url), "opening the store");
        let db = Db::connect(&settings.database_url, &options).await?;
        let mut read_config = ReadModelConfig::new(reference.clone());
        read_config.acceptance_days = settings.acceptance_days;
        read_config.mediation_days = settings.mediation_days;
        read_config.heat_half_life_days = settings.heat_half_life_days;
        read_config.utc_offset_hours = settings.utc_offset_hours;
        read_config.repeat_obstructor_incidents = settings.repeat_obstructor_incidents;
        read_config.confirmation_window_days = settings.confirmation_window_days;
        read_config.reply_days = settings.reply_days;
        let projectors = models::all(&read_config);
        if settings.migrate_on_start {
            tiaojie_projections::migrate(&db, &projectors).await?;
        } else {
            tiaojie_projections::verify_schema(&db).await?;
        }
        let (master, previous) = master_key(&settings)?;
        let keys = Arc::new(match settings.test_key_seed {
            Some(seed) => Keyring::seeded(db.clone(), master, seed),
            None => Keyring::new(db.clone(), master, previous),
        });
        keys.check_master().await.map_err(|e| match e {
            tiaojie_projections::crypto::KeyError::Store(s) => AppError::Store(s),
            other => AppError::Key(key_mismatch(&other)),
        })?;
        let directory = StoreDirectory::new(db.clone());
        let services = CaseServices {
            clock: clock.clone(),
            reference: reference.clone(),
            directory: Arc::new(directory.clone()),
            bounds: time_bounds(&settings, &reference),
        };
        let stores = EventStores::new(&db, services, keys.clone());
        let read = ReadSide::new(db.clone(), projectors, stores.committed.clone(), runtime);
        let health = Arc::new(crate::health::StoreHealth::new(db.clone()));
        let app = App(Arc::new(AppParts {
            settings: Arc::new(settings),
            tokens: TokenCache::new(db.clone(), directory.clone()),
            keys,
            db,
            reference,
            clock,
            stores,
            directory,
            read,
            read_config,
            limits: Arc::default(),
            health,
            metrics: Arc::default(),
            case_numbers: crate::numbering::NumberCache::default(),
            heat: Arc::default(),
            version: VERSION,
        }));
        let tied = app.tokens.tie_old_tokens().await?;
        if tied > 0 {
            tracing::info!(
                tokens = tied,
                "member tokens from before accounts are tied to the group members they name"
            );
        }
        let indexed = crate::parties::index_unindexed(&app)
            .await
            .map_err(|e| AppError::Key(format!("indexing the party registry: {}", e.title)))?;
        if indexed > 0 {
            tracing::info!(
                parties = indexed,
                "parties registered before search by name prefix and ID number are indexed"
            );
        }
        Ok(app)
    }

    pub async fn open_default(settings: Settings) -> Result<App, AppError> {
        Self::open(settings, Arc::new(SystemClock), RuntimeOptions::default()).await
    }

    pub fn now(&self) -> tiaojie_events::Timestamp {
        self.clock.now()
    }

    /// The programme's local offset from UTC (`utc_offset_hours`, Beijing time by default).
    pub fn offset(&self) -> time::UtcOffset {
        time::UtcOffset::from_hms(self.settings.utc_offset_hours, 0, 0)
            .unwrap_or(time::UtcOffset::UTC)
    }

    /// Today's local date.
    pub fn today(&self) -> time::Date {
        self.now().date_in(self.offset())
    }
}
