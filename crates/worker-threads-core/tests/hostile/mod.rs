//! What a hostile process worker can do to its parent: write records of its choosing
//! straight into the ring it writes (the second one of its channel's memfd: 32 header
//! words, `tail` first, then the data area), commit them, and ring every doorbell.

// Each test file that includes this uses part of it.
#![allow(dead_code)]

use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering::SeqCst;

/// A ring record's header word (`worker_threads_process`'s ring layout).
pub(crate) fn header(len: u32, tag: u8, kind: u8) -> u64 {
    u64::from(len) | u64::from(tag) << 32 | u64::from(kind) << 40
}

/// A data record's kind.
pub(crate) const DATA: u8 = 1;

/// Commits a frame (`tag`, `body`) as one data record, as [`commit_in_own_ring`] does;
/// returns the ring's position past it.
pub(crate) fn commit_frame(tag: u8, body: &[u8]) -> u64 {
    let mut words = vec![header(body.len() as u32, tag, DATA)];
    for chunk in body.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        words.push(u64::from_le_bytes(word));
    }
    commit_in_own_ring(&words)
}

/// Waits until the parent has read this process's outgoing ring up to `position`.
pub(crate) fn wait_until_read(position: u64) {
    let (mapping, ring) = own_ring();
    let head = &mapping.words()[ring + 8];
    while head.load(SeqCst) < position {
        std::thread::yield_now();
    }
}

/// This process's channel memfd, mapped, and the index of its outgoing ring's first word.
fn own_ring() -> (worker_threads_process::mapped::Mapping, usize) {
    let (memfd, _) = descriptors();
    // SAFETY: listed by /proc as open in this process, and kept open by the runtime.
    let memfd = unsafe { BorrowedFd::borrow_raw(memfd) }
        .try_clone_to_owned()
        .unwrap();
    let len = rustix::fs::fstat(&memfd).unwrap().st_size as usize / 8;
    let mapping = worker_threads_process::mapped::Mapping::open(memfd, len).unwrap();
    (mapping, len / 2)
}

/// The channel's memfd and its doorbells, as listed in /proc.
fn descriptors() -> (i32, Vec<i32>) {
    let mut memfd = None;
    let mut bells = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        if target.starts_with("/memfd:worker-threads-rings") {
            memfd = Some(fd);
        } else if target == "anon_inode:[eventfd]" {
            bells.push(fd);
        }
    }
    (memfd.expect("the channel's rings"), bells)
}

/// Commits `words` (a record's header and body) in this process's outgoing ring, then
/// rings every doorbell it holds. Call it in a process worker whose entry posts nothing:
/// the runtime's own writer sends `Online` (from the process's main thread, beside the
/// entry) and nothing after, so once `Online` is committed the ring is ours alone.
pub(crate) fn commit_in_own_ring(words: &[u64]) -> u64 {
    let (mapping, start) = own_ring();
    let ring = &mapping.words()[start..];
    let capacity = (ring.len() - 32) * 8;
    let mut tail = ring[0].load(SeqCst);
    while tail == 0 {
        std::thread::yield_now();
        tail = ring[0].load(SeqCst);
    }
    for (i, word) in words.iter().enumerate() {
        ring[32 + (tail as usize % capacity) / 8 + i].store(*word, SeqCst);
    }
    let end = tail + 8 * words.len() as u64;
    ring[0].store(end, SeqCst);
    for bell in descriptors().1 {
        // SAFETY: listed by /proc as open in this process, and kept open by the runtime.
        let bell = unsafe { BorrowedFd::borrow_raw(bell) };
        rustix::io::write(bell, &1u64.to_ne_bytes()).unwrap();
    }
    end
}
