//! A network namespace joined to this host by two veth pairs, so a test can partition a process
//! from one peer while others still reach it: `engine` carries its traffic to NATS, `clients`
//! its client and API traffic. Addresses come from 198.18.0.0/15 (reserved for network tests).
//! Needs root (`ip netns`); removed on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const HINT: &str = "network namespaces need root and iproute2 (apt-get install iproute2); \
                    the chaos tests cut a node off the network with them";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One side of a veth pair: the host's address and the namespace's.
pub struct Link {
    host_if: String,
    ns_if: String,
    pub host_ip: String,
    pub ns_ip: String,
}

pub struct NetNs {
    pub name: String,
    /// Where the namespace meets the engine (NATS listens on `engine.host_ip`).
    pub engine: Link,
    /// Where clients and the API reach the namespace (`clients.ns_ip`).
    pub clients: Link,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("cannot run ip ({e}): {HINT}"));
    assert!(
        out.status.success(),
        "ip {} failed: {}\n{HINT}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl NetNs {
    pub fn create() -> NetNs {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() % 100_000) * 4 + n % 4;
        let name = format!("gyre-{}-{n}", std::process::id());
        // Two /30 subnets per namespace, picked from the process id so parallel runs differ.
        let block = (id % 16_384) * 8;
        let addr = |offset: u32| {
            let v = block + offset;
            format!("198.{}.{}.{}", 18 + (v >> 16) % 2, (v >> 8) & 255, v & 255)
        };
        ip(&["netns", "add", &name]);
        let ns = NetNs {
            engine: Link { host_if: format!("gy{id}e"), ns_if: "engine0".into(), host_ip: addr(1), ns_ip: addr(2) },
            clients: Link { host_if: format!("gy{id}c"), ns_if: "clients0".into(), host_ip: addr(5), ns_ip: addr(6) },
            name,
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        for link in [&ns.engine, &ns.clients] {
            ip(&["link", "add", &link.host_if, "type", "veth", "peer", "name", &link.ns_if, "netns", &ns.name]);
            ip(&["addr", "add", &format!("{}/30", link.host_ip), "dev", &link.host_if]);
            ip(&["link", "set", &link.host_if, "up"]);
            ip(&["-n", &ns.name, "addr", "add", &format!("{}/30", link.ns_ip), "dev", &link.ns_if]);
            ip(&["-n", &ns.name, "link", "set", &link.ns_if, "up"]);
        }
        ns
    }

    /// Cuts the namespace off the engine: its packets to NATS go nowhere, established
    /// connections hang until their keepalives notice, new ones fail.
    pub fn cut_engine(&self) {
        ip(&["-n", &self.name, "link", "set", &self.engine.ns_if, "down"]);
    }

    /// Undoes [`cut_engine`](Self::cut_engine).
    pub fn heal_engine(&self) {
        ip(&["-n", &self.name, "link", "set", &self.engine.ns_if, "up"]);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth ends and so their host peers.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        for link in [&self.engine, &self.clients] {
            let _ = Command::new("ip").args(["link", "del", &link.host_if]).output();
        }
    }
}
