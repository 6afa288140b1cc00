//! The command line: every subcommand opens the store with the same options, and every
//! failure is a readable sentence with a non-zero exit code.

use std::sync::Arc;

use anyhow::{bail, Context};
use tiaojie_events::metadata::Role;
use tiaojie_events::{GroupId, SystemClock};
use tiaojie_projections::log;
use tiaojie_projections::runtime::{self, RuntimeOptions};

use crate::app::App;
use crate::auth;
use crate::config::{
    AuditCommand, BenchCommand, Cli, Command, KeysCommand, PartiesCommand, ProjectionsCommand,
    RetentionCommand, Settings, TokenCommand,
};

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let serve_args = match &cli.command {
        Command::Serve(s) => Some(s.clone()),
        _ => None,
    };
    let mut settings = Settings::resolve(&cli.store, serve_args.as_ref())?;
    if matches!(cli.command, Command::Migrate) {
        // `tiaojie migrate` migrates whatever the setting says.
        settings.migrate_on_start = true;
    }
    let telemetry = crate::telemetry::init(settings.log_format, settings.otlp_endpoint.as_deref());
    let code = run_command(cli, settings).await;
    telemetry.shutdown();
    code
}

async fn run_command(cli: Cli, settings: Settings) -> anyhow::Result<i32> {
    if let Command::Keys(KeysCommand::Generate) = &cli.command {
        let (key, text) = tiaojie_projections::crypto::MasterKey::generate();
        println!("{text}");
        eprintln!("(master key {}: keep it in a file readable by the service only, and a copy apart from the backups)", key.id);
        return Ok(0);
    }
    if let Command::Restore { path } = &cli.command {
        // Restore works on files, with the service stopped: it must not open the store.
        println!("{}", crate::backup::restore(&settings, path).await?);
        return Ok(0);
    }
    let app = App::open(
        settings.clone(),
        Arc::new(SystemClock),
        RuntimeOptions::default(),
    )
    .await
    .context("could not open the store")?;
    match cli.command {
        Command::Migrate => {
            println!("The schema is up to date ({}).", app.db.backend().as_str());
        }
        Command::Serve(args) => {
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?;
            if args.demo {
                match crate::demo::load(&app, false).await {
                    Ok(r) => {
                        println!(
                            "Demo loaded: {} groups, {} cases, {} commands.",
                            r.groups, r.cases, r.commands
                        );
                        // The read models take the demo in before anyone is told to sign
                        // in, so that the first page shows its cases.
                        if let Err(e) = app.read.catch_up().await {
                            println!("The read models are still taking the demo in: {e}");
                        }
                        let dir = crate::files::data_dir(&settings.database_url);
                        let path = crate::demo::demo_accounts(&app, &dir).await?;
                        println!(
                            "Demo accounts (every group member, the leaders, a supervisor, an administrator) and the wall screen's kiosk key written to {}: sign in at /login with a login and password from it.",
                            path.display()
                        );
                        let path = crate::demo::sign_in_tokens(&app, &dir).await?;
                        println!(
                            "API tokens (leaders, members, supervisor, dashboard) written to {}.",
                            path.display()
                        );
                    }
                    Err(e) => println!("Demo not loaded: {e}"),
                }
            }
            if let Some(path) =
                crate::server::first_admin(&app, &crate::files::data_dir(&settings.database_url))
                    .await?
            {
                println!("First administrator's account written to {}: sign in at /login as `admin` with the one-time password in that file (shown once; delete the file after reading it).", path.display());
            }
            println!(
                "tiaojie {} listening on http://{} ({} store).",
                app.version,
                listener.local_addr()?,
                app.db.backend().as_str()
            );
            crate::server::serve(app, listener).await?;
        }
        Command::Demo(args) => {
            let r = crate::demo::load(&app, args.force).await?;
            let head = app
                .read
                .catch_up()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "Demo loaded: {} mediation groups, {} cases, {} commands; the log is at position {head} and every read model has caught up.",
                r.groups, r.cases, r.commands
            );
        }
        Command::Projections(ProjectionsCommand::Status) => {
            log::sequence_all(&app.db, 2000).await.ok();
            let (head, unsequenced, list) = runtime::status(&app.db, &app.read.projectors).await?;
            println!("log head: {head}   events not yet in the log: {unsequenced}");
            println!(
                "{:<16} {:>10} {:>8}  {:<28} state",
                "read model", "position", "lag", "updated"
            );
            let mut stuck = false;
            for p in list {
                let state = match (&p.last_error, p.failed_position) {
                    (Some(e), Some(at)) => {
                        stuck = true;
                        format!("STOPPED at position {at}: {e}")
                    }
                    (Some(e), None) => {
                        stuck = true;
                        format!("FAILING: {e}")
                    }
                    _ if p.lag == 0 => "up to date".to_string(),
                    _ => "catching up".to_string(),
                };
                println!(
                    "{:<16} {:>10} {:>8}  {:<28} {state}",
                    p.name, p.position, p.lag, p.updated_at
                );
            }
            if stuck {
                return Ok(2);
            }
        }
        Command::Projections(ProjectionsCommand::Rebuild { name }) => {
            log::sequence_all(&app.db, 2000).await?;
            let all = app.read.projectors.clone();
            let chosen: Vec<_> = match &name {
                Some(n) => {
                    let p = all.iter().find(|p| p.name() == n).cloned();
                    match p {
                        Some(p) => vec![p],
                        None => bail!(
                            "there is no read model named {n:?}; the read models are {}",
                            all.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
                        ),
                    }
                }
                None => all,
            };
            let chosen: Vec<&dyn runtime::Projector> = chosen.iter().map(|p| p.as_ref()).collect();
            let r = runtime::rebuild_many(&app.db, &chosen, 5000)
                .await
                .map_err(|e| anyhow::anyhow!("the rebuild failed: {e}"))?;
            println!(
                "{}: rebuilt from {} events up to position {} in {:.2} s ({:.0} events/s)",
                r.name, r.events, r.position, r.seconds, r.events_per_second
            );
        }
        Command::Audit(AuditCommand::Verify) => {
            log::sequence_all(&app.db, 2000).await.ok();
            let v = log::verify(&app.db).await?;
            if v.ok {
                println!(
                    "The audit chain verifies: {} events; head at position {} with hash {}.",
                    v.checked, v.head_position, v.head_hash
                );
                if v.not_yet_sequenced > 0 {
                    println!("({} events are not in the log yet.)", v.not_yet_sequenced);
                }
            } else {
                eprintln!(
                    "THE AUDIT CHAIN DOES NOT VERIFY. First bad position: {}. {}",
                    v.first_bad_position.unwrap_or(0),
                    v.problem.unwrap_or_default()
                );
                return Ok(3);
            }
        }
        Command::Account(cmd) => return crate::accounts_cli::run(&app, cmd).await,
        Command::Token(TokenCommand::Create {
            account: Some(login),
            days,
            name,
            ..
        }) => {
            let Some(account) = crate::accounts::by_login(&app, &login)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.title))?
            else {
                bail!("there is no account with the login {login:?} (see `tiaojie account list`)")
            };
            if let Some(d) = days {
                if !(1..=3650).contains(&d) {
                    bail!("--days must be between 1 and 3650 (got {d})");
                }
            }
            let now = app.now();
            let (info, secret) = auth::create_account_token(
                &app.db,
                &account,
                &name,
                days.map(|d| now.plus_days(d)),
                now,
            )
            .await?;
            println!(
                "Token {} of the account {} ({}). It is shown only this once:",
                info.id, account.login, info.name
            );
            println!("{secret}");
        }
        Command::Token(TokenCommand::Create {
            account: None,
            role,
            name,
            member_of,
            organisation,
            ..
        }) => {
            let role = match Role::parse(&role) {
                Some(Role::System) | None => bail!("give --account LOGIN, or a --role: one of member, leader, supervisor, dashboard, admin (got {role:?})"),
                Some(r) => r,
            };
            let group = match (&member_of, role) {
                (Some(g), Role::Member | Role::Leader) => {
                    let id = GroupId::parse(g).map_err(|_| {
                        anyhow::anyhow!(
                            "--member-of must be a mediation group id (a UUID), got {g:?}"
                        )
                    })?;
                    let state = app.directory.group_state(&id).await?;
                    let Some(state) = state else {
                        bail!("there is no mediation group {id}")
                    };
                    Some((id, state.name))
                }
                (None, Role::Member | Role::Leader) => {
                    bail!("a {} token needs --member-of GROUP", role.as_str())
                }
                (Some(_), _) => bail!("--member-of is only for member and leader tokens"),
                (None, _) => None,
            };
            let org = organisation
                .or_else(|| group.as_ref().map(|g| g.1.clone()))
                .unwrap_or_else(|| name.clone());
            let (info, secret) =
                auth::create_token(&app.db, &name, role, group.map(|g| g.0), &org, app.now())
                    .await?;
            println!(
                "Token {} for {} ({}). It is shown only this once:",
                info.id, info.name, info.role
            );
            println!("{secret}");
        }
        Command::Token(TokenCommand::List) => {
            println!(
                "{:<38} {:<10} {:<38} {:<24} name",
                "id", "role", "group", "revoked"
            );
            for t in auth::list_tokens(&app.db).await? {
                println!(
                    "{:<38} {:<10} {:<38} {:<24} {}",
                    t.id,
                    t.role,
                    t.group_id.unwrap_or_else(|| "-".into()),
                    t.revoked_at.unwrap_or_else(|| "-".into()),
                    t.name
                );
            }
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            if auth::revoke_token(&app.db, &id, app.now()).await? {
                println!("Token {id} is revoked.");
            } else {
                bail!("no active token has the id {id}");
            }
        }
        Command::Parties(PartiesCommand::Erase { id, reason }) => {
            let id = tiaojie_events::PartyId::parse(&id)
                .map_err(|_| anyhow::anyhow!("{id:?} is not a party id"))?;
            let actor = crate::auth::Actor::system("tiaojie parties erase");
            let meta = crate::commands::RequestMeta::new_request();
            match crate::parties::erase(&app, &actor, &meta, &id.to_string(), &reason).await {
                Ok(true) => {
                    println!("Party {id} is erased: its key is destroyed and its record cleared.")
                }
                Ok(false) => println!("Party {id} was erased already."),
                Err(e) => bail!("{} ({})", e.title, e.code),
            }
        }
        Command::Retention(RetentionCommand::Run) => {
            app.read
                .catch_up()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let r = crate::parties::retention(&app, settings.retention_years)
                .await
                .map_err(|e| anyhow::anyhow!("{} ({})", e.title, e.code))?;
            println!(
                "Retention ({} years, cases closed before {}): {} cases' free text and {} parties erased.",
                settings.retention_years, r.cutoff, r.cases_erased, r.parties_erased
            );
        }
        Command::Keys(KeysCommand::Rotate) => {
            let n = app
                .keys
                .rotate()
                .await
                .map_err(|e| anyhow::anyhow!("the rotation stopped: {e}"))?;
            println!(
                "Re-wrapped {n} data keys under master key {}.",
                app.keys.current_id()
            );
            for (id, count) in app
                .keys
                .master_usage()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                println!("  master key {id}: {count} live data keys");
            }
        }
        Command::Keys(KeysCommand::Generate) => {}
        Command::Backup { path } => {
            crate::backup::backup(&app.db, &path).await?;
            println!(
                "Backup written to {} (a consistent copy; restore it with `tiaojie restore`).",
                path.display()
            );
        }
        Command::Restore { .. } => {}
        Command::Bench(BenchCommand::Load(args)) => {
            crate::bench_load::load(&app, &args).await?;
        }
        Command::Bench(BenchCommand::Rebuild { events, no_fill }) => {
            crate::bench::rebuild(&app, events, no_fill).await?;
        }
        Command::Bench(BenchCommand::Parties { count, rounds }) => {
            tiaojie_devtools::bench_parties::parties(&app, count, rounds.max(1)).await?;
        }
    }

    Ok(0)
}
