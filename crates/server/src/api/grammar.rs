//! Structured output in a request: OpenAI's `response_format` (`text`, `json_object`,
//! `json_schema`), and two extensions — `grammar: {"type": "lark" | "regex", "value"}` and
//! llama-server's top-level `json_schema` — read into the one [`GrammarRequest`] a request
//! may carry. Only shapes are checked here; whether a schema or grammar compiles is decided
//! by `crate::grammar` against the model's vocabulary, and its errors name the same field.

use kaiyuan_grammar::GrammarSpec;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// What a request constrains its output to, and the field it came from (for errors).
#[derive(Clone, Debug, PartialEq)]
pub struct GrammarRequest {
    pub spec: GrammarSpec,
    /// The request field errors about this grammar name, e.g.
    /// `response_format.json_schema.schema`.
    pub param: String,
    /// What the grammar describes: the answer (`response_format`, `json_schema`: a reasoning
    /// model answers at once, with no reasoning block) or the whole output (`grammar`:
    /// a reasoning block, if wanted, is part of it).
    pub answer_only: bool,
}

/// Reads the grammar fields; at most one of them may ask for a constraint.
pub fn grammar_request(
    response_format: Option<&Value>,
    grammar: Option<&Value>,
    json_schema: Option<&Value>,
) -> Result<Option<GrammarRequest>, ApiError> {
    let mut found = Vec::new();
    if let Some(g) = response_format_grammar(response_format)? {
        found.push(g);
    }
    if let Some(g) = extension_grammar(grammar)? {
        found.push(g);
    }
    match json_schema {
        None | Some(Value::Null) => {}
        Some(schema) => found.push(GrammarRequest {
            spec: GrammarSpec::JsonSchema {
                schema: schema.clone(),
                strict: false,
            },
            param: "json_schema".into(),
            answer_only: true,
        }),
    }
    if found.len() > 1 {
        return Err(ApiError::invalid(
            &found[1].param,
            format!(
                "`{}` and `{}` both constrain the output; give only one",
                found[0].param, found[1].param
            ),
        ));
    }
    Ok(found.pop())
}

fn object<'a>(value: &'a Value, param: &str) -> Result<&'a Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| ApiError::invalid(param, format!("{param} must be an object")))
}

fn response_format_grammar(value: Option<&Value>) -> Result<Option<GrammarRequest>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let format = object(value, "response_format")?;
    let kind = match format.get("type") {
        Some(Value::String(s)) => s.as_str(),
        None => {
            return Err(ApiError::invalid(
                "response_format.type",
                "response_format needs a `type`: text, json_object or json_schema",
            ))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "response_format.type",
                "response_format.type must be a string",
            ))
        }
    };
    let spec = match kind {
        "text" => return Ok(None),
        "json_object" => GrammarSpec::JsonObject,
        "json_schema" => {
            let param = "response_format.json_schema";
            let js = object(
                format.get("json_schema").ok_or_else(|| {
                    ApiError::invalid(
                        param,
                        "response_format of type json_schema needs a `json_schema` object",
                    )
                })?,
                param,
            )?;
            if let Some(name) = js.get("name") {
                let ok = name.as_str().is_some_and(|n| {
                    !n.is_empty()
                        && n.len() <= 64
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
                if !ok {
                    return Err(ApiError::invalid(
                        format!("{param}.name"),
                        "the schema's name must be 1..=64 characters of a-z, A-Z, 0-9, _ and -",
                    ));
                }
            }
            let strict = match js.get("strict") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(ApiError::invalid(
                        format!("{param}.strict"),
                        "strict must be a boolean",
                    ))
                }
            };
            let schema = match js.get("schema") {
                None | Some(Value::Null) => {
                    return Err(ApiError::invalid(
                        format!("{param}.schema"),
                        "response_format.json_schema needs a `schema`",
                    ))
                }
                Some(s) => s.clone(),
            };
            return Ok(Some(GrammarRequest {
                spec: GrammarSpec::JsonSchema { schema, strict },
                param: format!("{param}.schema"),
                answer_only: true,
            }));
        }
        other => {
            return Err(ApiError::invalid(
                "response_format.type",
                format!(
                "unknown response_format type `{other}`; expected text, json_object or json_schema"
            ),
            ))
        }
    };
    Ok(Some(GrammarRequest {
        spec,
        param: "response_format".into(),
        answer_only: true,
    }))
}

fn extension_grammar(value: Option<&Value>) -> Result<Option<GrammarRequest>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let g = object(value, "grammar")?;
    let text = match g.get("value") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(ApiError::invalid(
                "grammar.value",
                "grammar.value must be a string: the grammar's source",
            ))
        }
    };
    let spec = match g.get("type").and_then(Value::as_str) {
        Some("lark") => GrammarSpec::Lark(text),
        Some("regex") => GrammarSpec::Regex(text),
        _ => {
            return Err(ApiError::invalid(
                "grammar.type",
                "grammar.type must be `lark` or `regex`",
            ))
        }
    };
    Ok(Some(GrammarRequest {
        spec,
        param: "grammar.value".into(),
        answer_only: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param_of(rf: Value) -> String {
        match grammar_request(Some(&rf), None, None) {
            Err(ApiError::Invalid { param, .. }) => param.unwrap_or_default(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn response_format_shapes() {
        assert_eq!(
            grammar_request(Some(&json!({"type": "text"})), None, None).unwrap(),
            None
        );
        let g = grammar_request(Some(&json!({"type": "json_object"})), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(g.spec, GrammarSpec::JsonObject);
        let g = grammar_request(
            Some(&json!({"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": true}})),
            None,
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            g.spec,
            GrammarSpec::JsonSchema {
                schema: json!({"type": "object"}),
                strict: true
            }
        );
        assert_eq!(g.param, "response_format.json_schema.schema");
    }

    #[test]
    fn bad_shapes_name_their_field() {
        assert_eq!(param_of(json!("json")), "response_format");
        assert_eq!(param_of(json!({})), "response_format.type");
        assert_eq!(param_of(json!({"type": "xml"})), "response_format.type");
        assert_eq!(
            param_of(json!({"type": "json_schema"})),
            "response_format.json_schema"
        );
        assert_eq!(
            param_of(json!({"type": "json_schema", "json_schema": {"name": "x"}})),
            "response_format.json_schema.schema"
        );
        assert_eq!(
            param_of(json!({"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}})),
            "response_format.json_schema.name"
        );
        assert_eq!(
            param_of(
                json!({"type": "json_schema", "json_schema": {"schema": {}, "strict": "yes"}})
            ),
            "response_format.json_schema.strict"
        );
    }

    #[test]
    fn extensions_and_conflicts() {
        let g = grammar_request(None, Some(&json!({"type": "regex", "value": "a+"})), None)
            .unwrap()
            .unwrap();
        assert_eq!(g.spec, GrammarSpec::Regex("a+".into()));
        let g = grammar_request(None, None, Some(&json!({"type": "integer"})))
            .unwrap()
            .unwrap();
        assert_eq!(g.param, "json_schema");
        match grammar_request(None, Some(&json!({"type": "ebnf", "value": "x"})), None) {
            Err(ApiError::Invalid { param, .. }) => {
                assert_eq!(param.as_deref(), Some("grammar.type"))
            }
            other => panic!("{other:?}"),
        }
        match grammar_request(
            Some(&json!({"type": "json_object"})),
            None,
            Some(&json!({"type": "integer"})),
        ) {
            Err(ApiError::Invalid { param, .. }) => {
                assert_eq!(param.as_deref(), Some("json_schema"))
            }
            other => panic!("{other:?}"),
        }
    }
}
