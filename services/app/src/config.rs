//! Configuration, layered: built-in defaults, then an optional TOML file (`--config`,
//! `TIAOJIE_CONFIG`), then environment variables (`TIAOJIE_…`, `DATABASE_URL`), then flags.
//! Secrets are never printed: [`Settings`] redacts the database password in `Debug`.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use tiaojie_projections::models::ReplyDays;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

pub const DEFAULT_DATABASE_URL: &str = "sqlite:data/tiaojie.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Parser)]
#[command(
    name = "tiaojie",
    version,
    about = "tiaojie (调解): event-sourced records of dispute mediation in old-community renovation",
    long_about = "tiaojie (调解) records residents' objections, construction-obstruction incidents and mediation \
                  outcomes as immutable events, and serves case status, conflict heat and audit trails to \
                  mediation groups, supervision offices and dashboards.\n\n\
                  The store is an embedded SQLite file by default (./data/tiaojie.db); give a postgres:// URL \
                  for production."
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args, Default)]
pub struct StoreArgs {
    /// A TOML configuration file (keys as in deploy/tiaojie.example.toml).
    #[arg(long, global = true, env = "TIAOJIE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store: sqlite:PATH (the default: sqlite:data/tiaojie.db) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// A reference-data file of another programme (the Guyuan 2022 plan is built in).
    #[arg(long, global = true, env = "TIAOJIE_REFERENCE", value_name = "FILE")]
    pub reference: Option<PathBuf>,
    /// Largest number of database connections.
    #[arg(long, global = true, env = "TIAOJIE_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
    /// Log format.
    #[arg(long, global = true, env = "TIAOJIE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// A file holding the master key (32 bytes as base64 or hex) that wraps the data keys
    /// of personal data. Or give the key itself in TIAOJIE_MASTER_KEY. Without either, a
    /// SQLite store keeps one in master.key beside its file; PostgreSQL needs one.
    #[arg(
        long,
        global = true,
        env = "TIAOJIE_MASTER_KEY_FILE",
        value_name = "FILE"
    )]
    pub master_key_file: Option<PathBuf>,
    /// The master key used before a rotation, so that keys not yet re-wrapped still open.
    #[arg(
        long,
        global = true,
        env = "TIAOJIE_PREVIOUS_MASTER_KEY_FILE",
        value_name = "FILE"
    )]
    pub previous_master_key_file: Option<PathBuf>,
    /// Migrate on start (true), or only check the schema (false: for a role that may not migrate).
    #[arg(
        long,
        global = true,
        env = "TIAOJIE_MIGRATE_ON_START",
        value_name = "BOOL"
    )]
    pub migrate_on_start: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the service: HTTP API, sequencer and projectors. Migrates first.
    Serve(ServeArgs),
    /// Creates or updates the database schema, then exits.
    Migrate,
    /// Loads a realistic scenario through the same command path a user would use.
    Demo(DemoArgs),
    /// Read models: status and rebuild.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Accounts: the people who sign in.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The party registry.
    #[command(subcommand)]
    Parties(PartiesCommand),
    /// Erases the free text and party data of cases closed longer than the retention period.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Master keys: generate one, or re-wrap every data key under the current one.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Writes a consistent copy of the SQLite store while it is serving.
    Backup {
        /// Where to write the copy (must not exist).
        path: PathBuf,
    },
    /// Puts a SQLite backup in place of the store (stop the service first). The copy's audit
    /// chain is verified before anything is replaced; the replaced file is kept beside it.
    Restore {
        /// The backup file.
        path: PathBuf,
    },
    /// Benchmarks of the store (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum PartiesCommand {
    /// Destroys a party's key and record; cases keep its id, shown as erased.
    Erase {
        id: String,
        /// Why (kept in the access log).
        #[arg(long, default_value = "erasure request")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Runs the retention job now (the service runs it daily).
    Run,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Prints a new random master key (base64) for a key file.
    Generate,
    /// Re-wraps every data key under the current master key (give the old one with
    /// --previous-master-key-file). Safe while the service runs.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Creates an account and prints its one-time password (changed at the first sign-in).
    Create {
        /// The sign-in name: 3-32 lower-case letters, digits, dots, dashes or underscores.
        #[arg(long)]
        login: String,
        /// The person's name as shown, e.g. 王建国.
        #[arg(long)]
        name: String,
        /// member, leader, supervisor, dashboard or admin.
        #[arg(long)]
        role: String,
        /// A member's or leader's mediation group (its id, or its name).
        #[arg(long)]
        group: Option<String>,
        /// The organisation (default: the member's, or empty).
        #[arg(long)]
        organisation: Option<String>,
        /// A new member's organisation type when the person is not on the group's roster
        /// yet: street_office, judicial, police, residents_committee, property_company,
        /// enterprise.
        #[arg(long, default_value = "residents_committee")]
        org_role: String,
    },
    /// Gives an account a new one-time password, unlocks it and ends its sessions.
    Reset { login: String },
    /// Disables an account: its sessions end and its tokens are revoked.
    Disable { login: String },
    /// Enables a disabled account.
    Enable { login: String },
    /// Lifts a lock after failed sign-ins.
    Unlock { login: String },
    /// Lists accounts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Creates a token and prints it once; only its hash is stored. With --account it
    /// belongs to that account and acts as it does; without, it is a token of the old kind,
    /// with a fixed role.
    Create {
        /// The account the token belongs to (its login).
        #[arg(long)]
        account: Option<String>,
        /// Days until it expires (account tokens; default: never).
        #[arg(long)]
        days: Option<i64>,
        /// member, leader, supervisor, dashboard or admin (tokens without an account).
        #[arg(long, default_value = "")]
        role: String,
        /// Who holds it, e.g. "南关街道 王建国" (or, for an account, what it is for).
        #[arg(long)]
        name: String,
        /// The mediation group (id) of a member or leader.
        #[arg(long, value_name = "GROUP")]
        member_of: Option<String>,
        /// The organisation recorded with every event (default: the group's name, or the name).
        #[arg(long)]
        organisation: Option<String>,
    },
    /// Lists tokens (never their secrets).
    List,
    /// Revokes a token by id.
    Revoke { id: String },
}

#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TIAOJIE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Load the demo scenario first when the store is empty.
    #[arg(long, env = "TIAOJIE_DEMO")]
    pub demo: bool,
}

#[derive(Debug, Clone, Args, Default)]
pub struct DemoArgs {
    /// Load the demo even if the store already holds cases.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Prints each read model's position, the log head and the lag.
    Status,
    /// Rebuilds a read model (or all) from position 0 into new tables and swaps them in.
    Rebuild {
        /// case_status, community_heat, audit_trail or daily_stats; all when left out.
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recomputes every hash from the stored events and checks both chains.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Drives a realistic mix of commands and queries over HTTP from concurrent clients,
    /// beside the database's own single-row insert limit (see BENCHMARKS.md).
    Load(LoadArgs),
    /// Fills the store with a generated history and measures rebuild speed.
    Rebuild {
        /// Events to generate (about; whole cases are generated).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Skip generation and only rebuild what is stored.
        #[arg(long)]
        no_fill: bool,
    },
    /// Fills the party registry of one community and measures its search by name prefix,
    /// phone and ID number (best on an empty store).
    Parties {
        /// Parties to register.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Searches of each kind.
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds of load per measurement.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Events already stored before each measurement, comma-separated (the store is filled
    /// up to each in turn). The store must start empty.
    #[arg(long, default_value = "10000")]
    pub history: String,
    /// Share of commands among requests, in percent.
    #[arg(long, default_value_t = 70)]
    pub write_percent: u32,
    /// Write the JSON report here as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Skip the database's raw insert limit.
    #[arg(long)]
    pub no_raw: bool,
}

/// The file layer; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub reference: Option<PathBuf>,
    pub db_max_connections: Option<u32>,
    pub log_format: Option<LogFormat>,
    pub listen: Option<SocketAddr>,
    pub acceptance_days: Option<i64>,
    pub mediation_days: Option<i64>,
    pub follow_up_days: Option<i64>,
    pub repeat_obstructor_incidents: Option<i64>,
    /// The judicial confirmation clock, in days after the agreement (at most the legal 30).
    pub confirmation_window_days: Option<i64>,
    /// Days each receiving level has to reply (`[reply_days]`: leadership_group,
    /// judicial_office, police, petition, court); keys left out keep their defaults.
    pub reply_days: Option<ReplyDays>,
    /// Largest attachment, in bytes (default 10 MiB).
    pub attachment_max_bytes: Option<usize>,
    /// Most attachments a case holds (default 100).
    pub attachments_per_case: Option<usize>,
    /// Keep a photo's EXIF block (with the place it was taken) as uploaded.
    pub attachments_keep_location: Option<bool>,
    pub heat_half_life_days: Option<f64>,
    pub utc_offset_hours: Option<i8>,
    pub body_limit_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub max_in_flight: Option<usize>,
    pub consistency_wait_ms: Option<u64>,
    pub migrate_on_start: Option<bool>,
    /// An OTLP endpoint for traces (base URL); OTEL_EXPORTER_OTLP_ENDPOINT wins.
    pub otlp_endpoint: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub previous_master_key_file: Option<PathBuf>,
    pub retention_years: Option<u32>,
    /// No business time may lie before this day (YYYY-MM-DD); by default the reference
    /// data's programme start, else 2000-01-01.
    pub earliest_business_date: Option<String>,
    /// Behind a reverse proxy: take the client's address from X-Forwarded-For.
    pub trust_forwarded_for: Option<bool>,
    /// Supervisors and administrators must turn on a second factor (TOTP) before they
    /// can work; TIAOJIE_REQUIRE_SECOND_FACTOR=1 wins.
    pub require_second_factor: Option<bool>,
    /// How case numbers read: `{group}` (the group's short name), `{year}`, `{n}`.
    pub case_number_format: Option<String>,
    /// Webhooks for other platforms (`[[webhooks]]`: name, url, secret, events).
    pub webhooks: Option<Vec<crate::webhooks::Endpoint>>,
    /// The daily digest by e-mail (`[digest]`: smtp, from, hour, public_url, `[[digest.to]]`).
    pub digest: Option<crate::digest::DigestConfig>,
}

/// Resolved settings.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub reference: Option<PathBuf>,
    pub db_max_connections: u32,
    pub log_format: LogFormat,
    pub listen: SocketAddr,
    pub acceptance_days: i64,
    pub mediation_days: i64,
    pub follow_up_days: i64,
    /// A party with this many obstruction incidents or more is flagged as a repeat
    /// obstructor (default 2).
    pub repeat_obstructor_incidents: i64,
    /// The judicial confirmation clock: days after the agreement (default and most: 30).
    pub confirmation_window_days: i64,
    /// Days each receiving level has to reply to an escalation or a next route.
    pub reply_days: ReplyDays,
    /// Largest attachment, in bytes.
    pub attachment_max_bytes: usize,
    /// Most attachments a case holds.
    pub attachments_per_case: usize,
    /// Keep a photo's EXIF block (with the place it was taken) as uploaded.
    pub attachments_keep_location: bool,
    pub heat_half_life_days: f64,
    pub utc_offset_hours: i8,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub max_in_flight: usize,
    /// The longest a query waits for the read models to include a client's write.
    pub consistency_wait_ms: u64,
    /// Migrate when opening the store; turn off when the service's database role may not
    /// (it then only checks that the schema is current).
    pub migrate_on_start: bool,
    pub otlp_endpoint: Option<String>,
    /// The master key's text: never printed, wiped from memory when dropped (`secrecy`).
    pub master_key: Option<SecretString>,
    pub previous_master_keys: Vec<SecretString>,
    /// Free text and party data of cases closed longer than this are erased.
    pub retention_years: u32,
    /// No business time may lie before this day (YYYY-MM-DD); None: the reference data's
    /// programme start, else 2000-01-01.
    pub earliest_business_date: Option<String>,
    /// Take the client's address (for the failed-sign-in limit) from X-Forwarded-For; only
    /// behind a reverse proxy that sets it.
    pub trust_forwarded_for: bool,
    /// Supervisors and administrators must turn on a second factor before they can work.
    pub require_totp_for_oversight: bool,
    /// How case numbers read (default `{group}调〔{year}〕{n}号`).
    pub case_number_format: String,
    /// Where notifications are posted (none by default).
    pub webhooks: Vec<crate::webhooks::Endpoint>,
    /// The daily digest by e-mail (off by default).
    pub digest: Option<crate::digest::DigestConfig>,
    /// Tests only, set in code: data keys and nonces from a seeded generator.
    #[doc(hidden)]
    pub test_key_seed: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            reference: None,
            db_max_connections: 16,
            log_format: LogFormat::Human,
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            acceptance_days: 2,
            mediation_days: 30,
            follow_up_days: 15,
            repeat_obstructor_incidents: 2,
            confirmation_window_days: 30,
            reply_days: ReplyDays::default(),
            attachment_max_bytes: 10 * 1024 * 1024,
            attachments_per_case: 100,
            attachments_keep_location: false,
            heat_half_life_days: 14.0,
            utc_offset_hours: 8,
            body_limit_bytes: 64 * 1024,
            request_timeout_secs: 30,
            max_in_flight: 512,
            consistency_wait_ms: 5000,
            migrate_on_start: true,
            otlp_endpoint: None,
            master_key: None,
            previous_master_keys: vec![],
            retention_years: 3,
            earliest_business_date: None,
            trust_forwarded_for: false,
            require_totp_for_oversight: false,
            case_number_format: crate::numbering::DEFAULT_FORMAT.into(),
            webhooks: vec![],
            digest: None,
            test_key_seed: None,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact(&self.database_url))
            .field("reference", &self.reference)
            .field("listen", &self.listen)
            .field("acceptance_days", &self.acceptance_days)
            .field("mediation_days", &self.mediation_days)
            .field("follow_up_days", &self.follow_up_days)
            .field("heat_half_life_days", &self.heat_half_life_days)
            .finish_non_exhaustive()
    }
}

/// A database URL with its password replaced, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot read the master key file {0}: {1}")]
    KeyFile(PathBuf, std::io::Error),
    #[error("the configuration file {0} is not valid: {1}")]
    Parse(PathBuf, String),
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Settings {
    /// Layers defaults, the file, then environment and flags (already merged by clap).
    pub fn resolve(store: &StoreArgs, serve: Option<&ServeArgs>) -> Result<Self, ConfigError> {
        let file = match &store.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.clone(), e))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::Parse(path.clone(), e.to_string()))?
            }
            None => FileConfig::default(),
        };
        let d = Settings::default();
        let s = Settings {
            database_url: store
                .database_url
                .clone()
                .or(file.database_url)
                .unwrap_or(d.database_url),
            reference: store.reference.clone().or(file.reference),
            db_max_connections: store
                .db_max_connections
                .or(file.db_max_connections)
                .unwrap_or(d.db_max_connections),
            log_format: store.log_format.or(file.log_format).unwrap_or(d.log_format),
            listen: serve
                .and_then(|s| s.listen)
                .or(file.listen)
                .unwrap_or(d.listen),
            acceptance_days: file.acceptance_days.unwrap_or(d.acceptance_days),
            mediation_days: file.mediation_days.unwrap_or(d.mediation_days),
            follow_up_days: file.follow_up_days.unwrap_or(d.follow_up_days),
            repeat_obstructor_incidents: file
                .repeat_obstructor_incidents
                .unwrap_or(d.repeat_obstructor_incidents),
            confirmation_window_days: file
                .confirmation_window_days
                .unwrap_or(d.confirmation_window_days),
            reply_days: file.reply_days.unwrap_or(d.reply_days),
            attachment_max_bytes: file.attachment_max_bytes.unwrap_or(d.attachment_max_bytes),
            attachments_per_case: file.attachments_per_case.unwrap_or(d.attachments_per_case),
            attachments_keep_location: file
                .attachments_keep_location
                .unwrap_or(d.attachments_keep_location),
            heat_half_life_days: file.heat_half_life_days.unwrap_or(d.heat_half_life_days),
            utc_offset_hours: file.utc_offset_hours.unwrap_or(d.utc_offset_hours),
            body_limit_bytes: file.body_limit_bytes.unwrap_or(d.body_limit_bytes),
            request_timeout_secs: file.request_timeout_secs.unwrap_or(d.request_timeout_secs),
            max_in_flight: file.max_in_flight.unwrap_or(d.max_in_flight),
            consistency_wait_ms: file.consistency_wait_ms.unwrap_or(d.consistency_wait_ms),
            migrate_on_start: store
                .migrate_on_start
                .or(file.migrate_on_start)
                .unwrap_or(d.migrate_on_start),
            otlp_endpoint: file.otlp_endpoint,
            master_key: match std::env::var("TIAOJIE_MASTER_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty())
            {
                Some(k) => Some(k.into()),
                None => match store.master_key_file.clone().or(file.master_key_file) {
                    Some(p) => Some(
                        std::fs::read_to_string(&p)
                            .map_err(|e| ConfigError::KeyFile(p.clone(), e))?
                            .into(),
                    ),
                    None => None,
                },
            },
            previous_master_keys: match store
                .previous_master_key_file
                .clone()
                .or(file.previous_master_key_file)
            {
                Some(p) => {
                    vec![std::fs::read_to_string(&p)
                        .map_err(|e| ConfigError::KeyFile(p.clone(), e))?
                        .into()]
                }
                None => std::env::var("TIAOJIE_PREVIOUS_MASTER_KEY")
                    .ok()
                    .filter(|k| !k.trim().is_empty())
                    .into_iter()
                    .map(SecretString::from)
                    .collect(),
            },
            retention_years: file.retention_years.unwrap_or(d.retention_years),
            earliest_business_date: file.earliest_business_date,
            trust_forwarded_for: file.trust_forwarded_for.unwrap_or(d.trust_forwarded_for),
            require_totp_for_oversight: std::env::var("TIAOJIE_REQUIRE_SECOND_FACTOR")
                .ok()
                .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
                .or(file.require_second_factor)
                .unwrap_or(d.require_totp_for_oversight),
            case_number_format: match file.case_number_format {
                Some(f) if f.contains("{n}") && f.contains("{year}") => f,
                Some(f) => {
                    return Err(ConfigError::Invalid(format!(
                        "case_number_format must contain {{year}} and {{n}} (got {f:?})"
                    )))
                }
                None => d.case_number_format,
            },
            webhooks: file.webhooks.unwrap_or(d.webhooks),
            digest: file.digest.or(d.digest),
            test_key_seed: None,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        crate::webhooks::validate(&self.webhooks).map_err(ConfigError::Invalid)?;
        if let Some(d) = &self.digest {
            crate::digest::validate(d).map_err(ConfigError::Invalid)?;
        }
        if !(1..=30).contains(&self.acceptance_days) {
            return bad("acceptance_days must be between 1 and 30");
        }
        if !(1..=365).contains(&self.mediation_days) {
            return bad("mediation_days must be between 1 and 365");
        }
        if !(1..=100).contains(&self.repeat_obstructor_incidents) {
            return bad("repeat_obstructor_incidents must be between 1 and 100");
        }
        if !(1..=365).contains(&self.follow_up_days) {
            return bad("follow_up_days must be between 1 and 365");
        }
        if !(1024..=200 * 1024 * 1024).contains(&self.attachment_max_bytes) {
            return bad("attachment_max_bytes must be between 1024 and 200 MiB");
        }
        if !(1..=10_000).contains(&self.attachments_per_case) {
            return bad("attachments_per_case must be between 1 and 10000");
        }
        if !(1..=30).contains(&self.confirmation_window_days) {
            return bad("confirmation_window_days must be between 1 and 30 (the legal window)");
        }
        let r = &self.reply_days;
        for (name, days) in [
            ("leadership_group", r.leadership_group),
            ("judicial_office", r.judicial_office),
            ("police", r.police),
            ("petition", r.petition),
            ("court", r.court),
        ] {
            if !(1..=365).contains(&days) {
                return Err(ConfigError::Invalid(format!(
                    "reply_days.{name} must be between 1 and 365"
                )));
            }
        }
        if !(self.heat_half_life_days > 0.0 && self.heat_half_life_days <= 3650.0) {
            return bad("heat_half_life_days must be above 0 and at most 3650");
        }
        if !(-12..=14).contains(&self.utc_offset_hours) {
            return bad("utc_offset_hours must be between -12 and 14");
        }
        if let Some(d) = &self.earliest_business_date {
            if earliest_date(d).is_none() {
                return bad("earliest_business_date must be a date like 2021-01-01");
            }
        }
        if self.body_limit_bytes < 1024 {
            return bad("body_limit_bytes must be at least 1024");
        }
        Ok(())
    }
}

/// Midnight UTC of a `YYYY-MM-DD` day.
pub fn earliest_date(s: &str) -> Option<tiaojie_events::Timestamp> {
    let d = time::Date::parse(
        s.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    (d.year() >= 1).then(|| tiaojie_events::Timestamp::start_of_day_utc(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted() {
        assert_eq!(
            redact("postgres://tj:secret@db/tiaojie"),
            "postgres://tj:***@db/tiaojie"
        );
        assert_eq!(
            redact("postgres://tj@db/tiaojie"),
            "postgres://tj@db/tiaojie"
        );
        assert_eq!(redact("sqlite:data/x.db"), "sqlite:data/x.db");
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("tj-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "database_url = \"sqlite:from-file.db\"\nmediation_days = 20\n",
        )
        .unwrap();
        let args = StoreArgs {
            config: Some(path.clone()),
            ..StoreArgs::default()
        };
        let s = Settings::resolve(&args, None).unwrap();
        assert_eq!(s.database_url, "sqlite:from-file.db");
        assert_eq!(s.mediation_days, 20);
        let args = StoreArgs {
            config: Some(path.clone()),
            database_url: Some("sqlite:flag.db".into()),
            ..StoreArgs::default()
        };
        assert_eq!(
            Settings::resolve(&args, None).unwrap().database_url,
            "sqlite:flag.db"
        );
        std::fs::write(&path, "mediation_days = 0\n").unwrap();
        assert!(Settings::resolve(
            &StoreArgs {
                config: Some(path.clone()),
                ..StoreArgs::default()
            },
            None
        )
        .is_err());
        std::fs::write(&path, "no_such_key = 1\n").unwrap();
        let err = Settings::resolve(
            &StoreArgs {
                config: Some(path),
                ..StoreArgs::default()
            },
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
    }
}
