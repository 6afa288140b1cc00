//! Forms as data: each is a list of fields rendered by one template, refilled with what was
//! typed and annotated with the problem when the server refuses it.

use crate::app_error::AppError;

use super::{FormData, Lang};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Text,
    Area,
    DateTime,
    /// A calendar date.
    Date,
    Number,
    Select,
    /// Several choices (checkboxes).
    Multi,
    /// One checkbox.
    Flag,
    Hidden,
    /// A password: never sent back filled in.
    Password,
    /// A photo from the phone's camera (the form is sent as multipart).
    Photo,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub kind: Kind,
    pub value: String,
    pub values: Vec<String>,
    /// (value, label)
    pub options: Vec<(String, String)>,
    pub required: bool,
    pub hint: String,
    pub error: Option<String>,
}

impl Field {
    pub fn new(name: &str, label: &str, kind: Kind) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind,
            value: String::new(),
            values: vec![],
            options: vec![],
            required: false,
            hint: String::new(),
            error: None,
        }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn value(mut self, v: impl Into<String>) -> Self {
        self.value = v.into();
        self
    }

    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = h.into();
        self
    }

    pub fn options(mut self, o: Vec<(String, String)>) -> Self {
        self.options = o;
        self
    }

    pub fn is(&self, k: &str) -> bool {
        match k {
            "text" => self.kind == Kind::Text,
            "area" => self.kind == Kind::Area,
            "datetime" => self.kind == Kind::DateTime,
            "date" => self.kind == Kind::Date,
            "number" => self.kind == Kind::Number,
            "select" => self.kind == Kind::Select,
            "multi" => self.kind == Kind::Multi,
            "flag" => self.kind == Kind::Flag,
            "hidden" => self.kind == Kind::Hidden,
            "password" => self.kind == Kind::Password,
            "photo" => self.kind == Kind::Photo,
            _ => false,
        }
    }

    pub fn selected(&self, v: &str) -> bool {
        self.value == v
    }

    pub fn checked(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }
}

#[derive(Debug, Clone)]
pub struct FormView {
    pub action: String,
    pub title: String,
    pub post: String,
    pub fields: Vec<Field>,
    pub submit: String,
    /// Shown open: the form just submitted, or the page's main form.
    pub open: bool,
    pub error: Option<String>,
    pub danger: bool,
    pub id: String,
}

impl FormView {
    pub fn new(action: &str, title: &str, post: String, submit: &str) -> Self {
        Self {
            action: action.into(),
            title: title.into(),
            post,
            fields: vec![],
            submit: submit.into(),
            open: false,
            error: None,
            danger: false,
            id: format!("form-{action}"),
        }
    }

    pub fn field(mut self, f: Field) -> Self {
        self.fields.push(f);
        self
    }

    /// Sent as multipart: it carries a file.
    pub fn multipart(&self) -> bool {
        self.fields.iter().any(|f| f.kind == Kind::Photo)
    }

    /// Puts back what was typed and places the problem next to its field (or above the
    /// form when it names none of them).
    pub fn refill(&mut self, data: &FormData, error: &AppError, lang: Lang) {
        self.open = true;
        for f in &mut self.fields {
            if f.kind == Kind::Multi {
                f.values = data.all(&f.name);
            } else if f.kind == Kind::Flag {
                f.value = if data.has(&f.name) {
                    "on".into()
                } else {
                    String::new()
                };
            } else if f.kind != Kind::Hidden && f.kind != Kind::Password && f.kind != Kind::Photo {
                f.value = data.get(&f.name).to_string();
            } else if f.name.ends_with("__served") && !data.get(&f.name).is_empty() {
                // The minute the page first filled in: a time left as it was still means
                // "now" when the form comes back refused in a later minute.
                f.value = data.get(&f.name).to_string();
            }
        }
        let message = if lang.is_en() {
            error.title.clone()
        } else {
            error.detail_zh.clone()
        };
        let mut placed = false;
        for (field, _) in &error.fields {
            let name = normalise(field);
            if let Some(f) = self
                .fields
                .iter_mut()
                .find(|f| matches_field(&f.name, &name))
            {
                f.error = Some(message.clone());
                placed = true;
                break;
            }
        }
        if !placed {
            self.error = Some(message);
        }
    }
}

fn normalise(field: &str) -> String {
    field.trim_start_matches('/').replace('/', ".")
}

fn matches_field(form_name: &str, problem: &str) -> bool {
    form_name == problem
        || problem.strip_prefix("incident.") == Some(form_name)
        || (form_name == "work_stopped_hours" && problem.ends_with("work_stopped_minutes"))
        || (form_name.ends_with("_at") && problem.ends_with(form_name))
        // One text per party (`obligations.<party id>`): a problem with the list is shown
        // at its first.
        || form_name
            .split_once('.')
            .is_some_and(|(list, _)| problem == list || problem.starts_with(&format!("{list}[")))
}
