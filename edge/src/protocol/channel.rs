//! The grammar of channel names shared by clients, the server API and engines: a namespace
//! before `:`, a leading `$` for private channels, allowed users after `#`.

pub const NAMESPACE_BOUNDARY: char = ':';
pub const USER_BOUNDARY: char = '#';
pub const USER_SEPARATOR: char = ',';
pub const PRIVATE_PREFIX: char = '$';

/// `ns:rest` -> (`ns`, `rest`); a leading `$` is not part of the namespace.
pub fn split_namespace(channel: &str) -> (&str, &str) {
    let bare = channel.strip_prefix(PRIVATE_PREFIX).unwrap_or(channel);
    match bare.split_once(NAMESPACE_BOUNDARY) {
        Some((ns, rest)) => (ns, rest),
        None => ("", bare),
    }
}

/// Private channels always need a subscription token.
pub fn is_private(channel: &str) -> bool {
    channel.starts_with(PRIVATE_PREFIX)
}

/// Whether `user` is listed after the last `#` of a user-limited channel.
pub fn user_allowed(channel: &str, user: &str) -> bool {
    match channel.rsplit_once(USER_BOUNDARY) {
        Some((_, users)) if !user.is_empty() => users.split(USER_SEPARATOR).any(|u| u == user),
        _ => false,
    }
}
