//! The JSON routes of the steps on cases and on groups, and their OpenAPI entries, derived
//! from the step tables ([`tiaojie_app::steps::CASE_STEPS`],
//! [`tiaojie_app::group_steps::GROUP_STEPS`]): one handler serves each table.

use std::collections::HashMap;

use axum::body::HttpBody;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, post, put};
use tiaojie_events::{CaseId, GroupId};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Required};
use utoipa::{IntoResponses, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::cases::guard_case_step;
use super::dto::CommandAnswer;
use super::extract::{body_data_error, parse_id, Administrator, ApiJson, Auth, IfMatch, Meta};
use super::idempotency::{self, command_answer};
use super::openapi::CommandErrors;
use crate::app::App;
use crate::commands;
use crate::error::{ApiError, ApiResult};
use tiaojie_app::group_steps::{GroupStepDef, Verb, GROUP_STEPS};
use tiaojie_app::steps::{BodySchema, CaseStepDef, StepContext, StepError, Sub, CASE_STEPS};

/// Every step's route, and its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<App> {
    let mut doc = OpenApi::default();
    let mut router = OpenApiRouter::new();
    for def in CASE_STEPS.iter() {
        router = router.route(
            def.path,
            post(
                move |State(app): State<App>,
                      Auth(actor): Auth,
                      Meta(meta): Meta,
                      IfMatch(expected): IfMatch,
                      Path(params): Path<HashMap<String, String>>,
                      req: Request| async move {
                    run(def, app, actor, meta, expected, params, req).await
                },
            ),
        );
        document(
            Entry {
                operation_id: def.step.name(),
                tag: "cases",
                summary: def.doc,
                path: def.path,
                verb: HttpMethod::Post,
                id: "Case id",
                sub: def.sub,
                body_required: true,
                answer: "Recorded",
            },
            (def.schema)(),
            &mut doc,
        );
    }
    OpenApiRouter::with_openapi(doc).merge(router)
}

/// Turns a step's refusal of its body into the API's answer: a body that does not fit is
/// a 400 naming the field, as for every other body.
pub fn step_error(e: StepError) -> ApiError {
    match e {
        StepError::Body { path, message } => body_data_error(&format!("{path}: {message}")),
        StepError::App(e) => e.into(),
    }
}

async fn run(
    def: &'static CaseStepDef,
    app: App,
    actor: crate::auth::Actor,
    meta: crate::commands::RequestMeta,
    expected: Option<u64>,
    params: HashMap<String, String>,
    req: Request,
) -> ApiResult<Response> {
    let raw = params.get("id").map(String::as_str).unwrap_or_default();
    let id = parse_id(raw, "case", CaseId::parse)?;
    guard_case_step(&app, &actor, &id, def.step.command_name()).await?;
    let path = req.uri().path().to_string();
    let ApiJson(value) = ApiJson::<serde_json::Value>::from_request(req, &app).await?;
    let sub = def.sub.and_then(|s| params.get(s.param));
    let cx = StepContext::of(&app, &actor, sub.map(String::as_str));
    let parsed = (def.parse)(value, &cx).map_err(step_error)?;
    let created = parsed.created;
    let command = parsed.command;
    idempotency::run(&app, &actor, &meta, "POST", &path, &parsed.body, || async {
        let o = commands::case_command(&app, &actor, &meta, &id, command, expected).await?;
        Ok(command_answer(
            "Case",
            "/api/v1/cases",
            o,
            created,
            StatusCode::OK,
        ))
    })
    .await
}

/// What an operation's OpenAPI entry says.
struct Entry<'a> {
    operation_id: &'a str,
    tag: &'a str,
    summary: &'a str,
    path: &'a str,
    verb: HttpMethod,
    id: &'a str,
    sub: Option<Sub>,
    body_required: bool,
    answer: &'a str,
}

fn document(e: Entry<'_>, body: BodySchema, doc: &mut OpenApi) {
    let string = || ObjectBuilder::new().schema_type(Type::String).build();
    let path_param = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(string()))
    };
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(string()))
    };
    let mut op = OperationBuilder::new()
        .operation_id(Some(e.operation_id))
        .tag(e.tag)
        .summary(Some(e.summary))
        .parameter(path_param("id", e.id));
    if let Some(sub) = e.sub {
        op = op.parameter(path_param(sub.param, sub.description));
    }
    op = op
        .parameter(header(
            "If-Match",
            "The version the client last saw; 412 when it has moved on",
        ))
        .parameter(header(
            "Idempotency-Key",
            "Makes a repeat return the first answer",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(body.name.clone())))
                        .build(),
                )
                .required(Some(if e.body_required {
                    Required::True
                } else {
                    Required::False
                }))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new().description(e.answer).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(CommandAnswer::name())))
                    .build(),
            ),
        )
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
    for (code, response) in CommandErrors::responses() {
        op = op.response(code, response);
    }
    doc.paths
        .add_path_operation(e.path, vec![e.verb], op.build());
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(body.name.to_string(), body.schema);
    components
        .schemas
        .insert(CommandAnswer::name().to_string(), CommandAnswer::schema());
    for (name, schema) in body.refers_to {
        components.schemas.insert(name, schema);
    }
}

// ---------------------------------------------------------------------------------------
// Steps on a mediation group

/// Every group step's route, and its entry in the OpenAPI document.
pub fn group_routes() -> OpenApiRouter<App> {
    let mut doc = OpenApi::default();
    let mut router = OpenApiRouter::new();
    for def in GROUP_STEPS.iter() {
        let handler = move |State(app): State<App>,
                            Administrator(actor): Administrator,
                            Meta(meta): Meta,
                            IfMatch(expected): IfMatch,
                            Path(params): Path<HashMap<String, String>>,
                            req: Request| async move {
            run_group(def, app, actor, meta, expected, params, req).await
        };
        let (route, verb) = match def.verb {
            Verb::Post => (post(handler), HttpMethod::Post),
            Verb::Put => (put(handler), HttpMethod::Put),
            Verb::Delete => (delete(handler), HttpMethod::Delete),
        };
        router = router.route(def.path, route);
        document(
            Entry {
                operation_id: def.name,
                tag: "mediation-groups",
                summary: def.doc,
                path: def.path,
                verb,
                id: "Group id",
                sub: def.sub,
                body_required: def.verb != Verb::Delete,
                answer: def.answer,
            },
            (def.schema)(),
            &mut doc,
        );
    }
    OpenApiRouter::with_openapi(doc).merge(router)
}

async fn run_group(
    def: &'static GroupStepDef,
    app: App,
    actor: crate::auth::Actor,
    meta: crate::commands::RequestMeta,
    expected: Option<u64>,
    params: HashMap<String, String>,
    req: Request,
) -> ApiResult<Response> {
    let raw = params.get("id").map(String::as_str).unwrap_or_default();
    let id = parse_id(raw, "mediation group", GroupId::parse)?;
    let path = req.uri().path().to_string();
    // A removal may come without a body.
    let value = if def.verb == Verb::Delete && req.body().size_hint().exact() == Some(0) {
        serde_json::json!({})
    } else {
        ApiJson::<serde_json::Value>::from_request(req, &app)
            .await?
            .0
    };
    let sub = def.sub.and_then(|s| params.get(s.param));
    let cx = StepContext::of(&app, &actor, sub.map(String::as_str));
    let parsed = (def.parse)(value, &cx).map_err(step_error)?;
    let created = parsed.created;
    let command = parsed.command;
    idempotency::run(
        &app,
        &actor,
        &meta,
        def.verb.as_str(),
        &path,
        &parsed.body,
        || async {
            let o = commands::group_command(&app, &actor, &meta, &id, command, expected).await?;
            Ok(command_answer(
                "MediationGroup",
                "/api/v1/mediation-groups",
                o,
                created,
                StatusCode::OK,
            ))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_route_documented() {
        let (_, doc) = routes().split_for_parts();
        let v = serde_json::to_value(&doc).unwrap();
        for def in &CASE_STEPS {
            let op = &v["paths"][def.path]["post"];
            assert_eq!(op["operationId"], def.step.name(), "{}", def.path);
            let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/components/schemas/")
                .to_string();
            assert!(
                v["components"]["schemas"].get(&body).is_some(),
                "{body} is not in the components"
            );
            assert!(op["responses"]["200"].is_object());
            assert!(op["responses"]["422"].is_object());
        }
    }
}
