//! The tiaojie binary's library: the CLI, the server, telemetry and backups, and the whole
//! service's router. It re-exports the other crates' modules under their old paths, so
//! that `tiaojie::app::App` and `tiaojie::http::router` read as they always did.
#![forbid(unsafe_code)]

pub mod accounts_cli;
pub mod backup;
pub mod cli;
pub mod server;
pub mod telemetry;

pub use tiaojie_app::{
    accounts, app, app_error, auth, commands, config, digest, documents, edge, files, health,
    idempotency, limits, masking, metrics, parties, party_checks, queries, sessions, steps,
    webhooks,
};
pub use tiaojie_devtools::{bench, bench_load, demo};
pub use tiaojie_http::{self as http, error};
pub use tiaojie_web as web;

/// The whole service's router: the JSON API and the web pages behind one edge.
pub fn router(app: app::App) -> axum::Router {
    http::router(app, web::routes())
}
