//! Channel names against the config: namespace resolution and name rules (the name grammar
//! itself is in [`crate::protocol::channel`]).

use std::collections::HashMap;

use regex::Regex;

use crate::config::{ChannelOptions, Config};
use crate::protocol::channel::split_namespace;
use crate::protocol::ErrorCode;

/// A channel name checked against the config: its namespace and options.
pub struct Resolved<'a> {
    pub namespace: &'a str,
    pub options: &'a ChannelOptions,
}

/// Resolves channels to namespaces with the config's rules (regexes compiled once).
pub struct ChannelRules {
    max_length: usize,
    regexes: HashMap<String, Regex>,
}

impl ChannelRules {
    pub fn new(config: &Config) -> Self {
        let mut regexes = HashMap::new();
        let all = std::iter::once(("", &config.channel))
            .chain(config.namespaces.iter().map(|n| (n.name.as_str(), &n.options)));
        for (name, opts) in all {
            if !opts.channel_regex.is_empty() {
                // Validated at load time; an invalid one simply matches nothing.
                if let Ok(re) = Regex::new(&opts.channel_regex) {
                    regexes.insert(name.to_string(), re);
                }
            }
        }
        Self { max_length: config.channel_max_length, regexes }
    }

    /// Finds the channel's namespace (102 when unknown) and checks the name (107).
    pub fn resolve<'a>(&self, config: &'a Config, channel: &str) -> Result<Resolved<'a>, ErrorCode> {
        if channel.is_empty() || channel.len() > self.max_length {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let (ns, rest) = split_namespace(channel);
        let (namespace, options) = if ns.is_empty() {
            ("", &config.channel)
        } else {
            let n = config.namespaces.iter().find(|n| n.name == ns).ok_or(ErrorCode::UNKNOWN_CHANNEL)?;
            (n.name.as_str(), &n.options)
        };
        match self.regexes.get(namespace) {
            Some(re) if !re.is_match(rest) => return Err(ErrorCode::BAD_REQUEST),
            Some(_) => {}
            None if !channel.is_ascii() => return Err(ErrorCode::BAD_REQUEST),
            None => {}
        }
        Ok(Resolved { namespace, options })
    }
}

/// Glob match where `*` stands for any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::channel::user_allowed;

    #[test]
    fn namespaces_and_user_limits() {
        assert_eq!(split_namespace("chat:room"), ("chat", "room"));
        assert_eq!(split_namespace("$chat:room"), ("chat", "room"));
        assert_eq!(split_namespace("plain"), ("", "plain"));
        assert!(user_allowed("dialog#42,43", "43"));
        assert!(!user_allowed("dialog#42,43", "4"));
        assert!(!user_allowed("dialog", "4"));
        assert!(wildcard_match("chat:*", "chat:room"));
        assert!(wildcard_match("*", "anything"));
        assert!(!wildcard_match("chat:*", "news:room"));
    }
}
