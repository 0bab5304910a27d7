//! Centrifugo's gRPC server API (`centrifugal.centrifugo.api.CentrifugoApi`) on its own
//! port: each call is the HTTP API's method with the request as its params, so the two APIs
//! cannot drift apart. Errors travel in the response body as in Centrifugo; a missing or wrong
//! `authorization: apikey <grpc_api_key>` is `UNAUTHENTICATED`.

pub mod messages;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http;
use messages::*;
use subtle::ConstantTimeEq;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::Status;
use tonic_prost::ProstCodec;

use crate::node::Node;

const SERVICE: &str = "centrifugal.centrifugo.api.CentrifugoApi";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A gRPC service Gyre serves: its name and how it answers a call (routing by method).
pub trait Handler: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    fn handle(&self, req: http::Request<Body>) -> BoxFuture<http::Response<Body>>;
}

/// Makes a [`Handler`] a service tonic's server takes.
#[derive(Clone)]
struct Served<H>(H);

impl<H: Handler> NamedService for Served<H> {
    const NAME: &'static str = H::NAME;
}

impl<H: Handler> tower::Service<http::Request<Body>> for Served<H> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let answer = self.0.handle(req);
        Box::pin(async move { Ok(answer.await) })
    }
}

/// `handler` as the HTTP/2 service a listener serves (see [`crate::listener`]).
pub fn service<H: Handler>(handler: H) -> tonic::service::Routes {
    tonic::service::Routes::new(Served(handler)).prepare()
}

/// The server API service: routes `/<SERVICE>/<Method>` to the API method.
#[derive(Clone)]
pub struct Api {
    node: Arc<Node>,
}

impl Api {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

impl Handler for Api {
    const NAME: &'static str = SERVICE;

    fn handle(&self, req: http::Request<Body>) -> BoxFuture<http::Response<Body>> {
        let node = self.node.clone();
        Box::pin(async move {
            let method = req.uri().path().rsplit('/').next().unwrap_or_default().to_string();
            match method.as_str() {
                "Publish" => unary::<PublishRequest, PublishResponse>(node, "publish", req).await,
                "Broadcast" => unary::<BroadcastRequest, BroadcastResponse>(node, "broadcast", req).await,
                "Subscribe" => unary::<SubscribeRequest, EmptyResponse>(node, "subscribe", req).await,
                "Unsubscribe" => unary::<UnsubscribeRequest, EmptyResponse>(node, "unsubscribe", req).await,
                "Disconnect" => unary::<DisconnectRequest, EmptyResponse>(node, "disconnect", req).await,
                "Presence" => unary::<ChannelRequest, PresenceResponse>(node, "presence", req).await,
                "PresenceStats" => unary::<ChannelRequest, PresenceStatsResponse>(node, "presence_stats", req).await,
                "History" => unary::<HistoryRequest, HistoryResponse>(node, "history", req).await,
                "HistoryRemove" => unary::<ChannelRequest, EmptyResponse>(node, "history_remove", req).await,
                "Info" => unary::<InfoRequest, InfoResponse>(node, "info", req).await,
                "RPC" => unary::<RpcRequest, RpcResponse>(node, "rpc", req).await,
                "Refresh" => unary::<RefreshRequest, EmptyResponse>(node, "refresh", req).await,
                "Channels" => unary::<ChannelsRequest, ChannelsResponse>(node, "channels", req).await,
                "Batch" => unary::<BatchRequest, BatchResponse>(node, "batch", req).await,
                _ => Status::unimplemented(format!("method {method:?} is not served by Gyre")).into_http(),
            }
        })
    }
}

/// Decodes the request, checks the key, runs the API method, encodes its answer.
async fn unary<Req, Resp>(node: Arc<Node>, method: &'static str, req: http::Request<Body>) -> http::Response<Body>
where
    Req: prost::Message + Default + ToParams + Send + 'static,
    Resp: Response + Send,
{
    let config = node.config();
    let limit = config.grpc_api_max_receive_message_size;
    let req = match bounded(req, limit, config.http_body_timeout.0).await {
        Ok(req) => req,
        Err(status) => return status.into_http(),
    };
    let service = tower::service_fn(move |request: tonic::Request<Req>| {
        let node = node.clone();
        async move {
            authorize(&node, request.metadata())?;
            let params = request.get_ref().to_params().to_string();
            Ok::<_, Status>(tonic::Response::new(answer::<Resp>(&node, method, &params).await))
        }
    });
    tonic::server::Grpc::new(ProstCodec::<Resp, Req>::default())
        .max_decoding_message_size(limit)
        .unary(service, req)
        .await
}

/// The request with its body read whole: one message of at most `limit` bytes (plus gRPC's
/// 5-byte frame header) within `timeout`; `RESOURCE_EXHAUSTED` when larger.
async fn bounded(
    req: http::Request<Body>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<http::Request<Body>, Status> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limit.saturating_add(5));
    let bytes = match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(Status::resource_exhausted(format!("request message larger than {limit} bytes")));
        }
        Ok(Err(err)) => return Err(Status::invalid_argument(format!("request body could not be read: {err}"))),
        Err(_) => return Err(Status::deadline_exceeded("request body not received in time")),
    };
    Ok(http::Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes))))
}

/// The API method's JSON answer as the response message.
async fn answer<Resp: Response>(node: &Arc<Node>, method: &str, params: &str) -> Resp {
    match crate::api::execute(node, method, params, "grpc").await {
        Ok(result) => match serde_json::from_str::<Resp::Result>(result.get()) {
            Ok(r) => Resp::new(None, Some(r)),
            Err(err) => {
                tracing::warn!(%err, method, "API result does not fit the gRPC message");
                Resp::new(Some(Error { code: 100, message: "internal server error".into() }), None)
            }
        },
        Err(e) => Resp::new(Some(Error { code: e.code, message: e.message }), None),
    }
}

fn authorize(node: &Node, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
    let config = node.config();
    if config.grpc_api_key.is_empty() {
        return Ok(());
    }
    let given = metadata.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let expected = format!("apikey {}", config.grpc_api_key);
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(Status::unauthenticated("invalid or missing API key"))
    }
}
