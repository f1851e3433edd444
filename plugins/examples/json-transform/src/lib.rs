//! JSON transform plugin: a small, deterministic query pipeline.
//!
//! Input: `{"data": <json>, "ops": [<op>, ...]}`. Each op works on the
//! result of the previous one; the output is the final value as canonical
//! JSON (object keys sorted, no whitespace), so every node emits the same
//! bytes. Input without an `ops` key is simply canonicalised.
//!
//! Ops (`field` is a dot path such as `"user.age"`):
//! * `{"op":"filter","field":F,"cmp":"eq|ne|gt|ge|lt|le|contains|exists","value":V}`
//! * `{"op":"pick","fields":[F, ...]}`: keep only these fields of each object
//! * `{"op":"sort","field":F,"desc":false}`: stable sort
//! * `{"op":"limit","n":N}`
//! * `{"op":"count"}`: number of elements
//! * `{"op":"sum","field":F}`: sum of the numeric values of F
//! * `{"op":"group_count","field":F}`: object mapping each value to its count

use std::cmp::Ordering;

use hal9_plugin_sdk::{Error, plugin};
use serde_json::{Map, Value};

fn run(input: &[u8]) -> Result<Vec<u8>, Error> {
    let v: Value = serde_json::from_slice(input)?;
    let out = transform(v)?;
    Ok(serde_json::to_vec(&out)?)
}

/// Applies the pipeline described by `input` (see the crate docs).
pub fn transform(input: Value) -> Result<Value, Error> {
    let Value::Object(mut obj) = input else {
        return Ok(input);
    };
    let Some(ops) = obj.remove("ops") else {
        return Ok(Value::Object(obj));
    };
    let Value::Array(ops) = ops else {
        return Err(Error::new("expected `ops` to be an array"));
    };
    let mut data = obj.remove("data").unwrap_or(Value::Null);
    for (i, op) in ops.iter().enumerate() {
        data = apply(data, op).map_err(|e| Error::new(format!("op #{i}: {}", e.message())))?;
    }
    Ok(data)
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn str_arg<'a>(op: &'a Value, key: &str) -> Result<&'a str, Error> {
    op.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new(format!("expected string `{key}`")))
}

fn array(data: Value, op: &str) -> Result<Vec<Value>, Error> {
    match data {
        Value::Array(a) => Ok(a),
        other => Err(Error::new(format!(
            "`{op}` expects an array, found {}",
            kind(&other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Total order on JSON values: null < bool < number < string < others.
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn apply(data: Value, op: &Value) -> Result<Value, Error> {
    let name = str_arg(op, "op")?;
    match name {
        "filter" => {
            let field = str_arg(op, "field")?;
            let cmp = str_arg(op, "cmp")?;
            let want = op.get("value").unwrap_or(&Value::Null);
            let keep = |item: &Value| -> Result<bool, Error> {
                let got = get(item, field);
                Ok(match (cmp, got) {
                    ("exists", g) => g.is_some(),
                    (_, None) => false,
                    ("eq", Some(g)) => compare(g, want) == Ordering::Equal,
                    ("ne", Some(g)) => compare(g, want) != Ordering::Equal,
                    ("gt", Some(g)) => {
                        rank(g) == rank(want) && compare(g, want) == Ordering::Greater
                    }
                    ("ge", Some(g)) => rank(g) == rank(want) && compare(g, want) != Ordering::Less,
                    ("lt", Some(g)) => rank(g) == rank(want) && compare(g, want) == Ordering::Less,
                    ("le", Some(g)) => {
                        rank(g) == rank(want) && compare(g, want) != Ordering::Greater
                    }
                    ("contains", Some(Value::String(s))) => {
                        want.as_str().is_some_and(|w| s.contains(w))
                    }
                    ("contains", Some(Value::Array(a))) => a.contains(want),
                    ("contains", Some(_)) => false,
                    (other, _) => {
                        return Err(Error::new(format!(
                            "expected cmp eq|ne|gt|ge|lt|le|contains|exists, found `{other}`"
                        )));
                    }
                })
            };
            let mut out = Vec::new();
            for item in array(data, name)? {
                if keep(&item)? {
                    out.push(item);
                }
            }
            Ok(Value::Array(out))
        }
        "pick" => {
            let fields: Vec<&str> = op
                .get("fields")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::new("expected array `fields`"))?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let pick = |item: &Value| {
                let mut m = Map::new();
                for f in &fields {
                    if let Some(v) = get(item, f) {
                        m.insert((*f).to_owned(), v.clone());
                    }
                }
                Value::Object(m)
            };
            match data {
                Value::Array(a) => Ok(Value::Array(a.iter().map(pick).collect())),
                other => Ok(pick(&other)),
            }
        }
        "sort" => {
            let field = str_arg(op, "field")?;
            let desc = op.get("desc").and_then(Value::as_bool).unwrap_or(false);
            let mut a = array(data, name)?;
            a.sort_by(|x, y| {
                let o = compare(
                    get(x, field).unwrap_or(&Value::Null),
                    get(y, field).unwrap_or(&Value::Null),
                );
                if desc { o.reverse() } else { o }
            });
            Ok(Value::Array(a))
        }
        "limit" => {
            let n = op
                .get("n")
                .and_then(Value::as_u64)
                .ok_or_else(|| Error::new("expected unsigned integer `n`"))?;
            let mut a = array(data, name)?;
            a.truncate(usize::try_from(n).unwrap_or(usize::MAX));
            Ok(Value::Array(a))
        }
        "count" => Ok(Value::from(array(data, name)?.len() as u64)),
        "sum" => {
            let field = str_arg(op, "field")?;
            let a = array(data, name)?;
            let mut int: Option<i64> = Some(0);
            let mut float = 0.0f64;
            for item in &a {
                if let Some(Value::Number(n)) = get(item, field) {
                    int = match (int, n.as_i64()) {
                        (Some(s), Some(x)) => s.checked_add(x),
                        _ => None,
                    };
                    float += n.as_f64().unwrap_or(0.0);
                }
            }
            Ok(match int {
                Some(i) => Value::from(i),
                None => Value::from(float),
            })
        }
        "group_count" => {
            let field = str_arg(op, "field")?;
            let mut m = Map::new();
            for item in &array(data, name)? {
                let key = match get(item, field) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "null".to_owned(),
                };
                let e = m.entry(key).or_insert(Value::from(0u64));
                *e = Value::from(e.as_u64().unwrap_or(0) + 1);
            }
            Ok(Value::Object(m))
        }
        other => Err(Error::new(format!(
            "expected op filter|pick|sort|limit|count|sum|group_count, found `{other}`"
        ))),
    }
}

plugin!(
    run,
    manifest = r#"{"abi":1,"name":"json-transform","version":"0.1.0"}"#
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pipeline_filters_sorts_and_picks() {
        let v = json!({
            "data": [
                {"name": "ann", "age": 41, "city": "Oslo"},
                {"name": "bob", "age": 29, "city": "Rome"},
                {"name": "cid", "age": 35, "city": "Oslo"}
            ],
            "ops": [
                {"op": "filter", "field": "age", "cmp": "gt", "value": 30},
                {"op": "sort", "field": "age", "desc": false},
                {"op": "pick", "fields": ["name"]}
            ]
        });
        assert_eq!(
            transform(v).unwrap(),
            json!([{"name": "cid"}, {"name": "ann"}])
        );
    }

    #[test]
    fn unknown_op_is_an_error() {
        let v = json!({"data": [], "ops": [{"op": "explode"}]});
        assert!(transform(v).unwrap_err().message().contains("explode"));
    }
}
