//! One pass over the YAML events of a spec, before serde_yaml loads it: where each top-level key
//! sits, and the constructs a spec never needs that would make loading it slow or its meaning
//! unclear (deep nesting, aliases, tags).
//!
//! It runs on libyaml-rs, the parser serde_yaml itself uses, so both see the same events and the
//! same positions. serde_yaml alone cannot do this: its values carry no positions, and the only
//! position it reports is that of an error, so locating n keys through it re-parses the file n
//! times. Nor can it bound nesting before parsing: libyaml's scanner does work proportional to
//! the nesting depth for each token, so a line of 200,000 `[` costs minutes.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::ptr::{NonNull, addr_of_mut};

use libyaml_rs as sys;

use crate::diagnostics::{Diagnostic, Location, excerpt};

/// The deepest nesting of lists and mappings read. A spec's values are scalars or flat lists
/// (depth 2 under the top-level mapping); the bound stops the scan long before its per-token
/// cost grows.
const MAX_NESTING: usize = 32;

/// The most nodes (scalars, lists, mappings) read. A valid spec has fewer than 4,200: at most
/// 18 keys and their values, and four per-stage lists of at most MAX_DEPTH entries. Reading
/// stops well past that, so a megabyte of keys or list entries costs milliseconds, not seconds
/// (and serde_yaml, which takes about 0.2 s for a megabyte of list entries, never sees them).
const MAX_NODES: usize = 8192;

/// The tags of the YAML core schema, which serde_yaml resolves; any other tag would be dropped
/// silently, so it is refused.
const CORE_TAGS: [&str; 7] = ["str", "int", "float", "bool", "null", "seq", "map"];
const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// What the pass found. Problems that make loading slow or unbounded (too deep a nesting, too
/// many nodes, aliases) come with `loadable == false`; tags leave the document loadable.
pub(crate) struct Outline {
    /// Where each top-level key of the document's mapping sits.
    pub keys: HashMap<String, Location>,
    /// Top-level fields whose value has a problem reported here; their values are not checked
    /// again.
    pub flagged: Vec<String>,
    pub problems: Vec<Diagnostic>,
    /// `false` when serde_yaml must not load the document (it would be slow or explode).
    pub loadable: bool,
}

/// Scans `source`, a spec whose mapping has `fields` known keys (for the message when it has
/// far more nodes). A YAML syntax error ends the scan quietly: serde_yaml reports it, with the
/// same position, when it loads the document.
pub(crate) fn outline(source: &str, fields: usize) -> Outline {
    let mut outline = Outline {
        keys: HashMap::new(),
        flagged: Vec::new(),
        problems: Vec::new(),
        loadable: true,
    };
    let mut parser = EventParser::new(source);
    // One entry per open collection: `Some(expecting_key)` for a mapping, `None` for a list.
    let mut open: Vec<Option<bool>> = Vec::new();
    // The top-level key whose value is being read.
    let mut field: Option<String> = None;
    let mut nodes = 0;
    while let Some(event) = parser.next() {
        if !matches!(event.kind, Kind::End) {
            nodes += 1;
            if nodes > MAX_NODES {
                let message = format!(
                    "the spec has more than {MAX_NODES} keys, values and lists; a spec has at most \
                     {fields} fields and {} entries per list",
                    crate::MAX_DEPTH
                );
                outline.report(field.as_deref(), message, event.location);
                outline.loadable = false;
                return outline;
            }
        }
        let at_top_key = open.len() == 1 && open[0] == Some(true);
        if at_top_key {
            field = match &event.kind {
                Kind::Scalar(key) => Some(key.clone()),
                _ => None,
            };
        }
        if let Some(tag) = &event.tag {
            let core = tag
                .strip_prefix(CORE_TAG_PREFIX)
                .is_some_and(|name| CORE_TAGS.contains(&name));
            if !core {
                let message = format!(
                    "the YAML tag `{}` is not supported; a spec's values are plain numbers, \
                     strings, booleans and lists",
                    excerpt(tag)
                );
                outline.report(field.as_deref(), message, event.location);
            }
        }
        match event.kind {
            Kind::Scalar(key) if at_top_key => {
                outline.keys.entry(key).or_insert(event.location);
            }
            Kind::Scalar(_) => {}
            Kind::Alias => {
                outline.report(
                    field.as_deref(),
                    "YAML aliases (`*name`) are not supported in a spec; write the value out"
                        .into(),
                    event.location,
                );
                outline.loadable = false;
            }
            Kind::Start { mapping } => {
                if open.len() == MAX_NESTING {
                    let message = format!(
                        "lists and mappings nest more than {MAX_NESTING} levels deep here; a \
                         spec's values are numbers, strings or flat lists"
                    );
                    outline.report(field.as_deref(), message, event.location);
                    outline.loadable = false;
                    return outline;
                }
                open.push(mapping.then_some(true));
                continue;
            }
            Kind::End => {
                open.pop();
            }
        }
        // A whole node (a scalar, an alias or a closed collection) has been read: in a mapping,
        // keys and values alternate.
        if let Some(Some(expecting_key)) = open.last_mut() {
            *expecting_key = !*expecting_key;
        }
    }
    outline
}

impl Outline {
    fn report(&mut self, field: Option<&str>, message: String, location: Location) {
        let diagnostic = match field {
            Some(field) => {
                self.flagged.push(field.to_owned());
                Diagnostic::field(field, message)
            }
            None => Diagnostic::general(message),
        };
        self.problems.push(diagnostic.at(Some(location)));
    }
}

struct Event {
    kind: Kind,
    tag: Option<String>,
    location: Location,
}

enum Kind {
    Scalar(String),
    Alias,
    /// A list or mapping begins.
    Start {
        mapping: bool,
    },
    /// A list or mapping ends.
    End,
}

/// libyaml-rs's event parser over a string, as an iterator of the events that matter here.
struct EventParser<'input> {
    // Boxed because the parser keeps a pointer to itself (its read handler's data).
    parser: Box<sys::yaml_parser_t>,
    _input: std::marker::PhantomData<&'input str>,
}

impl<'input> EventParser<'input> {
    fn new(input: &'input str) -> Self {
        let mut parser: Box<MaybeUninit<sys::yaml_parser_t>> = Box::new_uninit();
        // SAFETY: `yaml_parser_initialize` fully initializes the parser (it only fails when
        // allocation fails, and libyaml-rs's allocator aborts instead). The input outlives the
        // parser ('input), and the parser does not move after the input is set (it is boxed).
        unsafe {
            let raw = parser.as_mut_ptr();
            let initialized = sys::yaml_parser_initialize(raw);
            assert!(initialized.ok, "libyaml-rs could not initialize a parser");
            sys::yaml_parser_set_encoding(raw, sys::YAML_UTF8_ENCODING);
            sys::yaml_parser_set_input_string(raw, input.as_ptr(), input.len() as u64);
            EventParser {
                parser: parser.assume_init(),
                _input: std::marker::PhantomData,
            }
        }
    }

    /// The next event, or `None` at the end of the stream or at a syntax error.
    fn next(&mut self) -> Option<Event> {
        loop {
            let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
            // SAFETY: the parser is initialized; on success `yaml_parser_parse` initializes the
            // event, whose union fields are read according to its type and which is deleted
            // before the next one is parsed.
            unsafe {
                if sys::yaml_parser_parse(addr_of_mut!(*self.parser), event.as_mut_ptr()).fail {
                    return None;
                }
                let event = event.assume_init_mut();
                let mark = event.start_mark;
                let location = Location {
                    line: mark.line as usize + 1,
                    column: mark.column as usize + 1,
                };
                let converted = match event.type_ {
                    // libyaml answers an empty event once the stream has ended.
                    sys::YAML_STREAM_END_EVENT | sys::YAML_NO_EVENT => {
                        sys::yaml_event_delete(event);
                        return None;
                    }
                    sys::YAML_SCALAR_EVENT => {
                        let scalar = event.data.scalar;
                        let value: &[u8] = match NonNull::new(scalar.value) {
                            Some(value) => {
                                std::slice::from_raw_parts(value.as_ptr(), scalar.length as usize)
                            }
                            None => &[],
                        };
                        Some((
                            Kind::Scalar(String::from_utf8_lossy(value).into_owned()),
                            c_string(scalar.tag),
                        ))
                    }
                    sys::YAML_ALIAS_EVENT => Some((Kind::Alias, None)),
                    sys::YAML_SEQUENCE_START_EVENT => Some((
                        Kind::Start { mapping: false },
                        c_string(event.data.sequence_start.tag),
                    )),
                    sys::YAML_MAPPING_START_EVENT => Some((
                        Kind::Start { mapping: true },
                        c_string(event.data.mapping_start.tag),
                    )),
                    sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => {
                        Some((Kind::End, None))
                    }
                    _ => None,
                };
                sys::yaml_event_delete(event);
                if let Some((kind, tag)) = converted {
                    return Some(Event {
                        kind,
                        tag,
                        location,
                    });
                }
            }
        }
    }
}

impl Drop for EventParser<'_> {
    fn drop(&mut self) {
        // SAFETY: the parser was initialized in `new` and is deleted once.
        unsafe { sys::yaml_parser_delete(addr_of_mut!(*self.parser)) }
    }
}

/// A NUL-terminated string from libyaml, or `None` for a null pointer.
///
/// # Safety
/// `pointer` is null or points to a NUL-terminated string.
unsafe fn c_string(pointer: *mut u8) -> Option<String> {
    let pointer = NonNull::new(pointer)?;
    // SAFETY: the caller's contract.
    let text = unsafe { std::ffi::CStr::from_ptr(pointer.as_ptr().cast()) };
    Some(text.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_in_block_and_flow_style() {
        let block = outline("# comment\nd: 13\n  \nw0: [24, {a: 1}]\n'wa': 3\n", 18);
        assert_eq!(block.keys["w0"], Location { line: 4, column: 1 });
        assert_eq!(block.keys["wa"], Location { line: 5, column: 1 });
        assert_eq!(block.keys.len(), 3, "nested keys are not top-level keys");
        let flow = outline("{d: 13, w0: 24}", 18);
        assert_eq!(flow.keys["w0"], Location { line: 1, column: 9 });
        assert!(!flow.keys.contains_key("wa"));
    }
}
