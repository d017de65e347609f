//! Length-prefixed postcard frames over any async byte stream.

use std::io;
use std::marker::PhantomData;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::bytes::Bytes;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use super::MAX_FRAME;

/// Why a frame could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed (or a received frame was over [`MAX_FRAME`]).
    #[error("ipc stream: {0}")]
    Io(#[from] io::Error),
    /// A frame did not decode (or encode) as the expected message.
    #[error("malformed ipc frame: {0}")]
    Decode(#[from] postcard::Error),
    /// A message to send encodes to more than [`MAX_FRAME`] bytes.
    #[error("a message of {size} bytes is over the frame limit of {MAX_FRAME} bytes")]
    TooLarge { size: usize },
}

impl FrameError {
    /// Whether the stream itself failed (nothing more can be sent), rather
    /// than one message.
    fn ends_stream(&self) -> bool {
        matches!(self, Self::Io(_))
    }
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// The sending half: encodes `T` into frames.
#[derive(Debug)]
pub struct Sender<W, T> {
    inner: FramedWrite<W, LengthDelimitedCodec>,
    _msg: PhantomData<fn(T)>,
}

/// The receiving half: decodes frames into `T`.
#[derive(Debug)]
pub struct Receiver<R, T> {
    inner: FramedRead<R, LengthDelimitedCodec>,
    _msg: PhantomData<fn() -> T>,
}

/// Wraps the two halves of a stream.
pub(crate) fn channel<R, W, In, Out>(read: R, write: W) -> (Receiver<R, In>, Sender<W, Out>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    (
        Receiver {
            inner: FramedRead::new(read, codec()),
            _msg: PhantomData,
        },
        Sender {
            inner: FramedWrite::new(write, codec()),
            _msg: PhantomData,
        },
    )
}

impl<W: AsyncWrite + Unpin, T: Serialize> Sender<W, T> {
    /// Sends one message and flushes it.
    pub async fn send(&mut self, message: &T) -> Result<(), FrameError> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queues one message without flushing (see [`Sender::flush`]). A
    /// message over [`MAX_FRAME`] is refused and nothing is queued.
    pub async fn feed(&mut self, message: &T) -> Result<(), FrameError> {
        let bytes = postcard::to_stdvec(message)?;
        if bytes.len() > MAX_FRAME {
            return Err(FrameError::TooLarge { size: bytes.len() });
        }
        self.inner.feed(Bytes::from(bytes)).await?;
        Ok(())
    }

    /// Flushes queued messages.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        SinkExt::<Bytes>::flush(&mut self.inner).await?;
        Ok(())
    }
}

impl<W, T> Sender<W, T>
where
    W: AsyncWrite + Unpin + Send + 'static,
    T: Serialize + Send + Sync + 'static,
{
    /// Moves the sender into a task that writes queued messages in order,
    /// batching whatever is ready into one flush; it ends when every queue
    /// handle is dropped or the stream fails. A message that cannot be
    /// encoded into a frame is given to `replace`, which may return a
    /// message to send in its place (a call's error for a call's result);
    /// the stream goes on either way.
    pub fn spawn_writer(
        mut self,
        replace: fn(T, &FrameError) -> Option<T>,
    ) -> (tokio::sync::mpsc::UnboundedSender<T>, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<T>();
        let task = tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                if !self.feed_or_replace(message, replace).await {
                    return;
                }
                while let Ok(message) = rx.try_recv() {
                    if !self.feed_or_replace(message, replace).await {
                        return;
                    }
                }
                if self.flush().await.is_err() {
                    return;
                }
            }
        });
        (tx, task)
    }

    /// Feeds `message`, or its replacement when it does not fit; `false`
    /// once the stream failed.
    async fn feed_or_replace(&mut self, message: T, replace: fn(T, &FrameError) -> Option<T>) -> bool {
        let error = match self.feed(&message).await {
            Ok(()) => return true,
            Err(e) if e.ends_stream() => return false,
            Err(e) => e,
        };
        tracing::error!("not sent: {error}");
        match replace(message, &error) {
            Some(other) => match self.feed(&other).await {
                Ok(()) => true,
                Err(e) => !e.ends_stream(),
            },
            None => true,
        }
    }
}

impl<R: AsyncRead + Unpin, T: DeserializeOwned> Receiver<R, T> {
    /// The next message; `None` when the peer closed the stream cleanly.
    pub async fn recv(&mut self) -> Option<Result<T, FrameError>> {
        let frame = match self.inner.next().await? {
            Ok(frame) => frame,
            Err(e) => return Some(Err(e.into())),
        };
        Some(postcard::from_bytes(&frame).map_err(FrameError::from))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::ipc::{FromWorker, ToWorker};

    #[tokio::test]
    async fn messages_round_trip() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let (_, mut host) = channel::<_, _, FromWorker, ToWorker>(ar, aw);
        let (mut worker, _) = channel::<_, _, ToWorker, FromWorker>(br, bw);
        let sent = [
            ToWorker::Ping { nonce: 7 },
            ToWorker::Shutdown {
                grace: Duration::from_millis(250),
            },
            ToWorker::PluginRemove { name: "echo".into() },
        ];
        for message in &sent {
            host.send(message).await.unwrap();
        }
        for message in &sent {
            assert_eq!(&worker.recv().await.unwrap().unwrap(), message);
        }
    }

    #[tokio::test]
    async fn garbage_is_a_decode_error_not_a_panic() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (_, mut aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let (mut worker, _) = channel::<_, _, ToWorker, FromWorker>(br, bw);
        aw.write_all(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]).await.unwrap();
        assert!(matches!(worker.recv().await, Some(Err(FrameError::Decode(_)))));
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_before_it_is_read() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (_, mut aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let (mut worker, _) = channel::<_, _, ToWorker, FromWorker>(br, bw);
        aw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(matches!(worker.recv().await, Some(Err(FrameError::Io(_)))));
    }

    #[tokio::test]
    async fn a_closed_stream_ends_the_receiver() {
        let (a, b) = tokio::io::duplex(1 << 16);
        drop(a);
        let (br, bw) = tokio::io::split(b);
        let (mut worker, _) = channel::<_, _, ToWorker, FromWorker>(br, bw);
        assert!(worker.recv().await.is_none());
    }
}
