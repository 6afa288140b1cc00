//! One definition per step on a mediation group, on the pattern of [`crate::steps`]: each
//! row holds the step's name, its HTTP verb and path, its OpenAPI line, its form on the
//! administration page (fields with Chinese and English labels) and, in its body's
//! [`StepBody::command`], the conversion to the domain command. The JSON routes, their
//! OpenAPI entries and the administration page's forms are derived from it. Only
//! administrators run these steps ([`crate::auth::may_manage_groups`]).
//!
//! Forming a group keeps its own route and form: it creates the group, with its leader.

use serde::{Deserialize, Serialize};
use tiaojie_events::group::*;
use tiaojie_events::{CommunityId, MemberId};
use utoipa::ToSchema;

use crate::app_error::AppError;
use crate::steps::{
    choice, field, parse, schema, text, BodySchema, Choices, FieldDef, Input, ParseFn, StepBody,
    StepContext, Sub, Words,
};

/// The HTTP verb of a step's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Post,
    Put,
    /// The body is optional.
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }
}

/// One step on a group, defined once.
pub struct GroupStepDef {
    /// The step's name: its operation id, and its form's action on the page.
    pub name: &'static str,
    pub verb: Verb,
    pub path: &'static str,
    pub sub: Option<Sub>,
    /// The OpenAPI entry's summary, and the answer's description.
    pub doc: &'static str,
    pub answer: &'static str,
    pub title: Words,
    pub submit: Words,
    pub danger: bool,
    pub fields: &'static [FieldDef],
    pub parse: ParseFn<GroupCommand>,
    pub schema: fn() -> BodySchema,
}

impl GroupStepDef {
    /// The form field that fills the path part, if any.
    pub fn sub_field(&self) -> Option<&FieldDef> {
        let sub = self.sub?;
        self.fields.iter().find(|f| f.key == sub.param)
    }
}

const MEMBER: Sub = Sub {
    param: "member_id",
    what: "member",
    description: "Member id",
};

/// Every step on a formed group, in the order the administration page shows them.
pub static GROUP_STEPS: [GroupStepDef; 4] = [
    GroupStepDef {
        name: "add_member",
        verb: Verb::Post,
        path: "/api/v1/mediation-groups/{id}/members",
        sub: None,
        doc: "Adds a member; answers the member's id.",
        answer: "Added",
        title: ("增加成员", "Add a member"),
        submit: ("增加", "Add"),
        danger: false,
        fields: &[
            text("name", ("姓名", "Name")).required(),
            choice(
                "org_role",
                ("单位类别", "Organisation type"),
                Choices::OrgRoles,
            )
            .required(),
            text("organisation", ("单位", "Organisation")).required(),
        ],
        parse: parse::<MemberBody>,
        schema: schema::<MemberBody>,
    },
    GroupStepDef {
        name: "change_leader",
        verb: Verb::Put,
        path: "/api/v1/mediation-groups/{id}/leader",
        sub: None,
        doc: "Changes the leader to another member from the street office.",
        answer: "Changed",
        title: ("更换组长", "Change the leader"),
        submit: ("更换", "Change"),
        danger: false,
        fields: &[
            choice("member", ("新组长", "New leader"), Choices::GroupMembers)
                .key("member_id")
                .required()
                .hint(("须为街道办事处人员", "must be from the street office")),
            text("reason", ("理由", "Reason")),
        ],
        parse: parse::<LeaderBody>,
        schema: schema::<LeaderBody>,
    },
    GroupStepDef {
        name: "change_communities",
        verb: Verb::Put,
        path: "/api/v1/mediation-groups/{id}/communities",
        sub: None,
        doc: "Adds communities to a group or releases them.",
        answer: "Changed",
        title: ("调整负责小区", "Change the communities"),
        submit: ("调整", "Change"),
        danger: false,
        fields: &[
            field(
                "add",
                ("增加负责小区", "Take on"),
                Input::Several(Choices::OtherCommunities),
            ),
            field(
                "remove",
                ("不再负责的小区", "Release"),
                Input::Several(Choices::GroupCommunities),
            ),
        ],
        parse: parse::<CommunitiesBody>,
        schema: schema::<CommunitiesBody>,
    },
    GroupStepDef {
        name: "remove_member",
        verb: Verb::Delete,
        path: "/api/v1/mediation-groups/{id}/members/{member_id}",
        sub: Some(MEMBER),
        doc: "Removes a member (not the leader), with an optional reason.",
        answer: "Removed",
        title: ("移除成员", "Remove a member"),
        submit: ("移除", "Remove"),
        danger: true,
        fields: &[
            choice("member", ("成员", "Member"), Choices::GroupMembers)
                .key("member_id")
                .required()
                .hint((
                    "组长须先更换才能移除",
                    "change a leader before removing them",
                )),
            text("reason", ("理由", "Reason")),
        ],
        parse: parse::<RemoveMemberBody>,
        schema: schema::<RemoveMemberBody>,
    },
];

/// The definition of a group step, by name.
pub fn group_step(name: &str) -> Option<&'static GroupStepDef> {
    GROUP_STEPS.iter().find(|d| d.name == name)
}

// ---------------------------------------------------------------------------------------
// The bodies and their conversions.

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    /// Generated when left out.
    pub member_id: Option<MemberId>,
    pub name: String,
    pub org_role: OrgRole,
    pub organisation: String,
}

impl MemberBody {
    /// The member as the domain takes it, with a new id when none was given.
    pub fn member(&self) -> Member {
        Member {
            // A new random id (`MemberId::default()` is the nil id).
            member_id: match self.member_id {
                Some(id) => id,
                None => MemberId::new(),
            },
            name: self.name.trim().to_string(),
            org_role: self.org_role,
            organisation: self.organisation.trim().to_string(),
        }
    }
}

impl StepBody for MemberBody {
    type Command = GroupCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(GroupCommand, Option<String>), AppError> {
        let member = self.member();
        let id = member.member_id.to_string();
        Ok((GroupCommand::AddMember(AddMember { member }), Some(id)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderBody {
    pub member_id: MemberId,
    pub reason: Option<String>,
}

impl StepBody for LeaderBody {
    type Command = GroupCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(GroupCommand, Option<String>), AppError> {
        Ok((
            GroupCommand::ChangeLeader(ChangeLeader {
                new_leader: self.member_id,
                reason: self.reason,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunitiesBody {
    #[serde(default)]
    pub add: Vec<CommunityId>,
    #[serde(default)]
    pub remove: Vec<CommunityId>,
}

impl StepBody for CommunitiesBody {
    type Command = GroupCommand;

    fn command(self, _: &StepContext<'_>) -> Result<(GroupCommand, Option<String>), AppError> {
        Ok((
            GroupCommand::ChangeCommunities(ChangeCommunities {
                add: self.add,
                remove: self.remove,
            }),
            None,
        ))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveMemberBody {
    pub reason: Option<String>,
}

impl StepBody for RemoveMemberBody {
    type Command = GroupCommand;

    fn command(self, cx: &StepContext<'_>) -> Result<(GroupCommand, Option<String>), AppError> {
        Ok((
            GroupCommand::RemoveMember(RemoveMember {
                member_id: cx.sub("member_id", "member", MemberId::parse)?,
                reason: self.reason,
            }),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::auth::Actor;

    #[test]
    fn every_group_step_is_defined_once() {
        let names: HashSet<_> = GROUP_STEPS.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), GROUP_STEPS.len());
        let routes: HashSet<_> = GROUP_STEPS.iter().map(|d| (d.verb, d.path)).collect();
        assert_eq!(routes.len(), GROUP_STEPS.len());
        for d in &GROUP_STEPS {
            let schema = serde_json::to_value((d.schema)().schema).unwrap();
            let props = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for f in d.fields {
                let into_path = d.sub.is_some_and(|s| s.param == f.key);
                assert!(
                    into_path || props.contains_key(f.key),
                    "{}: {}",
                    d.name,
                    f.key
                );
            }
            if let Some(s) = d.sub {
                assert!(d.path.contains(&format!("{{{}}}", s.param)));
                assert!(d.sub_field().is_some());
            }
            assert!(group_step(d.name).is_some());
        }
    }

    #[test]
    fn a_removal_names_its_member_in_the_path() {
        let actor = Actor::system("test");
        let member = MemberId::new().to_string();
        let cx = |sub| StepContext {
            now: tiaojie_events::Timestamp::parse("2026-03-01T08:00:00Z").unwrap(),
            follow_up_days: 15,
            actor: &actor,
            sub,
        };
        let def = group_step("remove_member").unwrap();
        let p = (def.parse)(serde_json::json!({"reason": "调离"}), &cx(Some(&member))).unwrap();
        let GroupCommand::RemoveMember(r) = p.command else {
            panic!("not a removal")
        };
        assert_eq!(r.member_id.to_string(), member);
        assert_eq!(r.reason.as_deref(), Some("调离"));
        assert!((def.parse)(serde_json::json!({}), &cx(Some("x"))).is_err());
    }
}
