//! The tiaojie service: configuration, telemetry, auth, command and query services, the
//! HTTP API, the CLI and the demo. `main.rs` is thin; tests build the same [`app::App`].
#![forbid(unsafe_code)]

pub mod app;
pub mod app_error;
pub mod auth;
pub mod backup;
pub mod bench;
pub mod bench_load;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod edge;
pub mod error;
pub mod files;
pub mod health;
pub mod http;
pub mod limits;
pub mod masking;
pub mod metrics;
pub mod parties;
pub mod queries;
pub mod server;
pub mod steps;
pub mod telemetry;
pub mod web;

/// The whole service's router: the JSON API and the web pages behind one edge.
pub fn router(app: app::App) -> axum::Router {
    http::router(app, web::routes())
}
