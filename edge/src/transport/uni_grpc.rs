//! The unidirectional gRPC transport (Centrifugo's `uni_grpc`): one server-streaming call,
//! `centrifugal.centrifugo.unistream.CentrifugoUniStream/Consume(ConnectRequest)`, answered
//! with a stream of Protobuf `Push` messages — the connect result first, then publications,
//! join/leave, empty pushes as pings, and a `disconnect` push before the stream ends.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http;
use bytes::{BufMut, Bytes};
use prost::Message;
use tonic::body::Body;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::Status;

use crate::connection::{Batch, Outbox};
use crate::grpc::Handler;
use crate::node::Node;
use crate::protocol::{proto, Encoding, Push, PushBody, Reply};
use crate::session::{Session, TransportInfo};

/// The gRPC service.
#[derive(Clone)]
pub struct UniStream {
    node: Arc<Node>,
}

impl UniStream {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

type PushStream = Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, Status>> + Send>>;

/// The stream's state: the outbox, the guard that ends the session when the client goes
/// away, and pushes of the last batch not yet sent.
type StreamState = (Arc<Outbox>, super::http::CloseOnDrop, VecDeque<Bytes>);

impl Handler for UniStream {
    const NAME: &'static str = "centrifugal.centrifugo.unistream.CentrifugoUniStream";

    fn handle(&self, req: http::Request<Body>) -> Pin<Box<dyn Future<Output = http::Response<Body>> + Send>> {
        let node = self.node.clone();
        Box::pin(async move {
            if !req.uri().path().ends_with("/Consume") {
                return Status::unimplemented("only Consume is served").into_http();
            }
            let service = tower::service_fn(move |request: tonic::Request<proto::ConnectRequest>| {
                let node = node.clone();
                async move { Ok::<_, Status>(tonic::Response::new(consume(node, request.into_inner()))) }
            });
            tonic::server::Grpc::new(PushCodec).server_streaming(service, req).await
        })
    }
}

/// Starts the session for one `Consume` call and streams its outbox.
fn consume(node: Arc<Node>, connect: proto::ConnectRequest) -> PushStream {
    let outbox = Arc::new(Outbox::new(node.config().client_queue_max_size));
    let transport = TransportInfo {
        name: "uni_grpc",
        encoding: Encoding::ProtobufUni,
        emulation_session: None,
        headers: Default::default(),
    };
    let session = Session::new(node.clone(), outbox.clone(), transport);
    let command = proto::Command { id: 1, connect: Some(connect), ..Default::default() };
    let frame = Bytes::from(command.encode_length_delimited_to_vec());
    tokio::spawn(super::http::run(session, frame, None));
    let guard = super::http::CloseOnDrop(outbox.clone());
    Box::pin(futures_util::stream::unfold(Some((outbox, guard, VecDeque::new())), next_push))
}

/// The next message: queued pushes one by one, then a `disconnect` push when the session ends.
async fn next_push(state: Option<StreamState>) -> Option<(Result<Bytes, Status>, Option<StreamState>)> {
    let (outbox, guard, mut queued) = state?;
    loop {
        if let Some(push) = queued.pop_front() {
            return Some((Ok(push), Some((outbox, guard, queued))));
        }
        match outbox.next_batch().await {
            Batch::Messages(messages) => queued = messages.into(),
            Batch::Close(d) if d.code != 3000 => {
                let push = Reply::push(Push { channel: String::new(), body: PushBody::Disconnect(d) });
                return Some((Ok(Encoding::ProtobufUni.encode_reply(&push)), None));
            }
            Batch::Close(_) => return None,
        }
    }
}

/// Decodes the `ConnectRequest`; writes pushes already encoded by the session.
#[derive(Clone, Copy)]
struct PushCodec;

impl Codec for PushCodec {
    type Encode = Bytes;
    type Decode = proto::ConnectRequest;
    type Encoder = PushEncoder;
    type Decoder = tonic_prost::ProstDecoder<proto::ConnectRequest>;

    fn encoder(&mut self) -> PushEncoder {
        PushEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

struct PushEncoder;

impl Encoder for PushEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}
