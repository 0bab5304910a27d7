//! A connection as the rest of the node reaches it: its handle (identity and outbox), the
//! bounded outgoing queue its transport drains, and the instructions its session carries out.
//!
//! A leaf below both the session (which owns the protocol state) and the hub (which fans out
//! to handles), so neither depends on the other to talk to a connection.

mod control;
mod handle;
mod outbox;

pub use control::Control;
pub use handle::ClientHandle;
pub use outbox::{Batch, Outbox};
