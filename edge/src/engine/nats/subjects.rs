//! Subject, stream and key names. Channel names may hold characters NATS forbids in subjects
//! (`.`, `*`, `>`, spaces) or KV keys, so each channel becomes one base64url token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// One subject token for a channel or namespace name.
pub fn token(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name.as_bytes())
}

/// The namespace part of subjects: `_` for channels without a namespace (no base64url token
/// of a real, at least two-character namespace name is a single character).
pub fn ns_token(namespace: &str) -> String {
    if namespace.is_empty() {
        "_".to_string()
    } else {
        token(namespace)
    }
}

/// Names of everything Gyre keeps in NATS under one prefix.
#[derive(Debug, Clone)]
pub struct Layout {
    pub prefix: String,
}

impl Layout {
    /// Where a history namespace's publications are stored (captured by its stream).
    pub fn history_subject(&self, namespace: &str, channel: &str) -> String {
        format!("{}.h.{}.{}", self.prefix, ns_token(namespace), token(channel))
    }

    /// Where nodes listen for a channel: publications (republished by the stream, or published
    /// directly without history), join and leave.
    pub fn live_subject(&self, namespace: &str, channel: &str) -> String {
        format!("{}.l.{}.{}", self.prefix, ns_token(namespace), token(channel))
    }

    /// The stream of a namespace with history.
    pub fn stream_name(&self, namespace: &str) -> String {
        let ns = if namespace.is_empty() { "_".to_string() } else { token(namespace) };
        format!("{}_H_{}", self.prefix.replace(['.', '*', '>', ' '], "_"), ns)
    }

    pub fn stream_subjects(&self, namespace: &str) -> String {
        format!("{}.h.{}.>", self.prefix, ns_token(namespace))
    }

    pub fn republish_destination(&self, namespace: &str) -> String {
        format!("{}.l.{}.>", self.prefix, ns_token(namespace))
    }

    /// The presence stream.
    pub fn presence_bucket(&self) -> String {
        format!("{}_PRESENCE", self.prefix.replace(['.', '*', '>', ' '], "_"))
    }

    pub fn presence_subjects(&self) -> String {
        format!("{}.presence.>", self.prefix)
    }

    /// Presence entry of one client in one channel.
    pub fn presence_subject(&self, channel: &str, client: &str) -> String {
        format!("{}.presence.{}.{}", self.prefix, token(channel), client)
    }

    /// `(channel token, client)` of a presence entry's subject.
    pub fn presence_key<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = subject.strip_prefix(self.prefix.as_str())?.strip_prefix(".presence.")?;
        rest.rsplit_once('.')
    }

    pub fn control_subject(&self) -> String {
        format!("{}.control", self.prefix)
    }

    /// Commands for one node only (`node` is a node id: a UUID, a valid subject token).
    pub fn node_subject(&self, node: &str) -> String {
        format!("{}.node.{}", self.prefix, node)
    }

    pub fn nodes_subject(&self) -> String {
        format!("{}.nodes", self.prefix)
    }

    pub fn channels_survey_subject(&self) -> String {
        format!("{}.survey.channels", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awkward_channels_become_single_valid_tokens() {
        for ch in ["chat:a.b", "x *>", "ünï", "$p:#42,43", "a/b"] {
            let t = token(ch);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{t}");
            assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap(), ch.as_bytes());
        }
        let l = Layout { prefix: "gyre".into() };
        assert_eq!(l.live_subject("", "news"), "gyre.l._.bmV3cw");
    }
}
