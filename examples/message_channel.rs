//! The Node chapter's "Bidirectional communication via MessagePort created with MessageChannel",
//! with a plain thread on the other end (`examples/port_transfer.rs` does it with a
//! `Worker`): the main thread echoes whatever the other end posts.
//!
//! `cargo run --release --example message_channel`

use std::thread;

use worker_threads::MessageChannel;

fn main() -> anyhow::Result<()> {
    let MessageChannel { port1, port2 } = MessageChannel::<String>::new();

    // The other end: says hello, prints what comes back, then hangs up.
    let other = thread::spawn(move || -> anyhow::Result<()> {
        port2.post_message("Hello, World!".to_string())?;
        let msg = port2.recv()?;
        println!("We got a message from the main thread: {msg}");
        Ok(())
    });

    // The main thread: `port1.on('message', msg => port1.postMessage(msg))`.
    for msg in &port1 {
        port1.post_message(msg)?;
    }
    other
        .join()
        .map_err(|_| anyhow::anyhow!("the other thread panicked"))??;
    Ok(())
}
