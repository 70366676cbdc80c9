use std::fmt;

/// A 1-based position in the YAML source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem found in a spec: where, which field, and the rule it breaks.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Where the offending key or syntax error sits; `None` when the problem has no position
    /// (a missing field, a stage-level problem).
    pub location: Option<Location>,
    /// The spec field concerned (`d`, `w0`, ... or an unknown key); `None` for problems of the
    /// whole spec or of a derived stage.
    pub field: Option<String>,
    /// The rule broken, in words, without the position or field prefix.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            location: None,
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    pub(crate) fn general(message: impl Into<String>) -> Self {
        Diagnostic {
            location: None,
            field: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(mut self, location: Option<Location>) -> Self {
        self.location = self.location.or(location);
        self
    }
}

/// The most problems reported one by one: a spec with thousands of bad keys is one mistake
/// (the wrong file, a generated file), and a screenful says so as well as thousands of lines.
pub const MAX_REPORTED: usize = 20;

/// The most characters of a spec's text quoted in a message.
const MAX_QUOTED: usize = 60;

/// Up to [`MAX_QUOTED`] characters of the first line of `text`, escaped as in a Rust string
/// (so control characters cannot reach the terminal), with `…` where it was cut. A spec's
/// value echoed in a message goes through here: a scalar can be megabytes long.
pub fn excerpt(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut quoted: String = line.chars().take(MAX_QUOTED).collect();
    let cut = quoted.len() < line.len() || !text[line.len()..].trim().is_empty();
    quoted = quoted.escape_debug().to_string();
    if cut {
        quoted.push('…');
    }
    quoted
}

/// A spec's number as the shortest text that reads back as the same number, in scientific
/// notation when the plain form is long: `1e308`, not 309 digits.
pub fn format_number(value: f64) -> String {
    const MAX_PLAIN: usize = 16;
    let plain = value.to_string();
    if plain.len() <= MAX_PLAIN {
        plain
    } else {
        format!("{value:e}")
    }
}

/// Every problem found in one spec file. Displayed as one `file:line:column: field `x`: rule` line
/// per problem, so editors and terminals can jump to each.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecError {
    /// The spec's path as the user wrote it (or another label for in-memory sources).
    pub origin: String,
    /// The problems, those with a position first in file order, then the others.
    pub diagnostics: Vec<Diagnostic>,
}

impl SpecError {
    /// Problems with a position come first, in file order, as a reader meets them; past
    /// [`MAX_REPORTED`], one last diagnostic counts the rest.
    pub(crate) fn new(origin: &str, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
        if diagnostics.len() > MAX_REPORTED {
            let more = diagnostics.len() - MAX_REPORTED;
            diagnostics.truncate(MAX_REPORTED);
            diagnostics.push(Diagnostic::general(format!(
                "{more} more {} not shown (the first {MAX_REPORTED} are above)",
                if more == 1 { "problem" } else { "problems" }
            )));
        }
        SpecError {
            origin: origin.to_owned(),
            diagnostics,
        }
    }

    /// One line per diagnostic, each prefixed with the origin and position.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.diagnostics.iter().map(|d| {
            let mut line = self.origin.clone();
            if let Some(location) = d.location {
                line.push_str(&format!(":{location}"));
            }
            line.push_str(": ");
            if let Some(field) = &d.field {
                line.push_str(&format!("field `{}`: ", excerpt(field)));
            }
            line.push_str(&d.message);
            line
        })
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&line)?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}
