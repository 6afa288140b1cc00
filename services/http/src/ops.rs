//! Health, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tiaojie_projections::runtime::{status, ProjectionStatus};
use utoipa::ToSchema;

use crate::app::App;
use crate::error::Problem;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz(State(app): State<App>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: app.version.into(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// The node can take traffic: the store answers and the log moves.
    pub ready: bool,
    /// Some read model has stopped at an event it cannot apply (see `stuck`): writes and
    /// the other read models go on, but that model's pages are no longer current.
    pub degraded: bool,
    pub stuck: Vec<StuckProjection>,
    pub store: String,
    /// Whether this node can write now: a row written and committed by the check itself
    /// (full and read-only disks show here while reads still work).
    pub writable: bool,
    pub write_error: Option<String>,
    pub backend: String,
    pub log_head: Option<i64>,
    pub unsequenced_events: Option<i64>,
    pub sequencer_error: Option<String>,
    pub projections: Vec<ProjectionStatus>,
}

/// A read model stopped at an event, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct StuckProjection {
    pub name: String,
    /// Its checkpoint: everything up to here is applied.
    pub position: i64,
    /// The log position of the event it cannot apply.
    pub failed_position: Option<i64>,
    pub reason: String,
}

/// Readiness: the store answers, this node can write, and the log moves (503 otherwise). A read model stopped at
/// an event it cannot apply does not make the node unready, since taking every instance
/// out of service would stop the write side too; it is reported as `degraded`, with the
/// position and the reason.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(app): State<App>) -> Response {
    let ping = tokio::time::timeout(Duration::from_secs(2), app.db.ping()).await;
    let store_ok = matches!(ping, Ok(Ok(())));
    let report = app.read.health.report();
    let mut r = Readiness {
        ready: false,
        degraded: false,
        stuck: vec![],
        writable: false,
        write_error: None,
        store: if store_ok {
            "ok".into()
        } else {
            "unreachable".into()
        },
        backend: app.db.backend().as_str().into(),
        log_head: None,
        unsequenced_events: None,
        sequencer_error: report.sequencer_error.clone(),
        projections: vec![],
    };
    if store_ok {
        app.health.reachable();
        match tokio::time::timeout(
            Duration::from_secs(2),
            app.health.write_probe(&app.db, &app.now().to_canonical()),
        )
        .await
        {
            Ok(Ok(())) => r.writable = true,
            Ok(Err(e)) => r.write_error = Some(e),
            Err(_) => r.write_error = Some("the write probe took longer than 2 s".into()),
        }
        if let Ok(Ok((head, unsequenced, projections))) = tokio::time::timeout(
            Duration::from_secs(2),
            status(&app.db, &app.read.projectors),
        )
        .await
        {
            r.log_head = Some(head);
            r.unsequenced_events = Some(unsequenced);
            r.projections = projections;
        }
    }
    // A read model is stuck when the store records it so, or this instance saw it fail.
    for p in &r.projections {
        if let Some(reason) = &p.last_error {
            r.stuck.push(StuckProjection {
                name: p.name.clone(),
                position: p.position,
                failed_position: p.failed_position,
                reason: reason.clone(),
            });
        }
    }
    for p in &report.projectors {
        if let (Some(e), false) = (&p.error, r.stuck.iter().any(|s| s.name == p.name)) {
            r.stuck.push(StuckProjection {
                name: p.name.clone(),
                position: p.position,
                failed_position: None,
                reason: e.clone(),
            });
        }
    }
    r.degraded = !r.stuck.is_empty();
    r.ready = store_ok && r.writable && r.sequencer_error.is_none() && r.log_head.is_some();
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(app): State<App>) -> Response {
    let mut extra: Vec<(String, String, f64)> = Vec::new();
    let (size, idle) = app.db.pool_stats();
    extra.push((
        "tiaojie_db_pool_connections".into(),
        "Open database connections.".into(),
        f64::from(size),
    ));
    extra.push((
        "tiaojie_db_pool_idle".into(),
        "Idle database connections.".into(),
        idle as f64,
    ));
    extra.push((
        "tiaojie_events_sequenced_total".into(),
        "Events this instance copied into the global log.".into(),
        tiaojie_projections::metrics::SEQUENCED.load(std::sync::atomic::Ordering::Relaxed) as f64,
    ));
    extra.push((
        "tiaojie_projection_cycles_total".into(),
        "Read-side cycles (sequencing and projecting in one transaction) that committed work."
            .into(),
        tiaojie_projections::metrics::CYCLES.load(std::sync::atomic::Ordering::Relaxed) as f64,
    ));
    extra.push((
        "tiaojie_projection_cycle_seconds_total".into(),
        "Time those cycles took.".into(),
        tiaojie_projections::metrics::CYCLE_MICROS.load(std::sync::atomic::Ordering::Relaxed)
            as f64
            / 1e6,
    ));
    extra.push((
        "tiaojie_events_appended_total".into(),
        "Events this instance appended.".into(),
        app.metrics.appended() as f64,
    ));
    if let Ok(Ok((head, unsequenced, projections))) = tokio::time::timeout(
        Duration::from_secs(2),
        status(&app.db, &app.read.projectors),
    )
    .await
    {
        extra.push((
            "tiaojie_log_head".into(),
            "The global log's last position.".into(),
            head as f64,
        ));
        extra.push((
            "tiaojie_sequencer_lag_events".into(),
            "Events stored but not yet in the log.".into(),
            unsequenced as f64,
        ));
        for p in projections {
            extra.push((
                format!("tiaojie_projection_position{{projection=\"{}\"}}", p.name),
                "A read model's checkpoint.".into(),
                p.position as f64,
            ));
            extra.push((
                format!("tiaojie_projection_lag_events{{projection=\"{}\"}}", p.name),
                "Log entries a read model has yet to apply.".into(),
                p.lag as f64,
            ));
        }
    }
    let body = app.metrics.render(&extra);
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json"), (status = 500, body = Problem)))]
pub async fn openapi_json() -> Response {
    // Replaced by the router with the assembled document.
    StatusCode::NOT_FOUND.into_response()
}
