//! `metav1.Condition` lists: set one condition, keeping its transition time unless its status
//! flips, so an unchanged world writes an unchanged status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// What a condition should say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Want {
    pub fn new(type_: &'static str, ok: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, ok, reason, message: message.into() }
    }
}

fn status_of(ok: bool) -> &'static str {
    if ok {
        "True"
    } else {
        "False"
    }
}

/// The current time as a condition timestamp.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The conditions after applying `wants` to `current`; other types are kept.
pub fn merge(current: &[Condition], wants: &[Want], generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let mut out: Vec<Condition> =
        current.iter().filter(|c| !wants.iter().any(|w| w.type_ == c.type_)).cloned().collect();
    for w in wants {
        let status = status_of(w.ok).to_string();
        let previous = current.iter().find(|c| c.type_ == w.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: w.type_.to_string(),
            status,
            reason: w.reason.to_string(),
            message: w.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap_or_default())
    }

    #[test]
    fn keeps_transition_time_until_the_status_flips() {
        let first = merge(&[], &[Want::new("Ready", false, "Pending", "")], Some(1), &at(100));
        assert_eq!(first[0].last_transition_time, at(100));
        let same = merge(&first, &[Want::new("Ready", false, "StillPending", "x")], Some(2), &at(200));
        assert_eq!(same[0].last_transition_time, at(100));
        assert_eq!((same[0].reason.as_str(), same[0].observed_generation), ("StillPending", Some(2)));
        let flipped = merge(&same, &[Want::new("Ready", true, "Ready", "")], Some(2), &at(300));
        assert_eq!((flipped[0].status.as_str(), &flipped[0].last_transition_time), ("True", &at(300)));
    }
}
