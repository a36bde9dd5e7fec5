//! Reading TOML files into typed sections while collecting every problem.
//!
//! serde stops at the first error, but operators want every problem in every
//! file at once. So a document is parsed once into a spanned tree, and each
//! section (and each element of an array of tables) is deserialized on its
//! own: a bad `[assign]` does not hide a bad `[[act]]`. Unknown keys are
//! collected with `serde_ignored` and located in the spanned tree.

use crate::diag::{Diagnostic, Source, file_error};
use serde::de::DeserializeOwned;
use serde_spanned::Spanned;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// Reads a file as UTF-8 text, reporting unreadable or non-UTF-8 files with a position.
pub(crate) fn read_source(path: &Path) -> Result<Source, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, 1, 1, format!("cannot read file: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(path, text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let (line, col) = crate::diag::position_in(&text, valid);
            Err(file_error(path, line, col, "file is not valid UTF-8: save it as UTF-8 text"))
        }
    }
}

/// A parsed document: the spanned tree plus its source, ready for sections.
pub(crate) struct Document<'s> {
    pub source: &'s Source,
    pub root: DeTable<'s>,
}

/// Parses TOML syntax, reporting every syntax error the parser can recover from.
pub(crate) fn parse<'s>(source: &'s Source) -> Result<Document<'s>, Vec<Diagnostic>> {
    let (root, errors) = DeTable::parse_recoverable(&source.text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| source.at(e.span().unwrap_or(0..0), format!("TOML syntax: {}", first_line(e.message()))))
            .collect());
    }
    Ok(Document { source, root: root.into_inner() })
}

/// Rewrites serde's type-error wording in TOML terms: "expected struct
/// ReportPhase" names a Rust type the operator has never seen.
fn plain_type_error(msg: &str) -> String {
    let mut out = msg.to_string();
    if let Some(i) = out.find("expected struct ") {
        let rest = &out[i + "expected struct ".len()..];
        let end = rest.find(|c: char| !c.is_alphanumeric() && c != '_').unwrap_or(rest.len());
        out.replace_range(i..i + "expected struct ".len() + end, "expected a table");
    }
    out.replace("expected a sequence", "expected an array (written [ ... ])")
        .replace("expected a map", "expected a table, like { key = \"value\" }")
        .replace("expected u32", "expected a whole number")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

impl<'s> Document<'s> {
    /// Top-level keys with their spans, in file order.
    pub(crate) fn keys(&self) -> Vec<(String, Range<usize>)> {
        let mut keys: Vec<_> = self.root.iter().map(|(k, _)| (k.get_ref().to_string(), k.span())).collect();
        keys.sort_by_key(|(_, span)| span.start);
        keys
    }

    /// The raw spanned value under a top-level key.
    pub(crate) fn get(&self, key: &str) -> Option<&Spanned<DeValue<'s>>> {
        self.root.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
    }

    /// Span of a top-level key (for "missing"/"duplicate" messages).
    pub(crate) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.root.iter().find(|(k, _)| k.get_ref() == key).map(|(k, _)| k.span())
    }

    /// Deserializes one value into `T`, pushing type errors and unknown keys
    /// (named with `context`, e.g. `[assign]`) into `diags`.
    pub(crate) fn section<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'s>>,
        context: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<T> {
        let mut unknown: Vec<Vec<Seg>> = Vec::new();
        let de = ValueDeserializer::from(value.clone());
        let result: Result<T, _> = serde_ignored::deserialize(de, |path| unknown.push(segments(&path)));
        for path in unknown {
            let (span, name) = locate(value, &path);
            diags.push(
                self.source.at(span, format!("unknown key `{name}` in {context}: remove it or check its spelling")),
            );
        }
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or(value.span());
                diags.push(self.source.at(span, format!("{context}: {}", plain_type_error(first_line(e.message())))));
                None
            }
        }
    }

    /// Deserializes each element of an array of tables on its own.
    pub(crate) fn array_of<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'s>>,
        context: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Vec<Option<T>> {
        match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.section(item, &format!("{context} #{}", i + 1), diags))
                .collect(),
            _ => {
                diags.push(self.source.at(value.span(), format!("{context} must be an array of tables, like [[act]]")));
                Vec::new()
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path as P;
    let mut out = Vec::new();
    let mut cur = path;
    loop {
        match cur {
            P::Root => break,
            P::Seq { parent, index } => {
                out.push(Seg::Index(*index));
                cur = parent;
            }
            // A `Spanned` table is read through a map holding it under this
            // key, which is no key of the file: an unknown key inside it is
            // named by the file's keys alone.
            P::Map { parent, key } if key == "$__serde_spanned_private_value" => cur = parent,
            P::Map { parent, key } => {
                out.push(Seg::Key(key.clone()));
                cur = parent;
            }
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => cur = parent,
        }
    }
    out.reverse();
    out
}

/// Finds the span of the key at `path` (or the closest enclosing value).
fn locate(value: &Spanned<DeValue<'_>>, path: &[Seg]) -> (Range<usize>, String) {
    let mut cur = value;
    let mut span = value.span();
    let mut name = String::from("?");
    for seg in path {
        match (seg, cur.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => match t.iter().find(|(key, _)| key.get_ref() == k) {
                Some((key, v)) => {
                    span = key.span();
                    name = k.clone();
                    cur = v;
                }
                None => {
                    name = k.clone();
                    break;
                }
            },
            (Seg::Index(i), DeValue::Array(a)) => match a.get(*i) {
                Some(v) => {
                    span = v.span();
                    cur = v;
                }
                None => break,
            },
            (Seg::Key(k), _) => {
                name = k.clone();
                break;
            }
            _ => break,
        }
    }
    (span, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Inner {
        #[allow(dead_code)]
        a: u32,
        b: Option<Spanned<String>>,
    }

    #[test]
    fn unknown_keys_and_type_errors_are_positioned() {
        let src = Source::new("x.toml", "[one]\na = 1\nzz = 2\n[two]\na = \"no\"\n");
        let doc = parse(&src).unwrap();
        let mut diags = Vec::new();
        let one: Option<Inner> = doc.section(doc.get("one").unwrap(), "[one]", &mut diags);
        assert!(one.is_some());
        let two: Option<Inner> = doc.section(doc.get("two").unwrap(), "[two]", &mut diags);
        assert!(two.is_none());
        let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(text[0], "x.toml:3:1: unknown key `zz` in [one]: remove it or check its spelling");
        assert!(text[1].starts_with("x.toml:5:5: [two]: invalid type"), "{}", text[1]);
    }

    #[test]
    fn spanned_values_keep_positions() {
        let src = Source::new("x.toml", "[one]\na = 1\nb = \"hey\"\n");
        let doc = parse(&src).unwrap();
        let mut diags = Vec::new();
        let one: Inner = doc.section(doc.get("one").unwrap(), "[one]", &mut diags).unwrap();
        let b = one.b.unwrap();
        assert_eq!(src.position(b.span().start), (3, 5));
        assert_eq!(b.get_ref(), "hey");
    }

    #[test]
    fn syntax_errors_are_positioned() {
        let src = Source::new("x.toml", "a = 1\nb = = 2\n");
        let errs = parse(&src).err().unwrap();
        assert_eq!(errs[0].line, 2);
    }

    #[test]
    fn non_utf8_is_reported_with_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, b"a = 1\nb = \"\xff\"\n").unwrap();
        let d = read_source(&p).unwrap_err();
        assert_eq!((d.line, d.col), (2, 6));
        assert!(d.message.contains("UTF-8"));
    }
}
