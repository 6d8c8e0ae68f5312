//! Moving a file's bytes: the sans-IO state machines of an upload ([`Upload`]) and a
//! download ([`Download`]), apart from the record sync. They hand out requests and take the
//! answers like the [`crate::Engine`]'s sync, but never touch the replica: an upload ends with
//! the value to store under the file's key, a download starts from that value.

mod download;
mod many;
mod upload;

use std::collections::{HashMap, VecDeque};

pub use download::Download;
pub(crate) use download::Ranges;
pub use many::DownloadMany;
pub use upload::{FileReport, Upload, DEFAULT_PACK_SIZE};
pub(crate) use upload::{PackNote, ResumablePack, Stored};

use crate::crypto::SecretKey;
use crate::error::Result;
use crate::http::{Method, Request, RequestKind, Response};
use crate::ids::{RequestId, Timestamp, VaultId};
use crate::retry::RetryPolicy;
use crate::s3;
use crate::store::Store;

/// The keys and names a transfer needs, copied out of the engine.
pub(crate) struct FileKeys {
    pub vault: VaultId,
    /// The key generation the keys below are of (0: the vault's own key).
    pub generation: u32,
    pub chunk: SecretKey,
    pub chunk_id: SecretKey,
    pub chunker: SecretKey,
    pub file_hash: SecretKey,
    /// Whether new chunks are deflated where that makes them shorter (else stored with codec
    /// byte 0).
    pub compress: bool,
    pub store: Store,
    /// The vault's folder, `"<prefix><vault id>/"`.
    pub folder: String,
    /// Held while the transfer lives: the engine collects no pack meanwhile.
    #[allow(dead_code)] // held, never read
    pub alive: std::sync::Arc<()>,
}

impl FileKeys {
    fn url(&self, name: &str) -> String {
        self.store.object_url(&format!("{}{name}", self.folder))
    }
}

/// A request to make, kept until it is answered so that it can be sent again.
struct Op<P> {
    kind: RequestKind,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: bytes::Bytes,
    pending: P,
    attempt: u32,
    due: Timestamp,
}

/// Requests of one transfer: queued, waiting out a backoff, or out.
struct Requests<P> {
    queue: VecDeque<Op<P>>,
    delayed: Vec<Op<P>>,
    inflight: HashMap<RequestId, Op<P>>,
    next_id: u64,
    retry: RetryPolicy,
    /// Requests handed out (retries included) and body bytes sent.
    sent: u64,
    bytes_sent: u64,
}

impl<P> Requests<P> {
    fn new(retry: RetryPolicy) -> Self {
        Requests {
            queue: VecDeque::new(),
            delayed: Vec::new(),
            inflight: HashMap::new(),
            next_id: 0,
            retry,
            sent: 0,
            bytes_sent: 0,
        }
    }

    fn push(
        &mut self,
        kind: RequestKind,
        method: Method,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        pending: P,
    ) {
        self.queue.push_back(Op {
            kind,
            method,
            url,
            headers,
            body: body.into(),
            pending,
            attempt: 1,
            due: Timestamp(0),
        });
    }

    /// The body bytes of the requests not yet answered for good.
    fn body_bytes(&self) -> usize {
        self.queue
            .iter()
            .chain(&self.delayed)
            .chain(self.inflight.values())
            .map(|op| op.body.len())
            .sum()
    }

    /// Requests not yet answered for good.
    fn outstanding(&self) -> usize {
        self.queue.len() + self.delayed.len() + self.inflight.len()
    }

    fn poll(&mut self, now: Timestamp) -> Option<Request> {
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].due <= now {
                let op = self.delayed.swap_remove(i);
                self.queue.push_back(op);
            } else {
                i += 1;
            }
        }
        let op = self.queue.pop_front()?;
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let request = Request {
            id,
            kind: op.kind,
            method: op.method,
            url: op.url.clone(),
            headers: op.headers.clone(),
            body: op.body.clone(),
        };
        self.sent += 1;
        self.bytes_sent += request.body.len() as u64;
        self.inflight.insert(id, op);
        Some(request)
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.delayed.iter().map(|op| op.due).min()
    }

    /// Takes the answer to `id`: `None` when it is unknown or the request goes out again
    /// (a failure that may pass), else what the request was for and its answer.
    fn answer(
        &mut self,
        id: RequestId,
        response: Result<Response>,
        now: Timestamp,
    ) -> Option<(Op<P>, Result<Response>)> {
        let mut op = self.inflight.remove(&id)?;
        let may_pass = match &response {
            Err(e) => RetryPolicy::retries(e.category()),
            Ok(r) if r.is_success() => false,
            // Not implemented will not be on another try (a store without conditional writes,
            // or without multipart listings).
            Ok(r) if r.status == 501 => false,
            Ok(r) => s3::retryable(r.status, s3::error_code(&r.body).as_deref()),
        };
        if may_pass && op.attempt < self.retry.max_attempts {
            let delay = self.retry.delay_ms(op.attempt, self.next_id);
            op.attempt += 1;
            op.due = Timestamp(now.0.saturating_add(delay));
            self.delayed.push(op);
            return None;
        }
        Some((op, response))
    }

    /// Drops everything not yet sent (after a failure).
    fn clear(&mut self) {
        self.queue.clear();
        self.delayed.clear();
    }
}
