//! The servers a pool or a worker connects to (one URL, or a cluster's, separated by
//! commas), and the count of times the connection came back.

use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::{Event, ServerAddr};
use tokio::sync::watch;

use crate::error::ConnectError;

/// The server addresses in `urls` (`nats://a:4222` or `nats://a:4222,nats://b:4222`).
/// The client tries them in turn, and learns the rest of a cluster from the one it
/// reaches.
pub(crate) fn servers(urls: &str) -> Result<Vec<ServerAddr>, ConnectError> {
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<ServerAddr>()
                .map_err(|error| ConnectError::Url(format!("{url}: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(ConnectError::Url(format!("no server in {urls:?}")));
    }
    Ok(servers)
}

/// Counts the times a lost connection came back, from the client's events. The first
/// `Connected` (the connection being made) is not one: the client may report it after the
/// caller already started work on the new connection, and taking it for a reconnection
/// would redo that work (a worker gave back the tasks its first pull had delivered,
/// which counted a delivery against `max_deliver` for nothing).
pub(crate) struct Reconnections {
    lost: AtomicBool,
    count: watch::Sender<u64>,
}

impl Reconnections {
    /// A counter at 0, and a receiver that sees each reconnection as a change.
    pub(crate) fn new() -> (Self, watch::Receiver<u64>) {
        let (count, changes) = watch::channel(0);
        let counter = Self {
            lost: AtomicBool::new(false),
            count,
        };
        (counter, changes)
    }

    /// Takes one of the client's events.
    pub(crate) fn on_event(&self, event: &Event) {
        match event {
            Event::Disconnected => self.lost.store(true, Ordering::SeqCst),
            Event::Connected if self.lost.swap(false, Ordering::SeqCst) => {
                self.count.send_modify(|count| *count += 1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_connection_that_came_back_counts_as_a_reconnection() {
        let (counter, changes) = Reconnections::new();
        counter.on_event(&Event::Connected);
        assert_eq!(
            *changes.borrow(),
            0,
            "the first connection is not a reconnection"
        );
        assert!(!changes.has_changed().unwrap());
        counter.on_event(&Event::Disconnected);
        assert_eq!(*changes.borrow(), 0);
        counter.on_event(&Event::Connected);
        assert_eq!(*changes.borrow(), 1);
        counter.on_event(&Event::Connected);
        assert_eq!(
            *changes.borrow(),
            1,
            "a second Connected without a loss is not one"
        );
        counter.on_event(&Event::Disconnected);
        counter.on_event(&Event::Disconnected);
        counter.on_event(&Event::Connected);
        assert_eq!(*changes.borrow(), 2);
    }

    #[test]
    fn one_url_or_several_separated_by_commas() {
        let one = servers("nats://127.0.0.1:4222").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].port(), 4222);
        let three = servers("nats://127.0.0.1:1, nats://127.0.0.1:2,nats://127.0.0.1:3").unwrap();
        let ports: Vec<u16> = three.iter().map(ServerAddr::port).collect();
        assert_eq!(ports, vec![1, 2, 3]);
        assert!(matches!(servers(""), Err(ConnectError::Url(_))));
        assert!(matches!(servers("nats://[bad"), Err(ConnectError::Url(_))));
    }
}
