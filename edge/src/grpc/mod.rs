//! Centrifugo's gRPC server API (`centrifugal.centrifugo.api.CentrifugoApi`) on its own
//! port: each call is the HTTP API's method with the request as its params, so the two APIs
//! cannot drift apart. Errors travel in the response body as in Centrifugo; a missing or wrong
//! `authorization: apikey <grpc_api_key>` is `UNAUTHENTICATED`.

pub mod api;
mod params;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use api::centrifugo_api_server::{CentrifugoApi, CentrifugoApiServer};
use api::*;
use axum::http;
use params::ToParams;
use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Request, Status};

use crate::node::Node;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A gRPC service Gyre routes by hand (the unidirectional stream, whose pushes are encoded
/// before they reach the codec): its name and how it answers a call.
pub trait Handler: Clone + Send + Sync + 'static {
    const NAME: &'static str;
    fn handle(&self, req: http::Request<Body>) -> BoxFuture<http::Response<Body>>;
}

/// A [`Handler`] as a tower service.
#[derive(Clone)]
pub struct Routed<H>(pub H);

impl<H: Handler> NamedService for Routed<H> {
    const NAME: &'static str = H::NAME;
}

impl<H: Handler> tower::Service<http::Request<Body>> for Routed<H> {
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

/// A gRPC service whose request bodies are read whole first, within the node's body limits.
#[derive(Clone)]
pub struct Bounded<S> {
    inner: S,
    node: Arc<Node>,
}

impl<S: NamedService> NamedService for Bounded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<Body>> for Bounded<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        let config = self.node.config();
        Box::pin(async move {
            let limit = config.grpc_api_max_receive_message_size;
            match bounded(req, limit, config.http_body_timeout.0).await {
                Ok(req) => {
                    use tower::ServiceExt;
                    inner.ready().await?.call(req).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// `service` as the HTTP/2 routes a listener serves (see [`crate::listener`]).
pub fn routes<S>(service: S) -> tonic::service::Routes
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    tonic::service::Routes::new(service).prepare()
}

/// The server API as the generated tonic service, its request bodies bounded by the node's
/// limits.
pub fn api_service(node: Arc<Node>) -> Bounded<CentrifugoApiServer<Api>> {
    // `Bounded` has read the body under the limit in force (reloads change it), so the codec
    // needs no limit of its own.
    let inner = CentrifugoApiServer::new(Api { node: node.clone() }).max_decoding_message_size(usize::MAX);
    Bounded { inner, node }
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

/// The server API: every method checks the key and runs the HTTP API's method.
#[derive(Clone)]
pub struct Api {
    node: Arc<Node>,
}

impl Api {
    async fn call<Req: ToParams, Resp: Response>(
        &self,
        method: &'static str,
        request: Request<Req>,
    ) -> Result<tonic::Response<Resp>, Status> {
        authorize(&self.node, request.metadata())?;
        let params = request.get_ref().to_params().finish();
        Ok(tonic::Response::new(answer::<Resp>(&self.node, method, &params).await))
    }
}

type Answer<T> = Result<tonic::Response<T>, Status>;

#[tonic::async_trait]
impl CentrifugoApi for Api {
    async fn batch(&self, r: Request<BatchRequest>) -> Answer<BatchResponse> {
        self.call("batch", r).await
    }
    async fn publish(&self, r: Request<PublishRequest>) -> Answer<PublishResponse> {
        self.call("publish", r).await
    }
    async fn broadcast(&self, r: Request<BroadcastRequest>) -> Answer<BroadcastResponse> {
        self.call("broadcast", r).await
    }
    async fn subscribe(&self, r: Request<SubscribeRequest>) -> Answer<SubscribeResponse> {
        self.call("subscribe", r).await
    }
    async fn unsubscribe(&self, r: Request<UnsubscribeRequest>) -> Answer<UnsubscribeResponse> {
        self.call("unsubscribe", r).await
    }
    async fn disconnect(&self, r: Request<DisconnectRequest>) -> Answer<DisconnectResponse> {
        self.call("disconnect", r).await
    }
    async fn presence(&self, r: Request<PresenceRequest>) -> Answer<PresenceResponse> {
        self.call("presence", r).await
    }
    async fn presence_stats(&self, r: Request<PresenceStatsRequest>) -> Answer<PresenceStatsResponse> {
        self.call("presence_stats", r).await
    }
    async fn history(&self, r: Request<HistoryRequest>) -> Answer<HistoryResponse> {
        self.call("history", r).await
    }
    async fn history_remove(&self, r: Request<HistoryRemoveRequest>) -> Answer<HistoryRemoveResponse> {
        self.call("history_remove", r).await
    }
    async fn info(&self, r: Request<InfoRequest>) -> Answer<InfoResponse> {
        self.call("info", r).await
    }
    async fn rpc(&self, r: Request<RpcRequest>) -> Answer<RpcResponse> {
        self.call("rpc", r).await
    }
    async fn refresh(&self, r: Request<RefreshRequest>) -> Answer<RefreshResponse> {
        self.call("refresh", r).await
    }
    async fn channels(&self, r: Request<ChannelsRequest>) -> Answer<ChannelsResponse> {
        self.call("channels", r).await
    }
}

/// A `<Method>Response`: an error or a result read from the HTTP API's JSON result.
trait Response: Send + 'static {
    type Result: for<'de> Deserialize<'de>;
    fn new(error: Option<Error>, result: Option<Self::Result>) -> Self;
}

macro_rules! responses {
    ($($name:ident($result:ty);)*) => {$(
        impl Response for $name {
            type Result = $result;
            fn new(error: Option<Error>, result: Option<$result>) -> Self {
                Self { error, result }
            }
        }
    )*};
}

responses! {
    PublishResponse(PublishResult);
    BroadcastResponse(BroadcastResult);
    SubscribeResponse(SubscribeResult);
    UnsubscribeResponse(UnsubscribeResult);
    DisconnectResponse(DisconnectResult);
    PresenceResponse(PresenceResult);
    PresenceStatsResponse(PresenceStatsResult);
    HistoryResponse(HistoryResult);
    HistoryRemoveResponse(HistoryRemoveResult);
    InfoResponse(InfoResult);
    RpcResponse(RpcResult);
    RefreshResponse(RefreshResult);
    ChannelsResponse(ChannelsResult);
}

impl Response for BatchResponse {
    type Result = BatchResponse;
    /// A batch that cannot run at all has no replies (the HTTP API answers such a batch with
    /// an error Centrifugo's `BatchResponse` has no field for).
    fn new(_error: Option<Error>, result: Option<BatchResponse>) -> Self {
        result.unwrap_or_default()
    }
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

/// A JSON payload in a result as the bytes of its text (`data`, `conn_info` …).
pub(crate) fn json_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
    Ok(raw.get().as_bytes().to_vec())
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
