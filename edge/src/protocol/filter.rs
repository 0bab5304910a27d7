//! Publication tag filters (`SubscribeRequest.tf`): a tree of comparisons on a publication's
//! `tags`, evaluated per subscriber on live delivery and recovery (Centrifugo's semantics: a
//! missing tag reads as `""`; numeric comparisons need both sides to be decimals).

use std::collections::HashMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Limits Centrifugo does not set; a client must not make every publication expensive.
const MAX_NODES: usize = 64;
const MAX_DEPTH: usize = 8;
const MAX_VALS: usize = 64;

/// One node: a comparison (`op` empty) or `and` / `or` / `not` over `nodes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilterNode {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cmp: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub val: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vals: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<FilterNode>,
}

impl FilterNode {
    /// Checks the tree once, at subscribe; `Err` says what is wrong (the client gets 107).
    pub fn validate(&self) -> Result<(), String> {
        let mut count = 0;
        self.check(1, &mut count)
    }

    fn check(&self, depth: usize, count: &mut usize) -> Result<(), String> {
        *count += 1;
        if depth > MAX_DEPTH || *count > MAX_NODES {
            return Err(format!("filter deeper than {MAX_DEPTH} or larger than {MAX_NODES} nodes"));
        }
        match self.op.as_str() {
            "" => self.check_leaf(),
            "and" | "or" if self.nodes.is_empty() => Err(format!("`{}` needs at least one node", self.op)),
            "not" if self.nodes.len() != 1 => Err("`not` needs exactly one node".into()),
            "and" | "or" | "not" => self.nodes.iter().try_for_each(|n| n.check(depth + 1, count)),
            op => Err(format!("unknown op {op:?}")),
        }
    }

    fn check_leaf(&self) -> Result<(), String> {
        let single = matches!(self.cmp.as_str(), "eq" | "neq" | "sw" | "ew" | "ct" | "gt" | "gte" | "lt" | "lte");
        let list = matches!(self.cmp.as_str(), "in" | "nin");
        let exists = matches!(self.cmp.as_str(), "ex" | "nex");
        if !(single || list || exists) {
            return Err(format!("unknown cmp {:?}", self.cmp));
        }
        if self.key.is_empty() && !exists {
            return Err(format!("`{}` needs a key", self.cmp));
        }
        match (single, list) {
            (true, _) if self.val.is_empty() || !self.vals.is_empty() => {
                Err(format!("`{}` needs `val` and no `vals`", self.cmp))
            }
            (_, true) if self.vals.is_empty() || !self.val.is_empty() || self.vals.len() > MAX_VALS => {
                Err(format!("`{}` needs 1 to {MAX_VALS} `vals` and no `val`", self.cmp))
            }
            (false, false) if !self.val.is_empty() || !self.vals.is_empty() => {
                Err(format!("`{}` takes no `val` or `vals`", self.cmp))
            }
            _ => Ok(()),
        }
    }

    /// Whether a publication with `tags` passes (call on validated filters only).
    pub fn matches(&self, tags: &HashMap<String, String>) -> bool {
        match self.op.as_str() {
            "and" => self.nodes.iter().all(|n| n.matches(tags)),
            "or" => self.nodes.iter().any(|n| n.matches(tags)),
            "not" => self.nodes.first().is_some_and(|n| !n.matches(tags)),
            _ => self.compare(tags),
        }
    }

    fn compare(&self, tags: &HashMap<String, String>) -> bool {
        let found = tags.get(&self.key);
        let value = found.map_or("", String::as_str);
        let numeric = |want: fn(std::cmp::Ordering) -> bool| {
            found.is_some()
                && match (decimal(value), decimal(&self.val)) {
                    (Some(a), Some(b)) => want(a.cmp(&b)),
                    _ => false,
                }
        };
        match self.cmp.as_str() {
            "eq" => found.is_some() && value == self.val,
            "neq" => found.is_none() || value != self.val,
            "in" => self.vals.iter().any(|v| v == value),
            "nin" => !self.vals.iter().any(|v| v == value),
            "ex" => found.is_some(),
            "nex" => found.is_none(),
            "sw" => found.is_some() && value.starts_with(&self.val),
            "ew" => found.is_some() && value.ends_with(&self.val),
            "ct" => found.is_some() && value.contains(&self.val),
            "gt" => numeric(|o| o.is_gt()),
            "gte" => numeric(|o| o.is_ge()),
            "lt" => numeric(|o| o.is_lt()),
            "lte" => numeric(|o| o.is_le()),
            _ => false,
        }
    }
}

/// A plain decimal (`-12`, `100.50`); no exponents, which Centrifugo does not read either.
fn decimal(text: &str) -> Option<rust_decimal::Decimal> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    rust_decimal::Decimal::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> FilterNode {
        let f: FilterNode = serde_json::from_value(v).unwrap();
        f.validate().unwrap();
        f
    }

    fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn comparisons_follow_centrifugo() {
        let t = tags(&[("ticker", "AAPL"), ("price", "100.50"), ("name", "apple inc")]);
        let yes = |v: serde_json::Value| assert!(node(v.clone()).matches(&t), "{v}");
        let no = |v: serde_json::Value| assert!(!node(v.clone()).matches(&t), "{v}");
        yes(json!({"key": "ticker", "cmp": "eq", "val": "AAPL"}));
        no(json!({"key": "missing", "cmp": "eq", "val": "x"}));
        yes(json!({"key": "missing", "cmp": "neq", "val": "x"}));
        yes(json!({"key": "ticker", "cmp": "in", "vals": ["MSFT", "AAPL"]}));
        no(json!({"key": "missing", "cmp": "in", "vals": ["x"]}));
        yes(json!({"key": "missing", "cmp": "in", "vals": ["x", ""]}));
        yes(json!({"key": "missing", "cmp": "nin", "vals": ["x"]}));
        yes(json!({"key": "ticker", "cmp": "ex"}));
        yes(json!({"key": "missing", "cmp": "nex"}));
        yes(json!({"key": "name", "cmp": "sw", "val": "app"}));
        yes(json!({"key": "name", "cmp": "ew", "val": "inc"}));
        yes(json!({"key": "name", "cmp": "ct", "val": "le i"}));
        yes(json!({"key": "price", "cmp": "gte", "val": "100.5"}));
        yes(json!({"key": "price", "cmp": "gt", "val": "99"}));
        no(json!({"key": "price", "cmp": "lt", "val": "100.5"}));
        no(json!({"key": "name", "cmp": "gt", "val": "1"}));
        no(json!({"key": "missing", "cmp": "lte", "val": "1"}));
        no(json!({"key": "price", "cmp": "lt", "val": "1e3"}));
        yes(json!({"op": "and", "nodes": [{"key": "ticker", "cmp": "eq", "val": "AAPL"},
                                          {"key": "price", "cmp": "gte", "val": "100"}]}));
        no(json!({"op": "and", "nodes": [{"key": "ticker", "cmp": "eq", "val": "AAPL"},
                                         {"key": "price", "cmp": "gte", "val": "200"}]}));
        yes(json!({"op": "or", "nodes": [{"key": "ticker", "cmp": "eq", "val": "MSFT"},
                                         {"key": "price", "cmp": "lt", "val": "1000"}]}));
        yes(json!({"op": "not", "nodes": [{"key": "ticker", "cmp": "eq", "val": "MSFT"}]}));
    }

    #[test]
    fn invalid_filters_are_refused() {
        for bad in [
            json!({"key": "a", "cmp": "eq"}),
            json!({"key": "a", "cmp": "eq", "val": "x", "vals": ["y"]}),
            json!({"key": "a", "cmp": "in", "val": "x"}),
            json!({"key": "a", "cmp": "ex", "val": "x"}),
            json!({"key": "a", "cmp": "like", "val": "x"}),
            json!({"cmp": "eq", "val": "x"}),
            json!({"op": "and"}),
            json!({"op": "not", "nodes": [{"key": "a", "cmp": "ex"}, {"key": "b", "cmp": "ex"}]}),
            json!({"op": "xor", "nodes": [{"key": "a", "cmp": "ex"}]}),
        ] {
            let f: FilterNode = serde_json::from_value(bad.clone()).unwrap();
            assert!(f.validate().is_err(), "{bad}");
        }
        let mut deep = json!({"key": "a", "cmp": "ex"});
        for _ in 0..MAX_DEPTH {
            deep = json!({"op": "not", "nodes": [deep]});
        }
        let f: FilterNode = serde_json::from_value(deep).unwrap();
        assert!(f.validate().is_err());
    }
}
