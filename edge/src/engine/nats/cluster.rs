//! Node-to-node traffic: user commands, heartbeats for `info`, the `channels` survey.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{unavailable, Shared};
use crate::engine::EngineError;
use crate::internode::{NodeInfo, UserCommand};

/// How often nodes announce themselves.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node not heard from for this long is gone.
const NODE_TTL: Duration = Duration::from_secs(7);
/// How often nodes check whether a history stream was re-created (new epoch).
const EPOCH_CHECK: Duration = Duration::from_secs(3);
/// The longest a `channels` survey waits for answers.
const SURVEY_TIMEOUT: Duration = Duration::from_millis(500);

/// Starts the control, heartbeat, survey and presence-refresh tasks.
pub async fn start(shared: Arc<Shared>) -> Result<(), EngineError> {
    let client = &shared.client;
    let mut control =
        client.subscribe(shared.layout.control_subject()).await.map_err(|e| unavailable("subscribe", e))?;
    let mut nodes = client.subscribe(shared.layout.nodes_subject()).await.map_err(|e| unavailable("subscribe", e))?;
    let own = shared.layout.node_subject(&shared.handler.node_info().uid);
    let mut direct = client.subscribe(own).await.map_err(|e| unavailable("subscribe", e))?;
    let mut survey =
        client.subscribe(shared.layout.channels_survey_subject()).await.map_err(|e| unavailable("subscribe", e))?;
    client.flush().await.map_err(|e| unavailable("flush", e))?;

    let s = shared.clone();
    let t1 = tokio::spawn(async move {
        while let Some(msg) = control.next().await {
            s.apply_command(msg).await;
        }
    });
    let s = shared.clone();
    let t7 = tokio::spawn(async move {
        while let Some(msg) = direct.next().await {
            s.apply_command(msg).await;
        }
    });
    let s = shared.clone();
    let t2 = tokio::spawn(async move {
        while let Some(msg) = nodes.next().await {
            if let Ok(info) = serde_json::from_slice::<NodeInfo>(&msg.payload) {
                let uid = info.uid.clone();
                let new = s.nodes.write().insert(uid.clone(), (info, Instant::now())).is_none();
                // Answer a newcomer at once so every node knows every other within a moment.
                if new && uid != s.handler.node_info().uid {
                    s.announce().await;
                }
            }
        }
    });
    let s = shared.clone();
    let t3 = tokio::spawn(async move {
        while let Some(msg) = survey.next().await {
            let Some(reply) = msg.reply else { continue };
            let body = serde_json::to_vec(&s.handler.local_channels()).unwrap_or_default();
            if let Err(err) = s.client.publish(reply, body.into()).await {
                tracing::debug!(%err, "survey reply failed");
            }
        }
    });
    let s = shared.clone();
    let t4 = tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            s.announce().await;
            s.nodes.write().retain(|_, (_, seen)| seen.elapsed() < NODE_TTL);
        }
    });
    let s = shared.clone();
    let t6 = tokio::spawn(async move {
        let mut tick = tokio::time::interval(EPOCH_CHECK);
        loop {
            tick.tick().await;
            s.refresh_epochs().await;
        }
    });
    let s = shared.clone();
    let t5 = tokio::spawn(async move {
        let mut tick = tokio::time::interval(s.settings.presence_refresh.max(Duration::from_millis(100)));
        loop {
            tick.tick().await;
            s.presence.refresh().await;
        }
    });
    let t8 = tokio::spawn(shared.presence.clone().run_view());
    shared.tasks.lock().extend([t1, t2, t3, t4, t5, t6, t7, t8]);
    Ok(())
}

impl Shared {
    /// Publishes this node's heartbeat.
    async fn announce(&self) {
        if let Ok(body) = serde_json::to_vec(&self.handler.node_info()) {
            let _ = self.client.publish(self.layout.nodes_subject(), body.into()).await;
        }
    }

    /// Applies a command from another node (or this one) and acknowledges it with this
    /// node's id, so the sender knows it arrived.
    async fn apply_command(&self, msg: async_nats::Message) {
        match serde_json::from_slice::<UserCommand>(&msg.payload) {
            Ok(cmd) => self.handler.handle_command(&cmd),
            Err(err) => {
                tracing::warn!(%err, "undecodable node command");
                return;
            }
        }
        if let Some(reply) = msg.reply {
            let uid = self.handler.node_info().uid;
            if let Err(err) = self.client.publish(reply, uid.into_bytes().into()).await {
                tracing::debug!(%err, "command acknowledgement not sent");
            }
        }
    }

    /// How long a sender waits for acknowledgements: most of the engine call's deadline.
    fn ack_wait(&self) -> Duration {
        self.config().engine_timeout.0.mul_f32(0.75)
    }

    /// Sends a command to every node and waits until each live node has acknowledged it.
    pub(super) async fn publish_command(&self, command: &UserCommand) -> Result<(), EngineError> {
        self.ensure_connected()?;
        let body = serde_json::to_vec(command).map_err(|e| unavailable("encode", e))?;
        let mut missing: std::collections::HashMap<String, String> =
            self.live_nodes().into_iter().map(|n| (n.uid, n.name)).collect();
        let inbox = self.client.new_inbox();
        let mut acks = self.client.subscribe(inbox.clone()).await.map_err(|e| unavailable("subscribe", e))?;
        self.client
            .publish_with_reply(self.layout.control_subject(), inbox, body.into())
            .await
            .map_err(|e| unavailable("publish", e))?;
        let deadline = tokio::time::Instant::now() + self.ack_wait();
        while !missing.is_empty() {
            match tokio::time::timeout_at(deadline, acks.next()).await {
                Ok(Some(ack)) => {
                    missing.remove(String::from_utf8_lossy(&ack.payload).as_ref());
                }
                _ => break,
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let mut names: Vec<String> = missing.into_values().collect();
        names.sort();
        Err(EngineError::Unacknowledged(names))
    }

    /// Sends a command to one node and waits for its acknowledgement.
    pub(super) async fn send_to_node(&self, node: &str, command: &UserCommand) -> Result<(), EngineError> {
        self.ensure_connected()?;
        let body = serde_json::to_vec(command).map_err(|e| unavailable("encode", e))?;
        let request = self.client.request(self.layout.node_subject(node), body.into());
        match tokio::time::timeout(self.ack_wait(), request).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unavailable("node command", e)),
            Err(_) => Err(EngineError::Unacknowledged(vec![node.to_string()])),
        }
    }

    /// This node (always current) and every other node heard from recently.
    pub(super) fn live_nodes(&self) -> Vec<NodeInfo> {
        let me = self.handler.node_info();
        let mut out = vec![me.clone()];
        for (uid, (info, seen)) in self.nodes.read().iter() {
            if *uid != me.uid && seen.elapsed() < NODE_TTL {
                out.push(info.clone());
            }
        }
        out
    }

    /// Asks every node for its channels and sums the subscriber counts.
    pub(super) async fn survey_channels(&self) -> Result<Vec<(String, usize)>, EngineError> {
        let expected = self.live_nodes().len();
        let inbox = self.client.new_inbox();
        let mut replies = self.client.subscribe(inbox.clone()).await.map_err(|e| unavailable("subscribe", e))?;
        self.client
            .publish_with_reply(self.layout.channels_survey_subject(), inbox, bytes::Bytes::new())
            .await
            .map_err(|e| unavailable("publish", e))?;
        let mut totals = std::collections::HashMap::<String, usize>::new();
        let deadline = tokio::time::Instant::now() + SURVEY_TIMEOUT;
        let mut answered = 0;
        while answered < expected {
            match tokio::time::timeout_at(deadline, replies.next()).await {
                Ok(Some(msg)) => {
                    answered += 1;
                    if let Ok(list) = serde_json::from_slice::<Vec<(String, usize)>>(&msg.payload) {
                        for (name, n) in list {
                            *totals.entry(name).or_default() += n;
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(totals.into_iter().collect())
    }
}
