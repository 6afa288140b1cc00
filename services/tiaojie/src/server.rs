//! `tiaojie serve`: the HTTP API, the sequencer and the projectors in one process, with a
//! graceful shutdown on SIGTERM or Ctrl-C that finishes the requests in flight.

use std::path::{Path, PathBuf};

use tiaojie_events::metadata::Role;
use tokio::sync::watch;

use crate::app::App;
use crate::auth;

/// On an empty store (no account, no token), creates the first administrator's account,
/// `admin`, with a one-time password written to a file readable only by the operator.
/// Returns the file's path when it did.
pub async fn first_admin(app: &App, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if crate::accounts::count(app).await? > 0 || auth::count_tokens(&app.db).await? > 0 {
        return Ok(None);
    }
    let (account, password) = crate::accounts::create(
        app,
        crate::accounts::NewAccount {
            login: "admin".into(),
            display_name: "系统管理员".into(),
            organisation: String::new(),
            role: Role::Admin,
            kind: crate::accounts::Kind::Person,
            member: None,
            phone: None,
            password: None,
        },
        &auth::Actor::system("tiaojie serve"),
        "local",
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {}", e.title, e.detail_zh))?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("first-admin.txt");
    crate::files::write_private(
        &path,
        &format!(
            "# tiaojie: the first administrator. Sign in at /login with this login and one-time\n# password; you will be asked to choose your own. Then delete this file.\nlogin\t{}\npassword\t{password}\n",
            account.login
        ),
    )?;
    tracing::warn!(account = %account.id, file = %path.display(), "created the first administrator's account; its one-time password is in this file: sign in, change it, then delete the file");
    Ok(Some(path))
}

/// Serves until a shutdown signal.
pub async fn serve(app: App, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = app.read.spawn(stop_rx.clone());
    tasks.push(tokio::spawn(retention_loop(app.clone(), stop_rx.clone())));
    tasks.push(tokio::spawn(crate::webhooks::run(
        app.clone(),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(crate::digest::run(app.clone(), stop_rx)));
    let router = crate::router(app.clone());
    tracing::info!(address = %listener.local_addr()?, "listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("shutting down: requests finished, stopping the read side");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
    }
    app.db.close().await;
    Ok(())
}

/// The retention job: a minute after start, then daily.
async fn retention_loop(app: App, mut stop: watch::Receiver<bool>) {
    let mut wait = std::time::Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = crate::parties::retention(&app, app.settings.retention_years).await {
            tracing::warn!(code = %e.code, "the retention job failed; it runs again tomorrow");
        }
        wait = std::time::Duration::from_secs(24 * 3600);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
