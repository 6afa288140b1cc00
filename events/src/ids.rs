//! Validated identifiers. UUID v7 for things the system creates (time-ordered, so indexes
//! stay compact); short ASCII codes for reference data that comes from a programme file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| IdError::NotUuid(stringify!($name), s.chars().take(64).collect()))
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

uuid_id!(
    /// A case (矛盾纠纷案件).
    CaseId
);
uuid_id!(
    /// A mediation group (矛盾调解小组).
    GroupId
);
uuid_id!(
    /// A member of a mediation group (an official, not a resident).
    MemberId
);
uuid_id!(
    /// A party to a case: a pseudonymous reference into the party registry. Events never
    /// carry a party's name or phone number, only this id.
    PartyId
);
uuid_id!(
    /// A mediation session (调解会) within a case.
    SessionId
);
uuid_id!(
    /// An obstruction incident (阻挡施工事件) within a case.
    IncidentId
);
uuid_id!(
    /// A supervision order (督办) within a case.
    OrderId
);
uuid_id!(
    /// A file attached to a case (a photo of the site, a scan of a signed paper).
    AttachmentId
);

macro_rules! code_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let ok = !s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.')
                    && s.as_bytes()[0].is_ascii_alphanumeric();
                if ok {
                    Ok(Self(s.to_string()))
                } else {
                    Err(IdError::BadCode(stringify!($name), s.chars().take(64).collect()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

code_id!(
    /// A community (小区) code from the reference data, e.g. `jingfeng-yuan` for 靖丰苑.
    CommunityId
);
code_id!(
    /// A district (片区) code from the reference data, e.g. `nanchenglu` for 南城路片区.
    DistrictId
);
code_id!(
    /// A dispute category code, e.g. `cause.cost-sharing` or `work.roof`.
    CategoryCode
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{0} must be a UUID, got {1:?}")]
    NotUuid(&'static str, String),
    #[error("{0} must be 1-64 characters of a-z, 0-9, '-', '_' or '.', got {1:?}")]
    BadCode(&'static str, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_validated() {
        assert!(CommunityId::parse("jingfeng-yuan").is_ok());
        assert!(CommunityId::parse("Jingfeng").is_err());
        assert!(CommunityId::parse("").is_err());
        assert!(CommunityId::parse("a b").is_err());
        assert!(CommunityId::parse("-x").is_err());
        assert!(serde_json::from_str::<CategoryCode>("\"DROP TABLE\"").is_err());
    }

    #[test]
    fn uuid_ids_round_trip() {
        let id = CaseId::new();
        assert_eq!(CaseId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(id.0.get_version_num(), 7);
        assert!(CaseId::parse("not-a-uuid").is_err());
    }
}

#[cfg(feature = "openapi")]
mod openapi {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Schema};

    macro_rules! string_schema {
        ($name:ty, $format:expr, $desc:expr) => {
            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format($format)
                        .description(Some($desc))
                        .into()
                }
            }
            impl utoipa::ToSchema for $name {}
        };
    }

    fn uuid() -> Option<SchemaFormat> {
        Some(SchemaFormat::Custom("uuid".into()))
    }

    string_schema!(super::CaseId, uuid(), "A case id (UUID v7)");
    string_schema!(super::GroupId, uuid(), "A mediation group id");
    string_schema!(super::MemberId, uuid(), "A group member id");
    string_schema!(
        super::PartyId,
        uuid(),
        "A party id: a pseudonymous reference into the party registry"
    );
    string_schema!(super::SessionId, uuid(), "A mediation session id");
    string_schema!(super::IncidentId, uuid(), "An obstruction incident id");
    string_schema!(super::OrderId, uuid(), "A supervision order id");
    string_schema!(super::AttachmentId, uuid(), "An attachment id");
    string_schema!(
        super::CommunityId,
        None,
        "A community code from the reference data, e.g. jingfeng-yuan"
    );
    string_schema!(
        super::DistrictId,
        None,
        "A district code from the reference data, e.g. nanchenglu"
    );
    string_schema!(
        super::CategoryCode,
        None,
        "A dispute category code, e.g. cause.cost-sharing or work.roof"
    );
    string_schema!(
        crate::time::Timestamp,
        Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)),
        "RFC 3339; stored and answered in UTC with microseconds"
    );
}
