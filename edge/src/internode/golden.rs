//! The serialized form of every inter-node message, pinned byte for byte. A node of the
//! previous release must read what this one writes and the other way round; when one of
//! these fails, the change breaks rolling upgrades unless it is made readable both ways.

use super::*;
use crate::protocol::{ClientInfo, Publication};

fn json<T: Serialize>(value: &T) -> String {
    String::from_utf8(serde_json::to_vec(value).unwrap()).unwrap()
}

/// `value` serializes to `golden`, and `golden` reads back to the same bytes.
fn pinned<T: Serialize + serde::de::DeserializeOwned>(value: &T, golden: &str) {
    assert_eq!(json(value), golden);
    let back: T = serde_json::from_str(golden).unwrap();
    assert_eq!(json(&back), golden);
}

fn target() -> Target {
    Target { user: "42".into(), client: "c1".into(), session: String::new() }
}

fn payload(text: &str) -> Payload {
    Payload::from_json(text).unwrap()
}

#[test]
fn user_commands() {
    let subscribe = UserCommand::Subscribe {
        target: target(),
        subscribe: ServerSubscribe {
            channel: "news:1".into(),
            info: Some(payload(r#"{"b":1, "a":2}"#)),
            data: None,
            expire_at: Some(1_900_000_000),
            recover_since: Some(StreamPosition { offset: 7, epoch: "xyz".into() }),
            overrides: SubOverride { presence: Some(BoolValue { value: false }), ..Default::default() },
        },
    };
    pinned(
        &subscribe,
        concat!(
            r#"{"op":"subscribe","target":{"user":"42","client":"c1","session":""},"#,
            r#""subscribe":{"channel":"news:1","info":{"b":1, "a":2},"data":null,"expire_at":1900000000,"#,
            r#""recover_since":{"offset":7,"epoch":"xyz"},"overrides":{"presence":{"value":false},"#,
            r#""join_leave":null,"force_push_join_leave":null,"force_recovery":null,"force_positioning":null}}}"#
        ),
    );
    pinned(
        &UserCommand::Unsubscribe { target: target(), channel: "news:1".into() },
        r#"{"op":"unsubscribe","target":{"user":"42","client":"c1","session":""},"channel":"news:1"}"#,
    );
    pinned(
        &UserCommand::Disconnect {
            target: target(),
            whitelist: vec!["c2".into()],
            disconnect: Disconnect { code: 4000, reason: "bye".into() },
        },
        concat!(
            r#"{"op":"disconnect","target":{"user":"42","client":"c1","session":""},"#,
            r#""whitelist":["c2"],"disconnect":{"code":4000,"reason":"bye"}}"#
        ),
    );
    pinned(
        &UserCommand::Refresh { target: target(), expired: false, expire_at: Some(5), info: Some(payload("[1]")) },
        r#"{"op":"refresh","target":{"user":"42","client":"c1","session":""},"expired":false,"expire_at":5,"info":[1]}"#,
    );
    pinned(
        &UserCommand::Emulation { session: "s1".into(), data: "eyJpZCI6MX0=".into() },
        r#"{"op":"emulation","session":"s1","data":"eyJpZCI6MX0="}"#,
    );
}

#[test]
fn commands_from_the_previous_release_still_read() {
    // Missing optional fields (older writers omit them) take their defaults.
    let old = r#"{"op":"subscribe","target":{"user":"42"},"subscribe":{"channel":"a"}}"#;
    let UserCommand::Subscribe { target, subscribe } = serde_json::from_str(old).unwrap() else { panic!() };
    assert_eq!((target.user.as_str(), target.client.as_str(), subscribe.channel.as_str()), ("42", "", "a"));
    assert!(subscribe.overrides.presence.is_none() && subscribe.recover_since.is_none());
    assert!(serde_json::from_str::<UserCommand>(r#"{"op":"reboot"}"#).is_err());
}

#[test]
fn node_announcements() {
    let info = NodeInfo {
        uid: "u".into(),
        name: "n".into(),
        version: "0.1.0".into(),
        num_clients: 1,
        num_users: 2,
        num_channels: 3,
        num_subs: 4,
        uptime: 5,
        engine: "nats".into(),
        num_deliveries: 6,
    };
    pinned(
        &info,
        concat!(
            r#"{"uid":"u","name":"n","version":"0.1.0","num_clients":1,"num_users":2,"num_channels":3,"#,
            r#""num_subs":4,"uptime":5,"engine":"nats","num_deliveries":6}"#
        ),
    );
    let older: NodeInfo = serde_json::from_str(
        r#"{"uid":"u","name":"n","version":"0.0.9","num_clients":1,"num_users":2,"num_channels":3,"num_subs":4,"uptime":5}"#,
    )
    .unwrap();
    assert_eq!((older.engine.as_str(), older.num_deliveries), ("", 0));
    let counts: ChannelCounts = vec![("news".into(), 3)];
    pinned(&counts, r#"[["news",3]]"#);
}

#[test]
fn presence_entries_and_publisher_info() {
    let info = ClientInfo {
        user: "42".into(),
        client: "c1".into(),
        conn_info: Some(payload(r#"{"z":1.10}"#)),
        chan_info: None,
    };
    pinned(&info, r#"{"user":"42","client":"c1","conn_info":{"z":1.10}}"#);
}

#[test]
fn stored_publications() {
    let exact = r#"{"zeta":1, "alpha":123456789012345678901234567890,"f":1.10,"s":"\u00e9\n"}"#;
    let mut publication = Publication {
        data: payload(exact),
        info: Some(ClientInfo { user: "42".into(), client: "c1".into(), ..Default::default() }),
        offset: 9,
        tags: [("k".to_string(), "v".to_string())].into(),
        delta: false,
        prev_offset: 8,
        use_delta: true,
    };
    let stored = concat!(
        r#"{"data":{"zeta":1, "alpha":123456789012345678901234567890,"f":1.10,"s":"\u00e9\n"},"#,
        r#""info":{"user":"42","client":"c1"},"tags":{"k":"v"},"delta":true}"#
    );
    assert_eq!(std::str::from_utf8(&encode_publication(&publication).unwrap()).unwrap(), stored);
    let back = decode_publication(stored.as_bytes()).unwrap();
    assert_eq!(back.data.as_bytes(), exact.as_bytes());
    assert!(back.use_delta && back.offset == 0 && back.tags["k"] == "v");

    publication.data = Payload::binary(bytes::Bytes::from_static(b"\x00\xff"));
    publication.info = None;
    publication.tags.clear();
    publication.use_delta = false;
    let stored = r#"{"b64data":"AP8="}"#;
    assert_eq!(std::str::from_utf8(&encode_publication(&publication).unwrap()).unwrap(), stored);
    assert_eq!(decode_publication(stored.as_bytes()).unwrap().data.as_bytes(), b"\x00\xff");
    assert!(decode_publication(b"{}").is_err());
}
