//! A measuring stick, not a server: answers every HTTP/1.1 request with
//! `200` and a publish answer shaped like ams's (same headers, 3-space
//! indented `messageIds`, a new id each time), without parsing JSON or
//! storing anything. Run in ams's place (`bench/run --ams-bin
//! target/release/http-floor`), it shows what the HTTP layer alone costs in
//! W3 with the same client: the latency floor under any server built on it.
//!
//! `HTTP_FLOOR_MODE` picks the layer:
//! - `hyper` (default): hyper's HTTP/1 server, which ams uses;
//! - `raw`: a loop that only frames requests (`content-length` bodies) and
//!   writes a fixed response, with a constant `date` of the same length as
//!   hyper's. It ignores everything else in HTTP and must never face a real
//!   client.
//!
//! It takes ams's command line (`serve --port P …`), binds 127.0.0.1:P and
//! logs "listening on http://ADDR" to stderr as ams does; other arguments
//! are ignored.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Ids handed out so far.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A publish answer for one message, as ams renders it.
fn answer() -> String {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    format!("{{\n   \"messageIds\": [\n      \"{id}\"\n   ]\n}}")
}

const REQUEST_ID: &str = "0123456789abcdef";

async fn serve_hyper(stream: TcpStream) {
    let service = hyper::service::service_fn(|req: hyper::Request<Incoming>| async move {
        // The body is read, as a server must before answering.
        let _ = req.into_body().collect().await;
        let resp = hyper::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-request-id", REQUEST_ID)
            .body(Full::new(Bytes::from(answer())))
            .expect("a valid response");
        Ok::<_, Infallible>(resp)
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

/// Where the head ends and how long the body is, once the head is complete.
fn frame(buf: &[u8]) -> Option<(usize, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let len = head
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    Some((end, len))
}

async fn serve_raw(mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(16 << 10);
    let mut chunk = vec![0u8; 16 << 10];
    let mut out = Vec::with_capacity(512);
    loop {
        let (head, body) = loop {
            if let Some(framed) = frame(&buf) {
                break framed;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head + body {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head + body);
        let answer = answer();
        out.clear();
        out.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: \
                 {REQUEST_ID}\r\ncontent-length: {}\r\ndate: Thu, 01 Jan 1970 00:00:00 \
                 GMT\r\n\r\n{answer}",
                answer.len()
            )
            .as_bytes(),
        );
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = match args.iter().position(|a| a == "--port") {
        Some(i) => args
            .get(i + 1)
            .ok_or_else(|| anyhow::anyhow!("--port needs a value"))?
            .parse()?,
        None => 0,
    };
    let raw = match std::env::var("HTTP_FLOOR_MODE").as_deref() {
        Ok("raw") => true,
        Ok("hyper") | Err(_) => false,
        Ok(other) => anyhow::bail!("HTTP_FLOOR_MODE is hyper or raw, not {other:?}"),
    };
    // The same runtime as ams's server (work-stealing, one worker per core).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!(
            "http-floor ({}) listening on http://{}",
            if raw { "raw" } else { "hyper" },
            listener.local_addr()?
        );
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            if raw {
                tokio::spawn(serve_raw(stream));
            } else {
                tokio::spawn(serve_hyper(stream));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_head_and_its_body() {
        let req = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET";
        assert_eq!(frame(req), Some((req.len() - b"abcGET".len(), 3)));
        assert_eq!(frame(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Some((27, 0)));
        assert_eq!(frame(b"POST / HTTP/1.1\r\ncontent-length: 3\r\n"), None);
    }

    #[test]
    fn answers_like_ams() {
        let a = answer();
        let b = answer();
        assert!(a.starts_with("{\n   \"messageIds\": [\n      \""));
        assert_ne!(a, b, "every answer carries a new id");
    }
}
