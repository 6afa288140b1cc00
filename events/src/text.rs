//! Free text entered by people: trimmed, bounded, free of control characters.

use serde::Serialize;

/// Maximum lengths, in characters.
pub const SHORT: usize = 200;
pub const LONG: usize = 4000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextProblem {
    pub field: &'static str,
    pub kind: TextProblemKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextProblemKind {
    Empty,
    TooLong { max: usize },
    ControlCharacters,
}

/// Checks a required text field and returns it trimmed.
pub fn required(field: &'static str, s: &str, max: usize) -> Result<String, TextProblem> {
    let t = s.trim();
    if t.is_empty() {
        return Err(TextProblem {
            field,
            kind: TextProblemKind::Empty,
        });
    }
    check(field, t, max)
}

/// Checks an optional text field; blank becomes `None`.
pub fn optional(
    field: &'static str,
    s: Option<&str>,
    max: usize,
) -> Result<Option<String>, TextProblem> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => check(field, t, max).map(Some),
    }
}

fn check(field: &'static str, t: &str, max: usize) -> Result<String, TextProblem> {
    if t.chars().count() > max {
        return Err(TextProblem {
            field,
            kind: TextProblemKind::TooLong { max },
        });
    }
    // Line breaks and tabs are normal in minutes; other control characters are not text.
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(TextProblem {
            field,
            kind: TextProblemKind::ControlCharacters,
        });
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert_eq!(required("summary", "  屋顶漏水  ", 10).unwrap(), "屋顶漏水");
        assert_eq!(
            required("summary", "   ", 10).unwrap_err().kind,
            TextProblemKind::Empty
        );
        assert_eq!(
            required("summary", "一二三四五六七八九十十一", 10)
                .unwrap_err()
                .kind,
            TextProblemKind::TooLong { max: 10 }
        );
        assert_eq!(
            required("summary", "a\u{0}b", 10).unwrap_err().kind,
            TextProblemKind::ControlCharacters
        );
        assert_eq!(optional("note", Some(" "), 10).unwrap(), None);
        assert_eq!(
            required("minutes", "第一行\n第二行", 10).unwrap(),
            "第一行\n第二行"
        );
    }
}
