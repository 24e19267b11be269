//! The minijinja environment configured like transformers' chat-template Jinja2 environment:
//! `trim_blocks` and `lstrip_blocks` on, no trailing newline kept, loop controls, Python string
//! and dict methods (minijinja-contrib's pycompat), and transformers' globals and filters
//! (`raise_exception`, `strftime_now`, `tojson` with Python's `json.dumps` output, `dict`).
//! Printed values follow Python's `str()` (`None`, `True`, `['a']`), as Jinja2 prints them.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::pyjson::{self, JsonStyle};
use crate::strftime::CivilTime;

/// Name of the context variable that carries the clock for `strftime_now` (unix seconds); set by
/// [`crate::ChatTemplate::render`] so renders can be reproducible.
pub(crate) const NOW_VARIABLE: &str = "__kaiyuan_now_unix";

/// The error a template's `raise_exception(message)` produces; found again in the error's source
/// chain so it becomes [`crate::ChatError::Raised`].
#[derive(Debug)]
pub(crate) struct RaisedByTemplate(pub String);

impl fmt::Display for RaisedByTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RaisedByTemplate {}

pub(crate) fn build() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .expect("invariant: the default delimiters are a valid syntax"),
    );
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(
        |state, value, method, args| match (value.as_str(), method) {
            (Some(text), "rsplit") => rsplit(text, args),
            _ => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
        },
    );
    env.set_formatter(|out, _state, value| {
        out.write_str(&pyjson::python_str(value))
            .map_err(|_| Error::new(ErrorKind::WriteFailure, "write failed"))
    });
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env.add_function("dict", dict);
    env.add_filter("tojson", tojson);
    env
}

/// Python's `str.rsplit(sep=None, maxsplit=-1)` (pycompat has `split` but not `rsplit`).
fn rsplit(text: &str, args: &[Value]) -> Result<Value, Error> {
    let sep = args.first().filter(|v| !v.is_none());
    let max_split = match args.get(1) {
        Some(v) => i64::try_from(v.clone())?,
        None => -1,
    };
    let limit = if max_split < 0 {
        usize::MAX
    } else {
        max_split as usize
    };
    let mut parts: Vec<String> = Vec::new();
    match sep {
        Some(sep) => {
            let sep = sep.as_str().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "rsplit separator must be a string",
                )
            })?;
            if sep.is_empty() {
                return Err(Error::new(ErrorKind::InvalidOperation, "empty separator"));
            }
            let mut rest = text;
            while parts.len() < limit {
                match rest.rfind(sep) {
                    Some(at) => {
                        parts.push(rest[at + sep.len()..].to_string());
                        rest = &rest[..at];
                    }
                    None => break,
                }
            }
            parts.push(rest.to_string());
        }
        None => {
            let mut rest = text.trim_end();
            while !rest.is_empty() {
                if parts.len() == limit {
                    parts.push(rest.to_string());
                    break;
                }
                match rest.rfind(char::is_whitespace) {
                    Some(at) => {
                        let ws_len = rest[at..].chars().next().map_or(1, char::len_utf8);
                        parts.push(rest[at + ws_len..].to_string());
                        rest = rest[..at].trim_end();
                    }
                    None => {
                        parts.push(rest.to_string());
                        rest = "";
                    }
                }
            }
        }
    }
    parts.reverse();
    Ok(Value::from(parts))
}

fn raise_exception(message: Option<Value>) -> Result<Value, Error> {
    let message = message.map(|m| pyjson::python_str(&m)).unwrap_or_default();
    Err(Error::new(ErrorKind::InvalidOperation, message.clone())
        .with_source(RaisedByTemplate(message)))
}

fn strftime_now(state: &State, format: &str) -> Result<Value, Error> {
    let now = match state
        .lookup(NOW_VARIABLE)
        .and_then(|v| i64::try_from(v).ok())
    {
        Some(seconds) => seconds,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, "system clock is before 1970"))?,
    };
    Ok(Value::from(CivilTime::from_unix(now).format(format)))
}

/// `dict(**kwargs)` / `dict(mapping)`: a new map.
fn dict(args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let mut ordered: Vec<(Value, Value)> = Vec::new();
    for arg in args.iter() {
        if arg.kind() != ValueKind::Map {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "dict() takes a mapping",
            ));
        }
        for key in arg.try_iter()? {
            let value = arg.get_item(&key)?;
            ordered.push((key, value));
        }
    }
    for name in kwargs.args() {
        let value: Value = kwargs.get(name)?;
        ordered.push((Value::from(name), value));
    }
    Ok(Value::from_pairs(ordered))
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
fn tojson(value: Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let positional = |i: usize, name: &str| -> Result<Option<Value>, Error> {
        match (args.get(i), kwargs.get::<Option<Value>>(name)?) {
            (Some(_), Some(_)) => Err(Error::new(
                ErrorKind::TooManyArguments,
                format!("tojson got {name} twice"),
            )),
            (Some(v), None) => Ok(Some(v.clone())),
            (None, v) => Ok(v),
        }
    };
    if args.len() > 4 {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments",
        ));
    }
    let ensure_ascii = positional(0, "ensure_ascii")?.is_some_and(|v| v.is_true());
    let indent = match positional(1, "indent")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.kind() == ValueKind::String => {
            Some(v.as_str().unwrap_or_default().to_string())
        }
        Some(v) => match i64::try_from(v.clone()) {
            Ok(n) => Some(" ".repeat(n.max(0) as usize)),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson indent must be an int or a string",
                ))
            }
        },
    };
    let separators = positional(2, "separators")?;
    let sort_keys = positional(3, "sort_keys")?.is_some_and(|v| v.is_true());
    kwargs.assert_all_used()?;
    let mut style = JsonStyle::new(ensure_ascii, indent, sort_keys);
    if let Some(seps) = separators.filter(|v| !v.is_none()) {
        let parts: Vec<Value> = seps.try_iter()?.collect();
        match parts.as_slice() {
            [item, key] if item.as_str().is_some() && key.as_str().is_some() => {
                style.item_separator = item.as_str().unwrap_or_default().to_string();
                style.key_separator = key.as_str().unwrap_or_default().to_string();
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson separators must be two strings",
                ))
            }
        }
    }
    Ok(Value::from(pyjson::dumps(&value, &style)?))
}
