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

/// Why a fossil delta could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("malformed delta at byte {0}")]
    Malformed(usize),
    #[error("delta output of {0} bytes is over the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("delta copies outside the base")]
    CopyOutOfRange,
    #[error("delta output does not have the length its header states")]
    WrongLength,
    #[error("delta checksum mismatch")]
    BadChecksum,
}

/// Applies a fossil delta to `base`, as a delta subscriber does: every count, offset and
/// length is checked, the output never exceeds `max_len` (nor the length the header states),
/// and the checksum must match. Malformed input is an error, never a panic.
pub fn apply(base: &[u8], delta: &[u8], max_len: usize) -> Result<Vec<u8>, DeltaError> {
    let mut r = Reader { bytes: delta, at: 0 };
    let total = r.int()?;
    r.expect(b'\n')?;
    if total > max_len {
        return Err(DeltaError::TooLarge(total, max_len));
    }
    let mut out = Vec::with_capacity(total);
    loop {
        let count = r.int()?;
        let op_at = r.at;
        match r.next()? {
            b'@' => {
                let offset = r.int()?;
                r.expect(b',')?;
                let end = offset.checked_add(count).ok_or(DeltaError::CopyOutOfRange)?;
                let src = base.get(offset..end).ok_or(DeltaError::CopyOutOfRange)?;
                push(&mut out, src, total)?;
            }
            b':' => {
                let end = r.at.checked_add(count).ok_or(DeltaError::Malformed(r.at))?;
                let lit = delta.get(r.at..end).ok_or(DeltaError::Malformed(r.at))?;
                r.at = end;
                push(&mut out, lit, total)?;
            }
            b';' => {
                if out.len() != total {
                    return Err(DeltaError::WrongLength);
                }
                if u64::from(checksum(&out)) != count as u64 {
                    return Err(DeltaError::BadChecksum);
                }
                return Ok(out);
            }
            _ => return Err(DeltaError::Malformed(op_at)),
        }
    }
}

fn push(out: &mut Vec<u8>, bytes: &[u8], total: usize) -> Result<(), DeltaError> {
    if out.len().checked_add(bytes.len()).is_none_or(|n| n > total) {
        return Err(DeltaError::WrongLength);
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// Fossil's checksum: the wrapping sum of the output read as big-endian 32-bit words, the
/// last one padded with zeros.
fn checksum(bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(4);
    let mut sum = words.by_ref().fold(0u32, |s, w| s.wrapping_add(u32::from_be_bytes([w[0], w[1], w[2], w[3]])));
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        sum = sum.wrapping_add(u32::from_be_bytes(last));
    }
    sum
}

/// A cursor over a delta's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn next(&mut self) -> Result<u8, DeltaError> {
        let b = *self.bytes.get(self.at).ok_or(DeltaError::Malformed(self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn expect(&mut self, want: u8) -> Result<(), DeltaError> {
        let at = self.at;
        (self.next()? == want).then_some(()).ok_or(DeltaError::Malformed(at))
    }

    /// A base-64 number in fossil's digit order (`0-9A-Z_a-z~`); at least one digit.
    fn int(&mut self) -> Result<usize, DeltaError> {
        let start = self.at;
        let mut n: usize = 0;
        while let Some(digit) = self.bytes.get(self.at).and_then(|&b| digit_value(b)) {
            n = n.checked_mul(64).and_then(|n| n.checked_add(digit)).ok_or(DeltaError::Malformed(start))?;
            self.at += 1;
        }
        if self.at == start {
            return Err(DeltaError::Malformed(start));
        }
        Ok(n)
    }
}

fn digit_value(b: u8) -> Option<usize> {
    let v = match b {
        b'0'..=b'9' => b - b'0',
        b'A'..=b'Z' => b - b'A' + 10,
        b'_' => 36,
        b'a'..=b'z' => b - b'a' + 37,
        b'~' => 63,
        _ => return None,
    };
    Some(usize::from(v))
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
            let rebuilt = apply(prev.as_bytes(), &delta, 1 << 20).expect("valid delta");
            assert_eq!(rebuilt, next.as_bytes());
            assert_eq!(fossil_delta::apply(prev.as_bytes(), &delta).ok().as_deref(), Some(next.as_bytes()));
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

    #[test]
    fn malformed_deltas_are_errors_not_panics() {
        let base = b"hello, world";
        let good = fossil_delta::delta(b"hello, brave world", base);
        assert_eq!(apply(base, &good, 1024).unwrap(), b"hello, brave world");
        assert_eq!(apply(base, &good, 4), Err(DeltaError::TooLarge(18, 4)));
        for bad in [
            &b""[..],
            b"\n",
            b"5",
            b"5\n",
            b"5\n5@",
            b"5\n5@0",
            b"5\n5@99,",
            b"5\n5:abc",
            b"5\n~~~~~~~~~~~~~~~~~~~~~~:x",
            b"5\n5@~~~~~~~~~~~~~~~~~~~~~~,",
            b"5\n~~~~~~~~~~@1,",
            b"1\n5:hello0;",
            b"5\n5:hello0;",
            b"5\n5:hello?",
            b"\xff\n",
        ] {
            assert!(apply(base, bad, 1024).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // A copy past the end of the base, and a literal longer than the header allows.
        assert_eq!(apply(base, b"4\n4@10,0;", 1024), Err(DeltaError::CopyOutOfRange));
        assert_eq!(apply(base, b"2\n3:abc0;", 1024), Err(DeltaError::WrongLength));
    }
}
