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
    components(schemas(Problem, FieldProblem)),
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
