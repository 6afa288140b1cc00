//! Event upcasters: how events written by older releases are read by this one. Event types
//! are never copied into `V2` variants; when a payload changes shape, an upcaster for the
//! old `event_version` rewrites it on load, and the old version's golden file stays in
//! `events/golden/` to prove it.

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::{json, Value};

pub fn case_upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(SemanticVersionEventUpcaster::new(
        "AgreementReached",
        "2",
        Box::new(agreement_v1_to_v2),
    ))]
}

pub fn group_upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![]
}

/// `AgreementReached` v2 adds what Art. 29 of the People's Mediation Law asks of the
/// 协议书. An agreement recorded before holds its terms only: the new parts are empty, and
/// the printed 协议书 says they were not recorded.
fn agreement_v1_to_v2(mut payload: Value) -> Value {
    if let Value::Object(o) = &mut payload {
        for (key, empty) in [
            ("facts", json!("")),
            ("responsibilities", json!("")),
            ("obligations", json!([])),
            ("performance_manner", json!("")),
            ("performance_place", json!("")),
            ("performance_due", Value::Null),
            ("copies", Value::Null),
        ] {
            o.entry(key).or_insert(empty);
        }
    }
    payload
}
