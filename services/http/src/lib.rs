//! The HTTP API (axum): routes, middleware and the consistency helper.
#![forbid(unsafe_code)]

pub mod attachments;
pub mod audit;
pub mod cases;
pub mod dashboard;
pub mod dto;
pub mod error;
pub mod extract;
pub mod groups;
pub mod idempotency;
pub mod openapi;
pub mod ops;
pub mod parties;
pub mod reference;
pub mod steps;

use tiaojie_app::{app, app_error, auth, commands, edge, health, masking, numbering, queries};

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use opentelemetry::trace::TraceContextExt;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::commands::RequestMeta;
use crate::error::ApiError;

/// The JSON API with `pages` (the web interface, which this module does not know) mounted
/// beside it, all behind the same edge: limits, timeouts, tracing, problem+json.
pub fn router(app: App, pages: Router<App>) -> Router {
    let (router, _) = router_and_openapi(app, pages);
    router
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::truthful(api_routes().split_for_parts().1)
}

fn api_routes() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(reference::districts))
        .routes(routes!(reference::communities))
        .routes(routes!(reference::categories))
        .routes(routes!(groups::form_group, groups::list_groups))
        .routes(routes!(groups::move_community))
        .merge(steps::group_routes())
        .routes(routes!(cases::open_case, cases::list_cases))
        .routes(routes!(cases::get_case))
        .routes(routes!(cases::case_by_number))
        .routes(routes!(cases::history))
        .merge(
            // Uploads count their own bytes against `attachment_max_bytes`.
            OpenApiRouter::new()
                .routes(routes!(attachments::upload, attachments::list))
                .layer(DefaultBodyLimit::disable()),
        )
        .routes(routes!(attachments::content))
        .routes(routes!(attachments::thumbnail))
        .merge(steps::routes())
        .routes(routes!(parties::register, parties::search))
        .routes(routes!(parties::view, parties::correct))
        .routes(routes!(parties::erase))
        .routes(routes!(parties::export))
        .routes(routes!(parties::of_case))
        .routes(routes!(parties::access_log))
        .routes(routes!(dashboard::heat_communities))
        .routes(routes!(dashboard::heat_districts))
        .routes(routes!(dashboard::daily))
        .routes(routes!(dashboard::summary))
        .routes(routes!(dashboard::period))
        .routes(routes!(dashboard::figure_cases))
        .routes(routes!(dashboard::stats_xlsx))
        .routes(routes!(cases::cases_xlsx))
        .routes(routes!(audit::export_xlsx))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::export))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

pub fn router_and_openapi(app: App, pages: Router<App>) -> (Router, Arc<utoipa::openapi::OpenApi>) {
    let (api, doc) = api_routes().split_for_parts();
    let doc = Arc::new(openapi::truthful(doc));
    let served = doc.clone();
    let limit = app.settings.body_limit_bytes;
    let gate = Arc::new(Semaphore::new(app.settings.max_in_flight));
    let wait_gate = Arc::new(Semaphore::new(app.settings.max_in_flight.div_ceil(4)));
    let timeout = Duration::from_secs(app.settings.request_timeout_secs);
    let router = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let d = served.clone();
                async move { Json(d.as_ref().clone()) }
            }),
        )
        .merge(pages)
        .route_layer(middleware::from_fn_with_state(app.clone(), record_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            Ctx {
                gate,
                wait_gate,
                timeout,
                health: app.health.clone(),
                trust_forwarded_for: app.settings.trust_forwarded_for,
            },
            context,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .with_state(app);
    (router, doc)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such resource",
        "请求的资源不存在",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This method is not allowed here",
        "不支持该请求方法",
    )
}

#[derive(Clone)]
struct Ctx {
    gate: Arc<Semaphore>,
    wait_gate: Arc<Semaphore>,
    timeout: Duration,
    health: Arc<crate::health::StoreHealth>,
    trust_forwarded_for: bool,
}

/// The client's address: the peer, or behind a trusted proxy the last `X-Forwarded-For` hop.
fn client_addr(req: &Request, trust_forwarded_for: bool) -> extract::ClientAddr {
    if trust_forwarded_for {
        if let Some(last) = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| v.parse::<std::net::IpAddr>().is_ok())
        {
            return extract::ClientAddr(last.to_string());
        }
    }
    match req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        Some(c) => extract::ClientAddr(c.0.ip().to_string()),
        None => extract::ClientAddr("unknown".into()),
    }
}

/// Request id and trace id, load shedding, timeout, one span per request, and the request
/// id in every problem document.
async fn context(State(ctx): State<Ctx>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let trace_id = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let parts: Vec<&str> = v.split('-').collect();
            (parts.len() == 4
                && parts[1].len() == 32
                && parts[1].chars().all(|c| c.is_ascii_hexdigit())
                && parts[1] != "0".repeat(32))
            .then(|| parts[1].to_ascii_lowercase())
        });
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        "otel.name" = %format!("{method} {}", req.uri().path().split('/').take(4).collect::<Vec<_>>().join("/")),
        "otel.kind" = "server",
        "http.request.method" = %method,
        "http.route" = tracing::field::Empty,
        "http.response.status_code" = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    // Continue the caller's trace (W3C traceparent) when tracing is on; the trace id is
    // then the span's, else the one the caller sent.
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(req.headers()))
    });
    let _ = span.set_parent(parent);
    let span_trace = span.context().span().span_context().clone();
    let trace_id = if span_trace.is_valid() {
        Some(span_trace.trace_id().to_string())
    } else {
        trace_id
    };
    if let Some(t) = &trace_id {
        span.record("trace_id", t.as_str());
    }
    let client = client_addr(&req, ctx.trust_forwarded_for);
    req.extensions_mut().insert(client);
    req.extensions_mut().insert(RequestMeta {
        request_id: request_id.clone(),
        trace_id,
        idempotency_key: None,
    });
    // Health checks are never shed; reads that wait for a write take a budget of their
    // own, so that waiting cannot use up the slots of commands and other queries.
    let path = req.uri().path();
    let exempt = matches!(path, "/healthz" | "/readyz");
    let waits = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.starts_with("consistent_with=") && kv.len() > 16)
    });
    let gate = if waits { &ctx.wait_gate } else { &ctx.gate };
    // Paths that do not need the store.
    let storeless = exempt
        || path == "/metrics"
        || path == "/api/v1/openapi.json"
        || path.starts_with("/assets/");
    if !storeless && ctx.health.fail_fast() {
        let r = if path.starts_with("/api/") {
            ApiError::unavailable().into_response()
        } else {
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::response::Html(
                    "<!doctype html><meta charset=utf-8><title>503</title><p>数据存储暂时不可用，请稍后重试。<p>The store is unavailable; try again shortly.",
                ),
            )
                .into_response();
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("2"),
            );
            r
        };
        let mut r = r;
        r.headers_mut().remove(crate::error::STORE_DOWN);
        return finish(r, &request_id).await;
    }
    let response = {
        let _permit = match (exempt, gate.clone().try_acquire_owned()) {
            (true, _) => None,
            (false, Ok(p)) => Some(p),
            (false, Err(_)) => {
                return finish(
                    ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "overloaded",
                        "Too many requests in flight; retry shortly",
                        "系统繁忙，请稍后重试",
                    )
                    .into_response(),
                    &request_id,
                )
                .await
            }
        };
        let fut = tracing::Instrument::instrument(next.run(req), span.clone());
        match tokio::time::timeout(ctx.timeout, fut).await {
            Ok(r) => r,
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "The request took too long",
                "请求超时，请稍后重试",
            )
            .into_response(),
        }
    };
    let mut response = response;
    let status = response.status();
    if response
        .headers_mut()
        .remove(crate::error::STORE_DOWN)
        .is_some()
    {
        ctx.health.unreachable();
    } else if !storeless && status != StatusCode::SERVICE_UNAVAILABLE {
        ctx.health.reachable();
    }
    span.record("http.response.status_code", status.as_u16());
    span.record("latency_ms", started.elapsed().as_millis() as u64);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!("request failed");
        } else {
            tracing::info!("request");
        }
    });
    finish(response, &request_id).await
}

/// Adds the request id to the answer, and into problem documents.
async fn finish(mut response: Response, request_id: &str) -> Response {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    // No answer is to be sniffed into another type, and none is to be kept by a cache
    // unless it says so itself (only the static assets do): answers carry case text and
    // personal data.
    h.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(axum::http::header::CACHE_CONTROL) {
        h.insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
    let is_problem = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("request_id".into(), serde_json::Value::from(request_id));
    }
    let mut parts = parts;
    parts.headers.remove("content-length");
    Response::from_parts(
        parts,
        Body::from(serde_json::to_vec(&v).unwrap_or_default()),
    )
}

async fn record_route(State(app): State<App>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().to_string();
    tracing::Span::current().record("http.route", route.as_str());
    let response = next.run(req).await;
    app.metrics.record_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

pub use crate::queries::{await_consistency, consistency_token};
