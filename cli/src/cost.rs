//! The cost meter (`--cost`): every request a command sends, counted as the providers bill
//! them, and what that would cost on AWS S3 Standard, Cloudflare R2 and Backblaze B2.

use std::sync::atomic::{AtomicU64, Ordering};

use bucketsync::driver::Transport;
use bucketsync::{Method, Request, Response, Result};
use serde_json::{json, Value};

use crate::text::bytes;

/// What this process sent and received (one process runs one command).
static WRITES: AtomicU64 = AtomicU64::new(0);
static READS: AtomicU64 = AtomicU64::new(0);
static LISTS: AtomicU64 = AtomicU64::new(0);
static DELETES: AtomicU64 = AtomicU64::new(0);
static BYTES_UP: AtomicU64 = AtomicU64::new(0);
static BYTES_DOWN: AtomicU64 = AtomicU64::new(0);

/// A transport that counts what goes through it, as the providers bill it: writes and
/// listings (PUT, POST, LIST: AWS's "PUT, COPY, POST, LIST", R2's class A), reads (GET, HEAD:
/// R2's class B), listings apart (B2's class C), DELETEs (free on all three), and bytes.
#[derive(Debug)]
pub struct Metered<T>(pub T);

/// Whether a GET is a listing (a bucket-level GET with `list-type`, or of uploads).
fn is_listing(request: &Request) -> bool {
    request.url.contains("list-type=") || request.url.contains("?uploads")
}

impl<T: Transport> Transport for Metered<T> {
    async fn send(&self, request: Request) -> Result<Response> {
        let counter = match request.method {
            Method::Get if is_listing(&request) => {
                LISTS.fetch_add(1, Ordering::Relaxed);
                &WRITES
            }
            Method::Get | Method::Head => &READS,
            Method::Delete => &DELETES,
            _ => &WRITES,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        BYTES_UP.fetch_add(request.body.len() as u64, Ordering::Relaxed);
        let response = self.0.send(request).await;
        if let Ok(r) = &response {
            BYTES_DOWN.fetch_add(r.body.len() as u64, Ordering::Relaxed);
        }
        response
    }

    async fn sleep(&self, ms: u64) {
        self.0.sleep(ms).await
    }
}

/// One provider's prices, in US dollars.
struct Prices {
    name: &'static str,
    /// Per 1,000 PUT/POST/LIST requests.
    writes: f64,
    /// Per 1,000 GET/HEAD requests.
    reads: f64,
    /// Per 1,000 LIST requests on top of `writes` (B2 bills listings apart: its uploads are
    /// free, so there `writes` counts nothing for a listing).
    lists: f64,
    /// Per GB downloaded (egress to the internet).
    egress_gb: f64,
}

/// The list prices the docs table shows (docs/src/providers/index.md, "The cost meter"); see
/// the date there.
const PROVIDERS: [Prices; 3] = [
    Prices {
        name: "AWS S3 Standard (us-east-1)",
        writes: 0.005,
        reads: 0.0004,
        lists: 0.0,
        egress_gb: 0.09,
    },
    Prices {
        name: "Cloudflare R2",
        writes: 0.0045,
        reads: 0.00036,
        lists: 0.0,
        egress_gb: 0.0,
    },
    Prices {
        name: "Backblaze B2",
        writes: 0.0,
        reads: 0.0004,
        lists: 0.004,
        egress_gb: 0.01,
    },
];

/// What this process sent and received so far.
pub fn bill() -> Bill {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Bill {
        writes: load(&WRITES),
        reads: load(&READS),
        lists: load(&LISTS),
        deletes: load(&DELETES),
        bytes_up: load(&BYTES_UP),
        bytes_down: load(&BYTES_DOWN),
    }
}

/// What a command sent and received.
pub struct Bill {
    pub writes: u64,
    pub reads: u64,
    pub lists: u64,
    pub deletes: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl Bill {
    fn cost(&self, p: &Prices) -> f64 {
        let per_1000 = |n: u64, price: f64| n as f64 / 1000.0 * price;
        // B2: uploads are free, so a listing costs only its class C price.
        let writes = if p.writes == 0.0 {
            0.0
        } else {
            per_1000(self.writes, p.writes)
        };
        writes
            + per_1000(self.reads, p.reads)
            + per_1000(self.lists, p.lists)
            + self.bytes_down as f64 / 1e9 * p.egress_gb
    }

    /// The table (text) of the counts and each provider's cost.
    pub fn text(&self) -> String {
        let mut text = format!(
            "Requests: {} PUT/POST/LIST ({} of them LIST), {} GET/HEAD, {} DELETE; {} up, {} down\n",
            self.writes,
            self.lists,
            self.reads,
            self.deletes,
            bytes(self.bytes_up),
            bytes(self.bytes_down)
        );
        for p in &PROVIDERS {
            text.push_str(&format!("  {:<28} ${:.6}\n", p.name, self.cost(p)));
        }
        text.push_str(
            "  (list prices; storage not included: see the docs, Providers, \"The cost meter\")\n",
        );
        text
    }

    pub fn json(&self) -> Value {
        json!({
            "writes": self.writes,
            "lists": self.lists,
            "reads": self.reads,
            "deletes": self.deletes,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "usd": PROVIDERS.iter().map(|p| (p.name.to_owned(), json!(self.cost(p)))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_of_each_costs_the_list_prices() {
        let bill = Bill {
            writes: 1_000_000,
            reads: 1_000_000,
            lists: 0,
            deletes: 5,
            bytes_up: 0,
            bytes_down: 1_000_000_000,
        };
        let costs: Vec<f64> = PROVIDERS.iter().map(|p| bill.cost(p)).collect();
        // AWS: $5 of writes, $0.40 of reads, $0.09 for a GB out.
        assert!((costs[0] - 5.49).abs() < 1e-9, "{costs:?}");
        // R2: $4.50 class A, $0.36 class B, no egress.
        assert!((costs[1] - 4.86).abs() < 1e-9, "{costs:?}");
        // B2: uploads free, $0.40 of downloads (class B), $0.01 for a GB out.
        assert!((costs[2] - 0.41).abs() < 1e-9, "{costs:?}");
        let listing = Bill {
            writes: 1000,
            lists: 1000,
            reads: 0,
            deletes: 0,
            bytes_up: 0,
            bytes_down: 0,
        };
        // A thousand listings: AWS and R2 bill them as writes, B2 as class C.
        let costs: Vec<f64> = PROVIDERS.iter().map(|p| listing.cost(p)).collect();
        assert!(
            (costs[0] - 0.005).abs() < 1e-12 && (costs[2] - 0.004).abs() < 1e-12,
            "{costs:?}"
        );
    }
}
