//! Applying the server API's actions on users' live connections: a [`UserCommand`] travels
//! through the engine to every node, and each applies it here to its own connections.

use super::hub::Hub;
use super::EmulationInbox;
use crate::connection::Control;
use crate::internode::UserCommand;

/// Applies a command to this node's matching connections.
pub fn apply(command: &UserCommand, hub: &Hub, emulation: Option<&dyn EmulationInbox>) {
    let target = match command {
        UserCommand::Emulation { session, data } => {
            use base64::Engine;
            match (emulation, base64::engine::general_purpose::STANDARD.decode(data)) {
                (Some(inbox), Ok(frame)) => inbox.deliver_forwarded(session, bytes::Bytes::from(frame)),
                (None, _) => tracing::debug!("an emulation frame arrived at a node serving no emulation"),
                (_, Err(err)) => tracing::debug!(%err, "undecodable forwarded emulation frame"),
            }
            return;
        }
        UserCommand::Subscribe { target, .. }
        | UserCommand::Unsubscribe { target, .. }
        | UserCommand::Disconnect { target, .. }
        | UserCommand::Refresh { target, .. } => target,
    };
    for client in hub.user_clients(&target.user) {
        if !target.client.is_empty() && *client.id != *target.client {
            continue;
        }
        if !target.session.is_empty() && client.session.as_deref() != Some(target.session.as_str()) {
            continue;
        }
        match command {
            UserCommand::Subscribe { subscribe, .. } => client.control(Control::Subscribe(Box::new(subscribe.clone()))),
            UserCommand::Unsubscribe { channel, .. } => client.control(Control::Unsubscribe {
                channel: channel.clone(),
                code: 2000,
                reason: "server unsubscribe".into(),
            }),
            UserCommand::Disconnect { whitelist, disconnect, .. } => {
                if !whitelist.iter().any(|w| *w == *client.id) {
                    client.disconnect(disconnect.clone());
                }
            }
            UserCommand::Refresh { expired, expire_at, info, .. } => {
                client.control(Control::Refresh { expired: *expired, expire_at: *expire_at, info: info.clone() })
            }
            UserCommand::Emulation { .. } => {}
        }
    }
}
