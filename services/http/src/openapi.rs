//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa).

use std::collections::BTreeMap;

use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::error::{FieldProblem, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tiaojie (调解) API",
        description = "Records of dispute mediation in old-residential-community renovation: commands that record \
                       immutable events, and queries of case status, conflict heat and the audit trail. Every error \
                       is application/problem+json with a stable `code`. Commands accept `Idempotency-Key` and \
                       `If-Match`; their answers carry `ETag` and a consistency token that queries accept as \
                       `consistent_with` to read their own writes.",
        license(name = "Apache-2.0")
    ),
    paths(super::ops::openapi_json),
    modifiers(&Security),
    components(schemas(Problem, FieldProblem, tiaojie_projections::models::case_status::Sort, tiaojie_app::stats::Figure)),
    tags(
        (name = "reference", description = "Districts, communities and categories of the programme"),
        (name = "mediation-groups", description = "Mediation groups (矛盾调解小组)"),
        (name = "cases", description = "Cases (矛盾纠纷案件): commands and queries"),
        (name = "parties", description = "The party registry: personal data, sealed, masked by role, erasable"),
        (name = "dashboard", description = "Heat and statistics"),
        (name = "supervision", description = "Audit trail for supervision offices (督查室)"),
        (name = "operations", description = "Health, readiness, metrics")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `tiaojie token create`"))
                    .build(),
            ),
        );
    }
}

/// The error answers every command may give.
pub struct CommandErrors;

impl utoipa::IntoResponses for CommandErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let problem = |desc: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(desc)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
                .into()
        };
        [
            ("400", "Malformed JSON, wrong types or unknown fields"),
            ("401", "No valid bearer token"),
            ("403", "The role or group may not do this"),
            ("404", "No such case or group"),
            (
                "409",
                "Still conflicting after retries, or the same Idempotency-Key is in progress",
            ),
            ("412", "If-Match does not match the current version"),
            ("413", "The body is larger than allowed (64 KiB by default)"),
            ("415", "The body is not application/json"),
            (
                "422",
                "A domain rule refuses it; `code` names the rule, `detail` says it in Chinese",
            ),
            ("429", "Overloaded; retry later"),
            ("503", "The store is unreachable; retry later"),
        ]
        .into_iter()
        .map(|(s, d)| (s.to_string(), problem(d)))
        .collect()
    }
}

/// Makes the generated document say what the server does:
/// - every error answer is `application/problem+json`;
/// - every operation lists the errors the shared layers can give: 429 and 503 (load
///   shedding, time-outs, the store away), 401 and 403 where a token is needed, 400, 413,
///   415 and 422 where a body is read, 400 where a query is read, 404 where a path names
///   something.
pub fn truthful(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use serde_json::{json, Value};
    let Ok(mut v) = serde_json::to_value(&doc) else {
        return doc;
    };
    let problem = |desc: &str| {
        json!({
            "description": desc,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    };
    if let Some(paths) = v.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                    continue;
                }
                let params: Vec<String> = op["parameters"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p["in"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let secured = op.get("security").is_some();
                let has_body = op.get("requestBody").is_some();
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                for (code, r) in responses.iter_mut() {
                    if code.as_str() < "400" {
                        continue;
                    }
                    if let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) {
                        if let Some(c) = content.remove("application/json") {
                            content.insert("application/problem+json".into(), c);
                        }
                    }
                }
                let mut add = |code: &str, desc: &str| {
                    responses
                        .entry(code.to_string())
                        .or_insert_with(|| problem(desc));
                };
                let health = matches!(path.as_str(), "/healthz" | "/readyz");
                if !health {
                    add(
                        "429",
                        "Too many requests in flight, or too many failed attempts; see Retry-After",
                    );
                    add(
                        "503",
                        "The store is unreachable, or the request took too long; retry later",
                    );
                }
                if secured {
                    add("401", "No valid bearer token");
                    add("403", "The role or group may not do this");
                }
                if has_body {
                    add("400", "Malformed JSON, wrong types or unknown fields");
                    add("413", "The body is larger than allowed");
                    add("415", "The body is not of the documented type");
                    add("422", "A rule refuses it; `code` names the rule");
                }
                if params.iter().any(|p| p == "query") {
                    add("400", "A query parameter is not valid");
                }
                if params.iter().any(|p| p == "path") {
                    add("404", "No such resource");
                }
            }
        }
    }
    serde_json::from_value(v).unwrap_or(doc)
}

#[cfg(test)]
mod tests {
    /// Every `$ref` in the served document names a component that is in it (a type used
    /// only as a query parameter is not collected by itself, and a client's generator, or
    /// schemathesis, stops at the first that is missing).
    #[test]
    fn every_reference_resolves() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut missing = vec![];
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| walk(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut refs = vec![];
        walk(&doc, &mut refs);
        for r in refs {
            if let Some(name) = r.strip_prefix("#/components/schemas/") {
                if !schemas.contains_key(name) {
                    missing.push(name.to_string());
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "unresolved: {missing:?}");
    }
}
