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
    /// Problems with a position come first, in file order, as a reader meets them.
    pub(crate) fn new(origin: &str, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
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
                line.push_str(&format!("field `{field}`: "));
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
