//! Descriptors that travel with a frame, for values that serialize into one: a value's
//! `Serialize` impl calls [`push`] (inside [`collect`]), its `Deserialize` impl calls
//! [`take`] (inside [`provide`]). The frame carries them with `SCM_RIGHTS`; the body
//! carries their indices. (ipc-channel does the same with its thread-local handle lists.)

use std::cell::RefCell;
use std::os::fd::OwnedFd;

thread_local! {
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Runs `encode`, collecting the descriptors it [`push`]es: they go with the frame.
pub fn collect<R>(encode: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let previous = OUTGOING.with(|out| out.replace(Some(Vec::new())));
    let value = encode();
    let fds = OUTGOING
        .with(|out| out.replace(previous))
        .unwrap_or_default();
    (value, fds)
}

/// Runs `decode` with the descriptors a frame brought, for it to [`take`].
pub fn provide<R>(fds: Vec<OwnedFd>, decode: impl FnOnce() -> R) -> R {
    let previous = INCOMING.with(|inc| inc.replace(Some(fds.into_iter().map(Some).collect())));
    let value = decode();
    INCOMING.with(|inc| inc.replace(previous));
    value
}

/// Adds `fd` to the frame being encoded: its index, or `None` outside [`collect`] (the
/// value is being serialized for something else than a channel frame).
pub fn push(fd: OwnedFd) -> Option<u32> {
    OUTGOING.with(|out| {
        let mut out = out.borrow_mut();
        let list = out.as_mut()?;
        list.push(fd);
        u32::try_from(list.len() - 1).ok()
    })
}

/// Takes descriptor `index` of the frame being decoded, once; `None` if there is no such
/// descriptor, it was taken already, or this is not inside [`provide`].
pub fn take(index: u32) -> Option<OwnedFd> {
    INCOMING.with(|inc| {
        inc.borrow_mut()
            .as_mut()?
            .get_mut(usize::try_from(index).ok()?)?
            .take()
    })
}

#[cfg(test)]
mod tests {
    use super::{collect, provide, push, take};

    #[test]
    fn descriptors_go_out_by_index_and_come_back_once() {
        let (a, b) = crate::channel_pair().unwrap();
        assert_eq!(push(a.try_clone().unwrap()), None, "outside collect");
        let (indices, fds) = collect(|| (push(a).unwrap(), push(b).unwrap()));
        assert_eq!(indices, (0, 1));
        assert_eq!(fds.len(), 2);
        provide(fds, || {
            assert!(take(1).is_some());
            assert!(take(1).is_none(), "once");
            assert!(take(0).is_some());
            assert!(take(7).is_none());
        });
        assert!(take(0).is_none(), "outside provide");
    }
}
