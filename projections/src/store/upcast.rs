//! Event upcasters: how events written by older releases are read by this one. Event types
//! are never copied into `V2` variants; when a payload changes shape, an upcaster for the
//! old `event_version` rewrites it on load. There are none yet: every stored event is
//! version "1".

use cqrs_es::persist::EventUpcaster;

pub fn case_upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![]
}

pub fn group_upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![]
}
