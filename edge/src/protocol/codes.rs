//! Error codes (in replies) and disconnect codes (in close frames) of the Centrifugo protocol.

use serde::{Deserialize, Serialize};

/// An error carried in a reply; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCode {
    pub code: u32,
    /// Static for the protocol's own errors; a backend proxy may send its own text.
    pub message: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub temporary: bool,
}

impl ErrorCode {
    const fn new(code: u32, message: &'static str) -> Self {
        Self { code, message: std::borrow::Cow::Borrowed(message), temporary: false }
    }

    pub const INTERNAL: Self =
        Self { code: 100, message: std::borrow::Cow::Borrowed("internal server error"), temporary: true };
    pub const UNAUTHORIZED: Self = Self::new(101, "unauthorized");
    pub const UNKNOWN_CHANNEL: Self = Self::new(102, "unknown channel");
    pub const PERMISSION_DENIED: Self = Self::new(103, "permission denied");
    pub const METHOD_NOT_FOUND: Self = Self::new(104, "method not found");
    pub const ALREADY_SUBSCRIBED: Self = Self::new(105, "already subscribed");
    pub const LIMIT_EXCEEDED: Self = Self::new(106, "limit exceeded");
    pub const BAD_REQUEST: Self = Self::new(107, "bad request");
    pub const NOT_AVAILABLE: Self = Self::new(108, "not available");
    pub const TOKEN_EXPIRED: Self = Self::new(109, "token expired");
    pub const EXPIRED: Self = Self::new(110, "expired");
    pub const TOO_MANY_REQUESTS: Self =
        Self { code: 111, message: std::borrow::Cow::Borrowed("too many requests"), temporary: true };
    pub const UNRECOVERABLE_POSITION: Self = Self::new(112, "unrecoverable position");
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ErrorCode {}

/// Why the server closes a connection; SDKs reconnect unless `3500 <= code < 4000` or
/// `4500 <= code < 5000`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    #[serde(default)]
    pub code: u32,
    #[serde(default)]
    pub reason: String,
}

macro_rules! disconnects {
    ($($name:ident = $code:expr, $reason:expr;)*) => {
        impl Disconnect {
            $(pub fn $name() -> Self { Self { code: $code, reason: $reason.to_string() } })*
        }
    };
}

disconnects! {
    shutdown = 3001, "shutdown";
    internal = 3004, "internal server error";
    expired = 3005, "connection expired";
    sub_expired = 3006, "subscription expired";
    slow = 3008, "slow";
    write_error = 3009, "write error";
    insufficient_state = 3010, "insufficient state";
    force_reconnect = 3011, "force reconnect";
    no_pong = 3012, "no pong";
    too_many_requests = 3013, "too many requests";
    invalid_token = 3500, "invalid token";
    bad_request = 3501, "bad request";
    stale = 3502, "stale";
    force_disconnect = 3503, "force disconnect";
    connection_limit = 3504, "connection limit";
    channel_limit = 3505, "channel limit";
    inappropriate_protocol = 3506, "inappropriate protocol";
    permission_denied = 3507, "permission denied";
    not_available = 3508, "not available";
    too_many_errors = 3509, "too many errors";
}

impl Disconnect {
    /// WebSocket close 1009: an incoming message over the size limit.
    pub fn message_too_big() -> Self {
        Self { code: 1009, reason: "message size limit exceeded".to_string() }
    }
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}
