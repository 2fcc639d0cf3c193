//! The response body: nothing, a small in-memory document, or a slice of a
//! blob file streamed in chunks (a layer is never loaded whole). It counts
//! what it sends and reports it once, when hyper is done with it (sent, or
//! dropped because the client went away): that is where the request log
//! line is written.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

/// Bytes read from a blob file per frame.
const CHUNK: usize = 256 * 1024;

type OnEnd = Box<dyn FnOnce(u64) + Send>;

pub(crate) struct Body {
    kind: Kind,
    sent: u64,
    on_end: Option<OnEnd>,
}

enum Kind {
    Empty,
    Bytes(Option<Bytes>),
    File {
        file: tokio::fs::File,
        remaining: u64,
        buf: BytesMut,
    },
}

impl Body {
    pub fn empty() -> Body {
        Body::of(Kind::Empty)
    }

    pub fn bytes(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::empty()
        } else {
            Body::of(Kind::Bytes(Some(bytes)))
        }
    }

    /// `len` bytes of `file` from its current position.
    pub fn file(file: tokio::fs::File, len: u64) -> Body {
        Body::of(Kind::File {
            file,
            remaining: len,
            buf: BytesMut::new(),
        })
    }

    fn of(kind: Kind) -> Body {
        Body {
            kind,
            sent: 0,
            on_end: None,
        }
    }

    /// Calls `f` with the number of bytes sent when the body is dropped.
    pub fn on_end(&mut self, f: impl FnOnce(u64) + Send + 'static) {
        self.on_end = Some(Box::new(f));
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(self.sent);
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let chunk = match &mut this.kind {
            Kind::Empty => return Poll::Ready(None),
            Kind::Bytes(bytes) => match bytes.take() {
                Some(bytes) => bytes,
                None => return Poll::Ready(None),
            },
            Kind::File {
                file,
                remaining,
                buf,
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = usize::try_from(*remaining).unwrap_or(CHUNK).min(CHUNK);
                buf.resize(want, 0);
                let mut read_buf = ReadBuf::new(&mut buf[..]);
                match Pin::new(file).poll_read(cx, &mut read_buf) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok(())) => {}
                }
                let n = read_buf.filled().len();
                if n == 0 {
                    // The file is shorter than it was when opened: cut the
                    // connection rather than send a short body.
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob file ended early",
                    ))));
                }
                buf.truncate(n);
                *remaining -= n as u64;
                buf.split().freeze()
            }
        };
        this.sent += chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Bytes(bytes) => bytes.is_none(),
            Kind::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
