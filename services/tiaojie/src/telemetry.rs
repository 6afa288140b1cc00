//! Logs and traces. One subscriber for the process: human or JSON lines (level from
//! `RUST_LOG`, default `info`), and, when an OTLP endpoint is configured
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or the config file's
//! `otlp_endpoint`), OpenTelemetry traces exported over OTLP: HTTP/protobuf by default,
//! gRPC when `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`. The standard `OTEL_*` variables apply
//! (service name, resource attributes, batch delays, headers, `OTEL_SDK_DISABLED`).
//! Incoming W3C `traceparent` headers are continued.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::LogFormat;

/// Keeps the trace exporter alive; flush it with [`Telemetry::shutdown`] before exiting.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn tracing_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still buffered.
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn provider(endpoint: Option<&str>) -> Option<SdkTracerProvider> {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let from_env =
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    if from_env.is_none() && endpoint.is_none() {
        return None;
    }
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    let exporter = if protocol == "grpc" {
        let mut b = SpanExporter::builder().with_tonic();
        if let (None, Some(e)) = (&from_env, endpoint) {
            b = b.with_endpoint(e.to_string());
        }
        b.build()
    } else {
        let mut b = SpanExporter::builder()
            .with_http()
            .with_protocol(if protocol == "http/json" {
                Protocol::HttpJson
            } else {
                Protocol::HttpBinary
            });
        if let (None, Some(e)) = (&from_env, endpoint) {
            // Like OTEL_EXPORTER_OTLP_ENDPOINT: a base URL to which the signal's path is added.
            b = b.with_endpoint(format!("{}/v1/traces", e.trim_end_matches('/')));
        }
        b.build()
    };
    let exporter = match exporter {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tiaojie: tracing disabled: cannot build the OTLP exporter: {e}");
            return None;
        }
    };
    let service = env("OTEL_SERVICE_NAME").unwrap_or_else(|| "tiaojie".into());
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}

/// Builds the process's subscriber once. A second call (tests) keeps the first.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn,opentelemetry=warn,h2=warn,hyper=warn,reqwest=warn,tonic=warn"));
    let provider = provider(otlp_endpoint);
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("tiaojie"))
            .boxed()
    });
    let fmt_layer = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        // Colours only on a terminal, and not when NO_COLOR is set (https://no-color.org/):
        // a log file or journal would keep the escape codes (and writing them cost 2 % of
        // the server's CPU under load, measured).
        LogFormat::Human => fmt::layer()
            .with_target(false)
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            )
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(otel)
        .with(fmt_layer)
        .with(filter)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        if let Some(p) = &provider {
            opentelemetry::global::set_tracer_provider(p.clone());
        }
        Telemetry { provider }
    } else {
        Telemetry::default()
    }
}
