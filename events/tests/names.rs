//! The names the code uses for enum values (`as_str`, `parse`, derived by strum) are the
//! names serde stores and the API speaks, for every value.

use strum::IntoEnumIterator;
use tiaojie_events::case::{CaseKind, CaseStatus, Outcome};
use tiaojie_events::metadata::Role;

fn serde_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn strum_names_are_serde_names() {
    for r in Role::iter() {
        assert_eq!(r.as_str(), serde_name(r));
        assert_eq!(Role::parse(r.as_str()), Some(r));
    }
    for k in CaseKind::iter() {
        assert_eq!(k.as_str(), serde_name(k));
    }
    for o in Outcome::iter() {
        assert_eq!(o.as_str(), serde_name(o));
    }
    for s in CaseStatus::ALL {
        assert_eq!(s.as_str(), serde_name(s));
        assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(CaseStatus::NotOpened.as_str(), "not_opened");
    assert_eq!(CaseStatus::parse("not_opened"), None);
    assert_eq!(Role::parse("Member"), None);
    assert_eq!(CaseStatus::parse(""), None);
}
