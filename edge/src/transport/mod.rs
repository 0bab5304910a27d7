//! Client transports: they move frames between sockets and a [`crate::session::Session`].

pub mod cors;
pub mod emulation;
pub mod http;
pub mod origin;
pub mod uni_grpc;
pub mod websocket;
