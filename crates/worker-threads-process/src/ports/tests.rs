//! The relay protocol between two routers over a real socketpair in one process, with a
//! plain endpoint (a queue each way): order, close, flush on finish, ids, bad frames.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use super::{Endpoint, Router, Side, export, import};
use crate::channel::{Channel, Frame, channel_pair};
use crate::codec;
use crate::error::IpcError;

const TAG: u8 = 2;
const PATIENCE: Duration = Duration::from_secs(60);

/// One end: what the program posted (for the peer), what the peer delivered, closed.
#[derive(Default)]
struct Queue {
    outgoing: VecDeque<u64>,
    delivered: Vec<u64>,
    closed: bool,
    waker: Option<Waker>,
}

#[derive(Clone, Default)]
struct End(Arc<Mutex<Queue>>);

impl End {
    fn post(&self, n: u64) {
        let mut queue = self.0.lock().unwrap();
        queue.outgoing.push_back(n);
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
    }

    fn shut(&self) {
        Endpoint::close(self);
    }

    /// Waits (bounded) until `done` holds for the delivered values and the closed flag.
    fn wait_for(&self, done: impl Fn(&[u64], bool) -> bool) -> (Vec<u64>, bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let queue = self.0.lock().unwrap();
            if done(&queue.delivered, queue.closed) || Instant::now() > deadline {
                return (queue.delivered.clone(), queue.closed);
            }
            drop(queue);
            thread::yield_now();
        }
    }
}

impl Endpoint for End {
    fn deliver(&self, message: &[u8]) -> Result<(), IpcError> {
        let n: u64 = codec::decode(message)?;
        let mut queue = self.0.lock().unwrap();
        if !queue.closed {
            queue.delivered.push(n);
        }
        Ok(())
    }

    fn poll_take(&self, cx: &mut Context<'_>, out: &mut Vec<u8>) -> Poll<Result<bool, IpcError>> {
        let mut queue = self.0.lock().unwrap();
        if let Some(n) = queue.outgoing.pop_front() {
            return Poll::Ready(codec::encode_into(&n, out).map(|()| true));
        }
        if queue.closed {
            return Poll::Ready(Ok(false));
        }
        queue.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn close(&self) {
        let mut queue = self.0.lock().unwrap();
        queue.closed = true;
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
    }
}

/// Two routers over a socketpair, each with a reader thread delivering port frames.
struct Link {
    parent: Arc<Router>,
    child: Arc<Router>,
    readers: Vec<thread::JoinHandle<Result<(), IpcError>>>,
}

impl Link {
    fn new() -> Link {
        let (a, b) = channel_pair().unwrap();
        let parent = Router::new(Arc::new(Channel::new(a, 1 << 20)), TAG, Side::Parent);
        let child = Router::new(Arc::new(Channel::new(b, 1 << 20)), TAG, Side::Child);
        let readers = [&parent, &child]
            .into_iter()
            .map(|router| {
                let router = Arc::clone(router);
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    while let Some(frame) = router.channel().recv(&mut buf)? {
                        router.deliver(frame)?;
                    }
                    Ok(())
                })
            })
            .collect();
        Link {
            parent,
            child,
            readers,
        }
    }

    /// A port exported by the parent and imported by the child (as a message carrying
    /// it would do): its id and the two ends.
    fn cross(&self) -> (u64, End, End) {
        let (here, there) = (End::default(), End::default());
        let encoded = self.parent.encode(|| export(Box::new(here.clone())));
        let id = encoded.value.unwrap();
        self.parent.relay(encoded.ports);
        let imported = self
            .child
            .decode(Vec::new(), || Ok(import(id, Box::new(there.clone()))));
        assert!(imported.unwrap());
        (id, here, there)
    }

    fn end(self) {
        self.parent.finish();
        self.child.finish();
        self.parent.channel().shutdown();
        self.child.channel().shutdown();
        for reader in self.readers {
            let _ = reader.join().unwrap();
        }
    }
}

#[test]
fn what_is_posted_crosses_in_order_both_ways_then_the_close() {
    let link = Link::new();
    let (_, here, there) = link.cross();
    there.post(7);
    let (back, _) = here.wait_for(|back, _| !back.is_empty());
    assert_eq!(back, [7]);
    for n in 0..1_000 {
        here.post(n);
    }
    here.shut();
    // Everything posted before the close arrives, then the close.
    let (got, closed) = there.wait_for(|got, closed| got.len() == 1_000 && closed);
    assert_eq!(got, (0..1_000).collect::<Vec<_>>());
    assert!(closed);
    link.end();
}

#[test]
fn finish_sends_what_the_ends_hold_before_it_returns() {
    let link = Link::new();
    let ends: Vec<_> = (0..20).map(|_| link.cross()).collect();
    for (i, (_, _, there)) in (0u64..).zip(&ends) {
        for n in 0..50 {
            there.post(i * 1_000 + n);
        }
    }
    // The child ends (as a process worker does before `Exit`): every end closes after
    // what it holds is sent.
    link.child.finish();
    for (i, (_, here, _)) in (0u64..).zip(&ends) {
        let (got, closed) = here.wait_for(|got, closed| got.len() == 50 && closed);
        assert_eq!(got, (0..50).map(|n| i * 1_000 + n).collect::<Vec<_>>());
        assert!(closed);
    }
    link.end();
}

#[test]
fn an_id_the_peer_could_not_pick_or_one_in_use_is_a_decode_error() {
    let link = Link::new();
    // The child's ids carry the top bit: a parent-side id imported by the parent is wrong.
    let wrong = link
        .parent
        .decode(Vec::new(), || Ok(import(5, Box::new(End::default()))));
    assert!(matches!(wrong, Err(IpcError::Decode(_))), "{wrong:?}");
    // An id in use: the child's import of the parent's port, again.
    let (id, _, _) = link.cross();
    let again = link
        .child
        .decode(Vec::new(), || Ok(import(id, Box::new(End::default()))));
    assert!(matches!(again, Err(IpcError::Decode(_))), "{again:?}");
    // The same id twice in one frame.
    let id = (1 << 63) | 77;
    let twice = link.parent.decode(Vec::new(), || {
        import(id, Box::new(End::default()));
        import(id, Box::new(End::default()));
        Ok(())
    });
    assert!(matches!(twice, Err(IpcError::Decode(_))), "{twice:?}");
    link.end();
}

#[test]
fn a_bad_port_frame_is_an_error_and_an_unknown_port_is_ignored() {
    let link = Link::new();
    let frame = |body: Vec<u8>| Frame {
        tag: TAG,
        body,
        fds: Vec::new(),
    };
    assert!(matches!(
        link.parent.deliver(frame(vec![1, 2, 3])),
        Err(IpcError::Malformed(_))
    ));
    let unknown_kind = [&12_345u64.to_le_bytes()[..], &[9]].concat();
    assert!(matches!(
        link.parent.deliver(frame(unknown_kind)),
        Err(IpcError::Malformed(_))
    ));
    let unknown_port = [&12_345u64.to_le_bytes()[..], &[0, 42]].concat();
    assert!(link.parent.deliver(frame(unknown_port)).is_ok());
    // A known port, a message that is not its type: the decode error.
    let (id, _, there) = link.cross();
    let not_a_number = [&id.to_le_bytes()[..], &[0, 0xff]].concat();
    assert!(matches!(
        link.child.deliver(frame(not_a_number)),
        Err(IpcError::Decode(_))
    ));
    assert_eq!(there.wait_for(|_, _| true).0, Vec::<u64>::new());
    link.end();
}

#[test]
fn outside_a_scope_nothing_is_exported_or_imported() {
    assert_eq!(export(Box::new(End::default())), None);
    assert!(!import(1, Box::new(End::default())));
}
