//! What goes over NATS: the names of the queue's stream, consumer and subjects, the
//! headers of a task message, and the reply a worker sends back.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ConnectError;
use worker_threads_pool::{Backoff, Retry, TaskError};

/// The task's id, unique in its submitter (a decimal `u64`), in a task message's headers.
pub(crate) const ID: &str = "Wt-Id";
/// The subject the result goes to (only its submitter subscribes to it).
pub(crate) const REPLY: &str = "Wt-Reply";
/// `one` (the payload is a task) or `chunk` (the payload is a `Vec` of tasks).
pub(crate) const KIND: &str = "Wt-Kind";
pub(crate) const ONE: &str = "one";
pub(crate) const CHUNK: &str = "chunk";
/// The name of the task's body in the queue's object store, when it is larger than a
/// message (the message's payload is then empty).
pub(crate) const BODY: &str = "Wt-Body";
/// The task's retry policy, if it has one: `<attempts>`, then `;f<nanos>` (a fixed wait)
/// or `;e<first nanos>,<max nanos>` (doubling waits); no wait part means none.
pub(crate) const RETRY: &str = "Wt-Retry";

/// A task message's kind (`Wt-Kind`) and retry policy (`Wt-Retry`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    pub(crate) name: &'static str,
    pub(crate) retry: Option<Retry>,
}

impl Kind {
    /// One task.
    pub(crate) fn one(retry: Option<Retry>) -> Self {
        Self { name: ONE, retry }
    }

    /// A `map` chunk.
    pub(crate) fn chunk(retry: Option<Retry>) -> Self {
        Self { name: CHUNK, retry }
    }
}

/// A retry policy as its header's value.
pub(crate) fn retry_header(retry: &Retry) -> String {
    let attempts = retry.max_attempts();
    let nanos = |wait: Duration| u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
    match retry.delays() {
        Backoff::Fixed(wait) => format!("{attempts};f{}", nanos(wait)),
        Backoff::Exponential { first, max } => {
            format!("{attempts};e{},{}", nanos(first), nanos(max))
        }
        _ => attempts.to_string(),
    }
}

/// A retry policy from its header's value; `None` if it does not read as one.
pub(crate) fn parse_retry(header: &str) -> Option<Retry> {
    let (attempts, wait) = match header.split_once(';') {
        Some((attempts, wait)) => (attempts, Some(wait)),
        None => (header, None),
    };
    let retry = Retry::attempts(attempts.parse().ok()?);
    let nanos = |text: &str| text.parse::<u64>().ok().map(Duration::from_nanos);
    let backoff = match wait {
        None => Backoff::Immediate,
        Some(wait) => match wait.split_at_checked(1)? {
            ("f", wait) => Backoff::Fixed(nanos(wait)?),
            ("e", waits) => {
                let (first, max) = waits.split_once(',')?;
                Backoff::exponential(nanos(first)?).max(nanos(max)?)
            }
            _ => return None,
        },
    };
    Some(retry.backoff(backoff))
}

/// A task (or a chunk of tasks) as a message's payload: postcard; the codec's message if
/// it does not encode.
pub(crate) fn encode<T: Serialize + ?Sized>(task: &T) -> Result<bytes::Bytes, String> {
    postcard::to_stdvec(task)
        .map(bytes::Bytes::from)
        .map_err(|e| e.to_string())
}

/// Bodies above this many bytes are decoded (and, when large ones are expected, encoded)
/// on a blocking thread instead of the runtime's one thread: a 64 MiB body takes 0.2 s to
/// decode (6 s in an unoptimised build), and a worker's progress acknowledgements and a
/// submitter's other results must go on meanwhile.
pub(crate) const LARGE: usize = 1 << 20;

/// Decodes `bytes`, on a blocking thread if they are [`LARGE`].
pub(crate) async fn decode<T: DeserializeOwned + Send + 'static>(
    bytes: bytes::Bytes,
) -> Result<T, String> {
    if bytes.len() <= LARGE {
        return postcard::from_bytes(&bytes).map_err(|e| e.to_string());
    }
    off_runtime(move || postcard::from_bytes(&bytes).map_err(|e| e.to_string())).await
}

/// Runs `work` on the runtime's blocking threads.
pub(crate) async fn off_runtime<O: Send + 'static>(
    work: impl FnOnce() -> Result<O, String> + Send + 'static,
) -> Result<O, String> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(error.to_string()))
}

/// A task's name among every submitter's: its results subject and its id. Cancel notices
/// carry it; workers hold running tasks by it.
pub(crate) fn task_key(results: &str, id: u64) -> String {
    format!("{results}#{id}")
}

/// The names that one queue name gives.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// The JetStream stream: `WT_<queue>`.
    pub(crate) stream: String,
    /// Where tasks are published: `wt.<queue>.tasks`.
    pub(crate) tasks: String,
    /// The durable pull consumer every worker shares: `wt-<queue>`.
    pub(crate) consumer: String,
    /// Where submitters announce cancellations: `wt.<queue>.cancel`.
    pub(crate) cancel: String,
    /// The server's advisory when a task reaches `max_deliver`.
    pub(crate) max_deliveries: String,
    /// The stream that keeps the max-deliveries advisories, so a submitter that was away
    /// reads those it missed: `WT_<queue>_DEAD`.
    pub(crate) dead: String,
    /// The object store of bodies over `max_payload`: `wt-<queue>-bodies`.
    pub(crate) bodies: String,
    queue: String,
}

impl Names {
    pub(crate) fn new(queue: &str) -> Result<Self, ConnectError> {
        let valid = !queue.is_empty()
            && queue
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(ConnectError::QueueName(queue.to_string()));
        }
        let stream = format!("WT_{queue}");
        let consumer = format!("wt-{queue}");
        Ok(Self {
            tasks: format!("wt.{queue}.tasks"),
            cancel: format!("wt.{queue}.cancel"),
            max_deliveries: format!(
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"
            ),
            bodies: format!("wt-{queue}-bodies"),
            dead: format!("{stream}_DEAD"),
            stream,
            consumer,
            queue: queue.to_string(),
        })
    }

    /// The results subject of one submitter.
    pub(crate) fn results(&self, submitter: &str) -> String {
        format!("wt.{}.results.{submitter}", self.queue)
    }
}

/// A worker's results for one submitter, in one message: each task message's id with its
/// [`Reply`] encoded apart, so a reply that cannot be read costs only its own handle.
pub(crate) type Batch = Vec<(u64, Vec<u8>)>;

/// A worker's answer to one task message.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Reply<R> {
    /// One outcome per task in the message (one for `run`, the chunk's length for `map`).
    Done(Vec<Outcome<R>>),
    /// The worker could not decode the message.
    BadTask(String),
    /// The worker could not encode the results.
    BadResult(String),
    /// The reply is larger than a message: it is in the queue's object store under this
    /// name (an encoded `Reply`, never itself a `Body`).
    Body(String),
}

/// One task's outcome on the worker.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Outcome<R> {
    Ok(R),
    Panicked(String),
    Cancelled,
    TimedOut,
    Crashed(Option<i32>),
    /// Each of `attempts` deliveries failed; the last failure (a task's retry policy).
    Retried {
        attempts: u32,
        last: Box<Outcome<R>>,
    },
}

impl<R> Outcome<R> {
    pub(crate) fn into_result(self) -> Result<R, TaskError> {
        match self {
            Self::Ok(value) => Ok(value),
            Self::Panicked(message) => Err(TaskError::Panicked(message)),
            Self::Cancelled => Err(TaskError::Cancelled),
            Self::TimedOut => Err(TaskError::TimedOut),
            Self::Crashed(signal) => Err(TaskError::Crashed { signal }),
            Self::Retried { attempts, last } => Err(TaskError::Retried {
                attempts,
                last: Box::new(match last.into_result() {
                    Err(error) => error,
                    Ok(_) => TaskError::BadResult("a retried task's last try had a value".into()),
                }),
            }),
        }
    }

    /// Whether a new try could change it (see [`Retry::retries`]).
    pub(crate) fn is_retried(&self) -> bool {
        matches!(self, Self::Panicked(_) | Self::Crashed(_))
    }
}

impl<R> From<Result<R, worker_threads_pool::TaskError>> for Outcome<R> {
    fn from(result: Result<R, worker_threads_pool::TaskError>) -> Self {
        use worker_threads_pool::TaskError as Local;
        match result {
            Ok(value) => Self::Ok(value),
            Err(Local::Panicked(message)) => Self::Panicked(message),
            Err(Local::Cancelled) => Self::Cancelled,
            Err(Local::TimedOut) => Self::TimedOut,
            Err(Local::Crashed { signal }) => Self::Crashed(signal),
            Err(Local::Retried { attempts, last }) => Self::Retried {
                attempts,
                last: Box::new(Self::from(Err(*last))),
            },
            Err(other) => Self::Panicked(other.to_string()),
        }
    }
}

/// The advisory JetStream publishes when a message reaches `max_deliver` (the fields we
/// read).
#[derive(Deserialize, Debug)]
pub(crate) struct MaxDeliveriesAdvisory {
    pub(crate) stream_seq: u64,
    pub(crate) deliveries: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_checked_and_give_the_subjects() {
        assert!(matches!(Names::new("a.b"), Err(ConnectError::QueueName(_))));
        assert!(matches!(Names::new(""), Err(ConnectError::QueueName(_))));
        assert!(matches!(Names::new("a*"), Err(ConnectError::QueueName(_))));
        let names = Names::new("sq-rt_1").unwrap();
        assert_eq!(names.stream, "WT_sq-rt_1");
        assert_eq!(names.tasks, "wt.sq-rt_1.tasks");
        assert_eq!(names.consumer, "wt-sq-rt_1");
        assert_eq!(names.results("abc"), "wt.sq-rt_1.results.abc");
        assert_eq!(names.bodies, "wt-sq-rt_1-bodies");
        assert_eq!(names.dead, "WT_sq-rt_1_DEAD");
        assert_eq!(
            names.max_deliveries,
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.WT_sq-rt_1.wt-sq-rt_1"
        );
    }

    #[test]
    fn a_retry_policy_round_trips_through_its_header() {
        let ms = Duration::from_millis;
        for retry in [
            Retry::attempts(1),
            Retry::attempts(3),
            Retry::attempts(4).backoff(Backoff::Fixed(ms(250))),
            Retry::attempts(9).backoff(Backoff::exponential(ms(10)).max(ms(700))),
        ] {
            let header = retry_header(&retry);
            assert_eq!(parse_retry(&header), Some(retry), "{header}");
        }
        assert_eq!(
            retry_header(&Retry::attempts(4).backoff(Backoff::Fixed(ms(250)))),
            "4;f250000000"
        );
        for bad in ["", "x", "3;", "3;q1", "3;f", "3;e1", "3;e1,x", "-1"] {
            assert_eq!(parse_retry(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_reply_round_trips_and_maps_to_the_handle_errors() {
        let reply: Reply<u64> = Reply::Done(vec![
            Outcome::Ok(7),
            Outcome::Panicked("boom".into()),
            Outcome::Crashed(Some(6)),
            Outcome::Retried {
                attempts: 3,
                last: Box::new(Outcome::Panicked("third".into())),
            },
        ]);
        let bytes = postcard::to_stdvec(&reply).unwrap();
        let Reply::Done(outcomes) = postcard::from_bytes::<Reply<u64>>(&bytes).unwrap() else {
            panic!("not Done")
        };
        let results: Vec<_> = outcomes.into_iter().map(Outcome::into_result).collect();
        assert_eq!(
            results,
            vec![
                Ok(7),
                Err(TaskError::Panicked("boom".into())),
                Err(TaskError::Crashed { signal: Some(6) }),
                Err(TaskError::Retried {
                    attempts: 3,
                    last: Box::new(TaskError::Panicked("third".into()))
                })
            ]
        );
    }
}
