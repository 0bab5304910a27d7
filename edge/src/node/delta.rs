//! Fossil delta compression of publications for subscribers that negotiated it: computed once
//! per publication, encoded once per encoding, shared by every such subscriber.

use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::{Encoding, Payload, Publication};

/// The delta that turns `prev` into `next`, when one is worth sending: both JSON (a JSON
/// client rebuilds the payload text, a Protobuf client the same bytes) and smaller than `next`.
pub fn fossil(prev: &Payload, next: &Payload) -> Option<Bytes> {
    if prev.is_binary() || next.is_binary() {
        return None;
    }
    let delta = fossil_delta::delta(next.as_bytes(), prev.as_bytes());
    (delta.len() < next.len()).then(|| Bytes::from(delta))
}

/// The publication as a delta subscriber using `encoding` receives it: the full payload
/// (`delta` = `None`) or the delta. JSON clients of a delta subscription get either inside a
/// JSON string; a delta that is not UTF-8 cannot be one, so `None` then (send it full).
pub fn for_subscriber(encoding: Encoding, p: &Publication, delta: Option<&Bytes>) -> Option<Arc<Publication>> {
    let data = match (encoding, delta) {
        (Encoding::Protobuf | Encoding::ProtobufUni, Some(d)) => Payload::binary(d.clone()),
        (Encoding::Protobuf | Encoding::ProtobufUni, None) => p.data.clone(),
        (_, Some(d)) => Payload::json_string(std::str::from_utf8(d).ok()?),
        (_, None) => Payload::json_string(&serde_json::to_string(&p.data).ok()?),
    };
    Some(Arc::new(Publication { data, delta: delta.is_some(), ..p.clone() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Payload {
        Payload::from_json(s).unwrap()
    }

    #[test]
    fn deltas_rebuild_the_next_payload() {
        let mut doc = serde_json::json!({"title": "draft", "items": (0..50).collect::<Vec<_>>(), "note": "héllo ✓"});
        let mut prev = json(&doc.to_string());
        for i in 0..40u64 {
            doc["items"][(i * 7 % 50) as usize] = serde_json::json!(i * 1000);
            doc["title"] = serde_json::json!(format!("draft {i}"));
            let next = json(&doc.to_string());
            let delta = fossil(&prev, &next).expect("similar documents give a small delta");
            let rebuilt = fossil_delta::apply(prev.as_bytes(), &delta).expect("valid delta");
            assert_eq!(rebuilt, next.as_bytes());
            prev = next;
        }
        // Nothing in common: the delta is not smaller, so none.
        assert!(fossil(&json("1"), &json("\"a completely different value\"")).is_none());
        assert!(fossil(&json("{}"), &Payload::binary(Bytes::from_static(&[0xff, 0x00]))).is_none());
    }

    #[test]
    fn json_subscribers_get_strings_protobuf_subscribers_bytes() {
        let p = Publication {
            data: json(r#"{"a":1}"#),
            info: None,
            offset: 3,
            tags: Default::default(),
            delta: false,
            prev_offset: 2,
            use_delta: true,
        };
        let full = for_subscriber(Encoding::Json, &p, None).unwrap();
        assert_eq!((full.data.as_json(), full.delta), (Some(r#""{\"a\":1}""#), false));
        let d = Bytes::from_static(b"7\n2@0,1:2}Q1Ysz;");
        let delta = for_subscriber(Encoding::Json, &p, Some(&d)).unwrap();
        assert_eq!((delta.data.as_json(), delta.delta, delta.offset), (Some(r#""7\n2@0,1:2}Q1Ysz;""#), true, 3));
        let pb = for_subscriber(Encoding::Protobuf, &p, Some(&d)).unwrap();
        assert_eq!((pb.data.as_bytes(), pb.delta), (&d[..], true));
        assert!(for_subscriber(Encoding::Json, &p, Some(&Bytes::from_static(&[0xff]))).is_none());
    }
}
