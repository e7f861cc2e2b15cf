//! Answer bodies: sent whole, trickled over time, or cut off by a broken connection.
//!
//! Streamed bodies come from a small task feeding a channel, so the connection task only polls
//! the body like any other; the feeding task ends when the body is sent or the client is gone.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// A trickled body is sent in at most this many pieces.
const MAX_PIECES: usize = 16;
/// A cut body pauses this long after its first half, so that the half leaves the server before
/// the connection breaks.
const PAUSE_BEFORE_CUT: Duration = Duration::from_millis(100);

/// The error that makes hyper break the connection in the middle of a body.
#[derive(Debug)]
pub(crate) struct BodyCut;

impl fmt::Display for BodyCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("answer body cut off by an injected fault")
    }
}

impl std::error::Error for BodyCut {}

/// The body of a simulator answer.
pub(crate) enum SimBody {
    /// All at once; `None` once sent.
    Whole(Option<Bytes>),
    /// Pieces from a feeding task; an `Err` breaks the connection.
    Streamed(mpsc::Receiver<Result<Bytes, BodyCut>>),
}

impl SimBody {
    pub(crate) fn whole(bytes: Vec<u8>) -> Self {
        Self::Whole(Some(Bytes::from(bytes)))
    }

    /// `bytes` in up to [`MAX_PIECES`] pieces, one every `over / pieces`.
    pub(crate) fn trickled(bytes: Vec<u8>, over: Duration) -> Self {
        let bytes = Bytes::from(bytes);
        let pieces = bytes.len().clamp(1, MAX_PIECES);
        let piece_len = bytes.len().div_ceil(pieces).max(1);
        let interval = over / u32::try_from(pieces).unwrap_or(1);
        let (sender, receiver) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut start = 0;
            for _ in 0..pieces {
                tokio::time::sleep(interval).await;
                let end = (start + piece_len).min(bytes.len());
                if start < end && sender.send(Ok(bytes.slice(start..end))).await.is_err() {
                    return; // the client is gone
                }
                start = end;
            }
        });
        Self::Streamed(receiver)
    }

    /// The first half of `bytes`, a short pause, then a broken connection.
    pub(crate) fn cut(bytes: Vec<u8>) -> Self {
        let bytes = Bytes::from(bytes);
        let (sender, receiver) = mpsc::channel(2);
        tokio::spawn(async move {
            let half = bytes.slice(..bytes.len() / 2);
            if !half.is_empty() && sender.send(Ok(half)).await.is_err() {
                return;
            }
            tokio::time::sleep(PAUSE_BEFORE_CUT).await;
            // Nobody may be listening any more; then there is nothing left to break.
            let _ = sender.send(Err(BodyCut)).await;
        });
        Self::Streamed(receiver)
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = BodyCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyCut>>> {
        match self.get_mut() {
            Self::Whole(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|bytes| !bytes.is_empty())
                    .map(|bytes| Ok(Frame::data(bytes))),
            ),
            Self::Streamed(receiver) => receiver
                .poll_recv(context)
                .map(|item| item.map(|piece| piece.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Whole(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Self::Streamed(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
            }
            Self::Streamed(_) => SizeHint::default(),
        }
    }
}
