//! OpenTelemetry against a real OTLP receiver started here: an HTTP endpoint that decodes
//! the OTLP protobuf the real binary sends. The caller's W3C traceparent is continued, the
//! spans carry the right attributes and parentage, and the trace id lands in the audit
//! trail.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The master key of the test stores (32 bytes, base64).
const TEST_KEY: &str = "dGlhb2ppZS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

type Received = Arc<Mutex<Vec<(Vec<KeyValue>, Span)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let r = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let r = r.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut out = r.lock().unwrap();
                for rs in req.resource_spans {
                    let resource = rs.resource.map(|x| x.attributes).unwrap_or_default();
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            out.push((resource.clone(), span));
                        }
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_with_attributes_parentage_and_the_trace_id_is_audited() {
    let (endpoint, received) = receiver().await;
    let dir = std::env::temp_dir().join(format!("tiaojie-otel-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}/tiaojie.db", dir.display());
    // An administrator's API token, made from the shell before the service starts.
    let made = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["token", "create", "--role", "admin", "--name", "otel test"])
        .env("DATABASE_URL", &url)
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let admin = String::from_utf8_lossy(&made.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &url)
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_SERVICE_NAME", "tiaojie-test")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut address = String::new();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            address = rest.split_whitespace().next().unwrap().to_string();
            break;
        }
    }
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{address}/api/v1/mediation-groups"))
        .bearer_auth(&admin)
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .json(&serde_json::json!({
            "name": "小组", "street_office": "南关街道办事处", "communities": ["meiyuan"],
            "leader": {"name": "组长", "org_role": "street_office", "organisation": "南关街道办事处"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<serde_json::Value>().await.unwrap()["consistency_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Wait for the request span and the command span of that trace.
    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (resource, request, command) = loop {
        {
            let spans = received.lock().unwrap();
            let mine: Vec<&(Vec<KeyValue>, Span)> = spans
                .iter()
                .filter(|(_, s)| s.trace_id == trace_bytes)
                .collect();
            let request = mine.iter().find(|(_, s)| {
                text(&s.attributes, "http.route").as_deref() == Some("/api/v1/mediation-groups")
            });
            let command = mine.iter().find(|(_, s)| s.name == "command");
            if let (Some(r), Some(c)) = (request, command) {
                break (r.0.clone(), r.1.clone(), c.1.clone());
            }
        }
        assert!(
            Instant::now() < deadline,
            "spans did not arrive: {:?}",
            received
                .lock()
                .unwrap()
                .iter()
                .map(|(_, s)| s.name.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        text(&resource, "service.name").as_deref(),
        Some("tiaojie-test")
    );
    assert_eq!(
        text(&resource, "service.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    // The request span continues the caller's span; the command span is its child.
    assert_eq!(hex(&request.parent_span_id), caller_span);
    assert_eq!(command.parent_span_id, request.span_id);
    assert_eq!(
        text(&request.attributes, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        text(&request.attributes, "http.response.status_code").as_deref(),
        Some("201")
    );
    assert!(text(&request.attributes, "request_id").is_some());
    assert_eq!(
        text(&command.attributes, "aggregate").as_deref(),
        Some("MediationGroup")
    );
    assert_eq!(
        text(&command.attributes, "outcome").as_deref(),
        Some("accepted")
    );

    // The audit trail shows the trace id, so a supervisor's question leads to the trace.
    let o = Command::new(env!("CARGO_BIN_EXE_tiaojie"))
        .args(["token", "create", "--role", "supervisor", "--name", "督查"])
        .env("DATABASE_URL", &url)
        .env("TIAOJIE_MASTER_KEY", TEST_KEY)
        .current_dir(&dir)
        .output()
        .unwrap();
    let supervisor = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with("tj_"))
        .unwrap()
        .to_string();
    let audit: serde_json::Value = client
        .get(format!(
            "http://{address}/api/v1/audit?consistent_with={token}"
        ))
        .bearer_auth(&supervisor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"][0]["trace_id"], trace);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
