//! The JSON routes of the case steps and their OpenAPI entries, derived from the step table
//! ([`tiaojie_app::steps::CASE_STEPS`]): one handler serves every step.

use std::collections::HashMap;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use tiaojie_events::CaseId;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Required};
use utoipa::{IntoResponses, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::cases::{case_answer, guard_case_step};
use super::dto::CommandAnswer;
use super::extract::{body_data_error, parse_id, ApiJson, Auth, IfMatch, Meta};
use super::idempotency;
use super::openapi::CommandErrors;
use crate::app::App;
use crate::commands;
use crate::error::{ApiError, ApiResult};
use tiaojie_app::steps::{CaseStepDef, StepContext, StepError, CASE_STEPS};

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
        document(def, &mut doc);
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
    let cx = StepContext {
        now: app.now(),
        follow_up_days: app.settings.follow_up_days,
        actor: &actor,
        sub: def
            .sub
            .and_then(|s| params.get(s.param))
            .map(String::as_str),
    };
    let parsed = (def.parse)(value, &cx).map_err(step_error)?;
    let created = parsed.created;
    let command = parsed.command;
    idempotency::run(&app, &actor, &meta, "POST", &path, &parsed.body, || async {
        let o = commands::case_command(&app, &actor, &meta, &id, command, expected).await?;
        Ok(case_answer(o, created, StatusCode::OK))
    })
    .await
}

fn document(def: &CaseStepDef, doc: &mut OpenApi) {
    let string = || ObjectBuilder::new().schema_type(Type::String).build();
    let mut op = OperationBuilder::new()
        .operation_id(Some(def.step.name()))
        .tag("cases")
        .summary(Some(def.doc))
        .parameter(
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("Case id"))
                .schema(Some(string())),
        );
    if let Some(sub) = def.sub {
        op = op.parameter(
            ParameterBuilder::new()
                .name(sub.param)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(sub.description))
                .schema(Some(string())),
        );
    }
    let body = (def.schema)();
    op = op
        .parameter(
            ParameterBuilder::new()
                .name("If-Match")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "The version the client last saw; 412 when the case has moved on",
                ))
                .schema(Some(string())),
        )
        .parameter(
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("Makes a repeat return the first answer"))
                .schema(Some(string())),
        )
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(body.name.clone())))
                        .build(),
                )
                .required(Some(Required::True))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new().description("Recorded").content(
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
        .add_path_operation(def.path, vec![HttpMethod::Post], op.build());
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
