//! Backend proxies over gRPC (`grpc://` endpoints): a real gRPC backend (tonic, Centrifugo's
//! `CentrifugoProxy` service) decides connects, subscribes, publishes, refreshes and RPC.

use std::sync::{Arc, Mutex};

use gyre_tests::pb::proxy::centrifugo_proxy_server::{CentrifugoProxy, CentrifugoProxyServer};
use gyre_tests::pb::proxy::*;
use gyre_tests::{base_config, Gyre, WsClient};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tonic::{Request, Response, Status};

/// Hook name and the `cookie` metadata of a call the backend received.
type Call = (String, Option<String>);

#[derive(Clone, Default)]
struct Backend {
    seen: Arc<Mutex<Vec<Call>>>,
}

impl Backend {
    /// Records the call and hands over its message.
    fn seen<T>(&self, hook: &str, request: Request<T>) -> T {
        let cookie = request.metadata().get("cookie").and_then(|v| v.to_str().ok()).map(str::to_string);
        self.seen.lock().unwrap().push((hook.to_string(), cookie));
        request.into_inner()
    }
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CentrifugoProxy for Backend {
    /// The client names its fate in the connect data.
    async fn connect(&self, request: Request<ConnectRequest>) -> Answer<ConnectResponse> {
        let r = self.seen("connect", request);
        let data = json_of(&r.data);
        Ok(Response::new(match data["do"].as_str() {
            Some("disconnect") => ConnectResponse {
                disconnect: Some(Disconnect { code: 4501, reason: "go away".into() }),
                ..Default::default()
            },
            Some("error") => ConnectResponse {
                error: Some(Error { code: 1000, message: "custom".into(), temporary: false }),
                ..Default::default()
            },
            _ => ConnectResponse {
                result: Some(ConnectResult {
                    user: data["user"].as_str().unwrap_or_default().into(),
                    data: br#"{"welcome":"grpc"}"#.to_vec(),
                    info: format!(r#"{{"transport":"{}"}}"#, r.transport).into_bytes(),
                    expire_at: data["ttl"].as_i64().map_or(0, |t| now() + t),
                    channels: vec!["chat:gp".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
        }))
    }

    async fn refresh(&self, request: Request<RefreshRequest>) -> Answer<RefreshResponse> {
        self.seen("refresh", request);
        let result = RefreshResult { expired: true, ..Default::default() };
        Ok(Response::new(RefreshResponse { result: Some(result), ..Default::default() }))
    }

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Answer<SubscribeResponse> {
        let r = self.seen("subscribe", request);
        let result = SubscribeResult {
            data: json!({"hello": r.channel, "user": r.user}).to_string().into_bytes(),
            info: br#"{"sub":true}"#.to_vec(),
            expire_at: if r.channel.ends_with("exp") { now() + 2 } else { 0 },
            ..Default::default()
        };
        Ok(Response::new(SubscribeResponse { result: Some(result), ..Default::default() }))
    }

    async fn sub_refresh(&self, request: Request<SubRefreshRequest>) -> Answer<SubRefreshResponse> {
        self.seen("sub_refresh", request);
        let result = SubRefreshResult { expired: true, ..Default::default() };
        Ok(Response::new(SubRefreshResponse { result: Some(result), ..Default::default() }))
    }

    async fn publish(&self, request: Request<PublishRequest>) -> Answer<PublishResponse> {
        let r = self.seen("publish", request);
        let n = json_of(&r.data)["n"].clone();
        let result = PublishResult { data: json!({"rewritten": n}).to_string().into_bytes(), ..Default::default() };
        Ok(Response::new(PublishResponse { result: Some(result), ..Default::default() }))
    }

    /// `echo` answers the request's data bytes as they came.
    async fn rpc(&self, request: Request<RpcRequest>) -> Answer<RpcResponse> {
        let r = self.seen("rpc", request);
        Ok(Response::new(match r.method.as_str() {
            "echo" => {
                RpcResponse { result: Some(RpcResult { data: r.data, ..Default::default() }), ..Default::default() }
            }
            _ => RpcResponse {
                error: Some(Error { code: 104, message: "method not found".into(), temporary: false }),
                ..Default::default()
            },
        }))
    }
}

/// Starts the backend on a free port; returns it and its `grpc://` address.
async fn backend() -> (Backend, String) {
    let backend = Backend::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let service = backend.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(CentrifugoProxyServer::new(service))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    (backend, format!("grpc://{addr}"))
}

fn start(url: &str) -> Gyre {
    let mut config = base_config();
    for hook in ["connect", "refresh", "subscribe", "publish", "sub_refresh", "rpc"] {
        config[format!("proxy_{hook}_endpoint")] = json!(url);
    }
    config["proxy_http_headers"] = json!(["Cookie"]);
    config["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "gp", "proxy_subscribe": true, "proxy_publish": true, "proxy_sub_refresh": true,
                     "presence": true}));
    Gyre::start_with(&config, &[])
}

async fn connect(gyre: &Gyre, data: Value) -> (WsClient, Result<Value, u16>) {
    let mut request = gyre.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("cookie", "session=grpc".parse().unwrap());
    let mut c = WsClient::connect_request(request).await.expect("connect");
    let id = c.send(json!({"connect": {"data": data}})).await;
    let reply = c.reply_or_closed(id).await.map_err(|closed| closed.code);
    (c, reply)
}

#[tokio::test]
async fn a_grpc_backend_decides_through_centrifugos_proxy_service() {
    let (backend, url) = backend().await;
    let gyre = start(&url);
    let (mut c, reply) = connect(&gyre, json!({"user": "77"})).await;
    let reply = reply.expect("connected");
    assert_eq!(reply["connect"]["data"], json!({"welcome": "grpc"}), "{reply}");
    assert!(reply["connect"]["subs"]["chat:gp"].is_object(), "{reply}");

    let echo = c.command(json!({"rpc": {"method": "echo", "data": {"x": 1}}})).await;
    assert_eq!(echo["rpc"]["data"], json!({"x": 1}), "{echo}");
    // Payload bytes cross the gRPC proxy both ways unchanged.
    let exact = crate::exact::EXACT;
    c.send_text(&format!(r#"{{"id":90,"rpc":{{"method":"echo","data":{exact}}}}}"#)).await;
    assert!(c.reply_to(90).await["rpc"].is_object());
    assert!(c.frames.iter().any(|f| f.contains(&format!(r#""data":{exact}"#))), "{:?}", c.frames);
    let unknown = c.command(json!({"rpc": {"method": "nope"}})).await;
    assert_eq!(unknown["error"]["code"], 104);

    let sub = c.command(json!({"subscribe": {"channel": "gp:room"}})).await;
    assert_eq!(sub["subscribe"]["data"], json!({"hello": "gp:room", "user": "77"}), "{sub}");
    let (_, presence) = gyre.api("presence", json!({"channel": "gp:room"})).await;
    let entry = presence["result"]["presence"].as_object().unwrap().values().next().cloned().unwrap();
    assert_eq!((&entry["conn_info"], &entry["chan_info"]), (&json!({"transport": "websocket"}), &json!({"sub": true})));
    assert!(c.command(json!({"publish": {"channel": "gp:room", "data": {"n": 5}}})).await["publish"].is_object());
    assert_eq!(c.next_push().await["pub"]["data"], json!({"rewritten": 5}));

    // An expiring subscription the backend does not prolong ends with 2501.
    c.command(json!({"subscribe": {"channel": "gp:exp"}})).await;
    let push = c.next_push().await;
    assert_eq!((&push["channel"], &push["unsubscribe"]["code"]), (&json!("gp:exp"), &json!(2501)), "{push}");

    assert_eq!(connect(&gyre, json!({"do": "disconnect"})).await.1, Err(4501));
    let refused = connect(&gyre, json!({"do": "error"})).await.1.expect("an error reply");
    assert_eq!(refused["error"], json!({"code": 1000, "message": "custom"}));

    // Server-side refresh: the backend says expired, the connection closes with 3005.
    let (mut expiring, reply) = connect(&gyre, json!({"user": "78", "ttl": 2})).await;
    assert!(reply.expect("connected")["connect"].get("expires").is_none());
    assert_eq!(expiring.closed().await.code, 3005);

    let seen = backend.seen.lock().unwrap().clone();
    for hook in ["connect", "rpc", "subscribe", "publish", "sub_refresh", "refresh"] {
        assert!(seen.iter().any(|(h, _)| h == hook), "{hook} not called: {seen:?}");
    }
    assert!(seen.iter().all(|(_, cookie)| cookie.as_deref() == Some("session=grpc")), "headers as metadata: {seen:?}");
}

#[tokio::test]
async fn an_unreachable_grpc_backend_is_error_100() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("grpc://{}", listener.local_addr().unwrap());
    drop(listener);
    let gyre = start(&url);
    let (_, reply) = connect(&gyre, json!({"user": "1"})).await;
    assert_eq!(reply.expect("an error reply")["error"]["code"], 100);
}
