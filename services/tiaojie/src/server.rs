//! `tiaojie serve`: the HTTP API, the sequencer and the projectors in one process, with a
//! graceful shutdown on SIGTERM or Ctrl-C that finishes the requests in flight.

use std::path::{Path, PathBuf};

use tiaojie_events::metadata::Role;
use tokio::sync::watch;

use crate::app::App;
use crate::auth;

/// Creates the first admin token on an empty database and writes it to a file readable
/// only by the operator. Returns the file's path when it did.
pub async fn first_admin_token(app: &App, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if auth::count_tokens(&app.db).await? > 0 {
        return Ok(None);
    }
    let (info, secret) = auth::create_token(
        &app.db,
        "first administrator",
        Role::Admin,
        None,
        "tiaojie",
        app.now(),
    )
    .await?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("admin-token.txt");
    crate::files::write_private(&path, &format!("{secret}\n"))?;
    tracing::warn!(token_id = %info.id, file = %path.display(), "created the first admin token; read it from this file, then delete the file");
    Ok(Some(path))
}

/// Serves until a shutdown signal.
pub async fn serve(app: App, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = app.read.spawn(stop_rx.clone());
    tasks.push(tokio::spawn(retention_loop(app.clone(), stop_rx)));
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
