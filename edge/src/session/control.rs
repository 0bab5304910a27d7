//! Instructions from the node (server API, hub continuity checks) carried out by the session
//! that owns the connection's state.

use super::{Session, State};
use crate::auth::unix_now;
use crate::connection::Control;
use crate::protocol::Disconnect;

impl Session {
    pub async fn handle_control(&mut self, control: Control) -> Result<(), Disconnect> {
        if !self.is_connected() {
            return Ok(());
        }
        match control {
            Control::InsufficientState { channel } => {
                self.server_unsubscribe(&channel, 2500, "insufficient state").await
            }
            Control::Unsubscribe { channel, code, reason } => self.server_unsubscribe(&channel, code, &reason).await,
            Control::Subscribe(s) => self.server_subscribe(*s).await,
            Control::Refresh { expired, expire_at, info } => {
                if expired {
                    return Err(Disconnect::expired());
                }
                let State::Connected(conn) = &mut self.state else { return Ok(()) };
                let info_changed = info.is_some();
                if let Some(info) = info {
                    conn.info.conn_info = Some(info);
                }
                if let Some(at) = expire_at {
                    let now = unix_now();
                    if at <= now {
                        return Err(Disconnect::expired());
                    }
                    conn.expires_at = Some(at);
                    let server_refresh = conn.server_refresh;
                    self.timers.expire = Some(self.expiry_deadline(at, server_refresh));
                }
                if info_changed {
                    self.refresh_presence(None).await;
                }
                Ok(())
            }
        }
    }
}
