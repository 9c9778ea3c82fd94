//! [`Streaming`]: the incoming messages of a call, as a blocking iterator.
//!
//! The same type serves both sides: a client-streaming or bidi handler reads its requests
//! from one, and a client reads a server-streaming or bidi call's responses from one. The
//! transport behind it is a [`MessageSource`], which hands over raw messages; `Streaming`
//! decodes them with prost. Nothing here touches a socket or a thread.
//!
//! ```
//! use grpc_sync::{Status, Streaming};
//! // A stream made in memory, as a test of a client-streaming handler would.
//! let requests: Streaming<String> = Streaming::from_messages(["a".to_string(), "b".to_string()]);
//! let all: Result<Vec<String>, Status> = requests.collect();
//! assert_eq!(all.unwrap(), ["a", "b"]);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
use std::marker::PhantomData;

use bytes::Bytes;

use crate::codec::decode_message;
use crate::metadata::MetadataMap;
use crate::status::Status;

/// Where a [`Streaming`] gets its messages: implemented by the client and server transports
/// (and by [`VecSource`] for tests).
///
/// `Streaming` calls [`next_message`](MessageSource::next_message) until it returns `None` or
/// `Some(Err(_))`, and never after that. When it is dropped or cancelled before then, it
/// calls [`cancel`](MessageSource::cancel) once.
pub trait MessageSource: Send {
    /// Blocks until the next message (without its 5-byte prefix), an error that ends the
    /// stream, or the end of the stream (`None`). A source must not block forever: the
    /// call's deadline, a reset and a dead connection end the wait with an error.
    fn next_message(&mut self) -> Option<Result<Bytes, Status>>;

    /// The metadata sent at the start of the stream (response headers on a client), if
    /// known. May block until they arrive. The default knows none.
    fn initial_metadata(&mut self) -> Option<&MetadataMap> {
        None
    }

    /// The metadata sent at the end of the stream (trailers on a client), once the stream
    /// has ended. The default knows none.
    fn trailing_metadata(&self) -> Option<&MetadataMap> {
        None
    }

    /// Whether the last message returned arrived compressed (its compressed flag set). The
    /// default says no.
    fn last_message_compressed(&self) -> bool {
        false
    }

    /// Tells the source that no more messages will be read: a client transport resets the
    /// stream (RST_STREAM CANCEL); a server transport stops granting flow-control window and
    /// discards what still comes. The default does nothing.
    fn cancel(&mut self) {}

    /// Like [`cancel`](MessageSource::cancel), because of `status`, which the reader got
    /// instead of the next message (one that did not decode): a client transport reports it
    /// as the call's outcome. The default cancels.
    fn abort(&mut self, status: &Status) {
        let _ = status;
        self.cancel();
    }
}

/// A stream of incoming messages of type `T`: an iterator of `Result<T, Status>` that blocks
/// for each message.
///
/// It ends (`None`) when the peer finishes the stream normally. An error — from the
/// transport, the peer's status, or a message that does not decode as `T` (INTERNAL) — is
/// yielded once, and the iterator then stays finished. Dropping it before the end cancels
/// the stream ([`MessageSource::cancel`]).
///
/// ```
/// use grpc_sync::{Code, Status, Streaming};
/// let mut responses: Streaming<String> = Streaming::from_results([
///     Ok("one".to_string()),
///     Err(Status::unavailable("gone")),
/// ]);
/// assert_eq!(responses.message().unwrap().as_deref(), Some("one"));
/// assert_eq!(responses.message().unwrap_err().code(), Code::Unavailable);
/// assert!(responses.next().is_none());
/// ```
pub struct Streaming<T> {
    source: Box<dyn MessageSource>,
    finished: bool,
    _message: PhantomData<fn() -> T>,
}

impl<T> Streaming<T> {
    /// A stream reading from `source`.
    pub fn from_source(source: impl MessageSource + 'static) -> Streaming<T> {
        Streaming::from_boxed(Box::new(source))
    }

    /// A stream reading from an already boxed `source`.
    pub fn from_boxed(source: Box<dyn MessageSource>) -> Streaming<T> {
        Streaming {
            source,
            finished: false,
            _message: PhantomData,
        }
    }

    /// The metadata the peer sent first (response headers on a client), if the source knows
    /// it. May block until it arrives.
    pub fn initial_metadata(&mut self) -> Option<&MetadataMap> {
        self.source.initial_metadata()
    }

    /// The metadata the peer sent last (trailers on a client), once the stream has ended.
    pub fn trailing_metadata(&self) -> Option<&MetadataMap> {
        self.source.trailing_metadata()
    }

    /// Stops reading: the source is told to cancel the stream, and the iterator ends. Does
    /// nothing if the stream has already ended.
    pub fn cancel(&mut self) {
        if !self.finished {
            self.finished = true;
            self.source.cancel();
        }
    }

    /// Whether the last message read arrived compressed on the wire (its compressed flag
    /// set); messages are always handed over decompressed.
    pub fn last_message_compressed(&self) -> bool {
        self.source.last_message_compressed()
    }

    /// Whether the stream has ended: finished normally, failed, or was cancelled.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

impl<T: prost::Message + Default> Streaming<T> {
    /// A stream that yields `messages` and ends normally: for tests of code that takes a
    /// `Streaming` (a client-streaming handler, say). Each message goes through a real
    /// encode and decode.
    pub fn from_messages(messages: impl IntoIterator<Item = T>) -> Streaming<T> {
        Streaming::from_results(messages.into_iter().map(Ok))
    }

    /// A stream that yields `items` in order (ending at the first error, if any): for tests.
    pub fn from_results(items: impl IntoIterator<Item = Result<T, Status>>) -> Streaming<T> {
        let items = items
            .into_iter()
            .map(|r| r.map(|m| Bytes::from(m.encode_to_vec())))
            .collect();
        Streaming::from_source(VecSource::new(items))
    }

    /// A stream that ends at once.
    pub fn empty() -> Streaming<T> {
        Streaming::from_source(VecSource::new(VecDeque::new()))
    }

    /// The next message, blocking until it arrives: `Ok(None)` at the end of the stream.
    /// The same as [`Iterator::next`], transposed, for code that prefers `?`:
    ///
    /// ```
    /// # use grpc_sync::{Status, Streaming};
    /// fn total(mut lengths: Streaming<u32>) -> Result<u32, Status> {
    ///     let mut sum = 0;
    ///     while let Some(n) = lengths.message()? {
    ///         sum += n;
    ///     }
    ///     Ok(sum)
    /// }
    /// assert_eq!(total(Streaming::from_messages([1, 2, 3])).unwrap(), 6);
    /// ```
    ///
    /// # Errors
    ///
    /// The status that ended the stream, once; INTERNAL if a message does not decode as `T`.
    pub fn message(&mut self) -> Result<Option<T>, Status> {
        self.next().transpose()
    }
}

impl<T: prost::Message + Default> Iterator for Streaming<T> {
    type Item = Result<T, Status>;

    fn next(&mut self) -> Option<Result<T, Status>> {
        if self.finished {
            return None;
        }
        match self.source.next_message() {
            Some(Ok(bytes)) => match decode_message(bytes) {
                Ok(message) => Some(Ok(message)),
                Err(status) => {
                    // We will read no further: let the source end the stream.
                    self.finished = true;
                    self.source.abort(&status);
                    Some(Err(status))
                }
            },
            Some(Err(status)) => {
                self.finished = true;
                Some(Err(status))
            }
            None => {
                self.finished = true;
                None
            }
        }
    }
}

impl<T: prost::Message + Default> FusedIterator for Streaming<T> {}

impl<T: prost::Message + Default> FromIterator<T> for Streaming<T> {
    /// Same as [`Streaming::from_messages`].
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Streaming<T> {
        Streaming::from_messages(iter)
    }
}

impl<T> Drop for Streaming<T> {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming")
            .field("message", &std::any::type_name::<T>())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// A [`MessageSource`] over messages held in memory, for tests: yields each item in order,
/// then ends. Trailing metadata is reported once every item has been read.
///
/// ```
/// use std::collections::VecDeque;
/// use bytes::Bytes;
/// use grpc_sync::streaming::{MessageSource, VecSource};
/// let mut src = VecSource::new(VecDeque::from([Ok(Bytes::from_static(b"\x08\x01"))]));
/// assert!(src.next_message().is_some());
/// assert!(src.next_message().is_none());
/// ```
#[derive(Debug, Default)]
pub struct VecSource {
    items: VecDeque<Result<Bytes, Status>>,
    initial: Option<MetadataMap>,
    trailing: Option<MetadataMap>,
    cancelled: bool,
}

impl VecSource {
    /// A source yielding `items` (raw messages without prefix, or errors) in order.
    pub fn new(items: VecDeque<Result<Bytes, Status>>) -> VecSource {
        VecSource {
            items,
            ..VecSource::default()
        }
    }

    /// This source, reporting `metadata` as its initial metadata.
    pub fn with_initial_metadata(mut self, metadata: MetadataMap) -> VecSource {
        self.initial = Some(metadata);
        self
    }

    /// This source, reporting `metadata` as its trailing metadata once drained.
    pub fn with_trailing_metadata(mut self, metadata: MetadataMap) -> VecSource {
        self.trailing = Some(metadata);
        self
    }

    /// Whether [`MessageSource::cancel`] has been called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

impl MessageSource for VecSource {
    fn next_message(&mut self) -> Option<Result<Bytes, Status>> {
        if self.cancelled {
            return None;
        }
        self.items.pop_front()
    }

    fn initial_metadata(&mut self) -> Option<&MetadataMap> {
        self.initial.as_ref()
    }

    fn trailing_metadata(&self) -> Option<&MetadataMap> {
        if self.items.is_empty() {
            self.trailing.as_ref()
        } else {
            None
        }
    }

    fn cancel(&mut self) {
        self.cancelled = true;
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::Code;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Note {
        #[prost(string, tag = "1")]
        text: String,
    }

    fn note(text: &str) -> Note {
        Note { text: text.into() }
    }

    /// A source that counts how often it is asked for messages and cancelled.
    struct Probe {
        items: VecDeque<Option<Result<Bytes, Status>>>,
        polls: Arc<AtomicUsize>,
        cancels: Arc<AtomicUsize>,
    }

    impl MessageSource for Probe {
        fn next_message(&mut self) -> Option<Result<Bytes, Status>> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            self.items.pop_front().flatten()
        }
        fn cancel(&mut self) {
            self.cancels.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe(
        items: Vec<Option<Result<Bytes, Status>>>,
    ) -> (Streaming<Note>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let polls = Arc::new(AtomicUsize::new(0));
        let cancels = Arc::new(AtomicUsize::new(0));
        let s = Streaming::from_source(Probe {
            items: items.into(),
            polls: polls.clone(),
            cancels: cancels.clone(),
        });
        (s, polls, cancels)
    }

    fn raw(n: &Note) -> Option<Result<Bytes, Status>> {
        Some(Ok(Bytes::from(prost::Message::encode_to_vec(n))))
    }

    #[test]
    fn streaming_decodes_each_message_then_ends() {
        let s: Streaming<Note> = Streaming::from_messages([note("a"), note("b")]);
        let all: Vec<Note> = s.map(Result::unwrap).collect();
        assert_eq!(all, [note("a"), note("b")]);
        let collected: Streaming<Note> = [note("x")].into_iter().collect();
        assert_eq!(collected.count(), 1);
    }

    #[test]
    fn streaming_is_fused_after_the_end_and_does_not_poll_again() {
        let (mut s, polls, cancels) = probe(vec![raw(&note("a")), None, raw(&note("late"))]);
        assert!(s.next().unwrap().is_ok());
        assert!(s.next().is_none());
        assert!(s.next().is_none());
        assert!(s.is_finished());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
        drop(s);
        assert_eq!(
            cancels.load(Ordering::SeqCst),
            0,
            "a finished stream is not cancelled"
        );
    }

    #[test]
    fn streaming_yields_an_error_once_then_fuses() {
        let (mut s, polls, cancels) = probe(vec![
            Some(Err(Status::deadline_exceeded("late"))),
            raw(&note("never")),
        ]);
        assert_eq!(
            s.next().unwrap().unwrap_err().code(),
            Code::DeadlineExceeded
        );
        assert!(s.next().is_none());
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        drop(s);
        assert_eq!(cancels.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn undecodable_message_is_internal_and_cancels_the_source() {
        let (mut s, _, cancels) = probe(vec![
            Some(Ok(Bytes::from_static(b"\x0a\x05ab"))),
            raw(&note("x")),
        ]);
        let err = s.next().unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(err.message().contains("failed to decode"));
        assert!(s.next().is_none());
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
        drop(s);
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn dropping_an_unfinished_stream_cancels_it_once() {
        let (mut s, _, cancels) = probe(vec![raw(&note("a")), raw(&note("b"))]);
        assert!(s.next().is_some());
        drop(s);
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn explicit_cancel_ends_the_stream_and_is_not_repeated_on_drop() {
        let (mut s, polls, cancels) = probe(vec![raw(&note("a"))]);
        s.cancel();
        s.cancel();
        assert!(s.next().is_none());
        assert_eq!(polls.load(Ordering::SeqCst), 0);
        drop(s);
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn message_returns_ok_none_at_the_end() {
        let mut s: Streaming<Note> = Streaming::from_messages([note("only")]);
        assert_eq!(s.message().unwrap(), Some(note("only")));
        assert_eq!(s.message().unwrap(), None);
        let mut e: Streaming<Note> = Streaming::empty();
        assert_eq!(e.message().unwrap(), None);
    }

    #[test]
    fn metadata_comes_from_the_source() {
        let mut initial = MetadataMap::new();
        initial.insert("x-initial", "1").unwrap();
        let mut trailing = MetadataMap::new();
        trailing.insert("x-trailing", "2").unwrap();
        let src = VecSource::new(VecDeque::from([raw(&note("a")).unwrap()]))
            .with_initial_metadata(initial.clone())
            .with_trailing_metadata(trailing.clone());
        let mut s: Streaming<Note> = Streaming::from_source(src);
        assert_eq!(s.initial_metadata(), Some(&initial));
        assert_eq!(s.trailing_metadata(), None, "not before the end");
        assert!(s.next().is_some());
        assert!(s.next().is_none());
        assert_eq!(s.trailing_metadata(), Some(&trailing));
        let plain: Streaming<Note> = Streaming::empty();
        assert!(plain.trailing_metadata().is_none());
    }

    #[test]
    fn vec_source_records_cancellation() {
        let mut src = VecSource::new(VecDeque::from([Ok(Bytes::new())]));
        assert!(!src.is_cancelled());
        src.cancel();
        assert!(src.is_cancelled());
        assert!(src.next_message().is_none());
    }

    #[test]
    fn streaming_is_send() {
        fn assert_send<S: Send>(_: &S) {}
        let s: Streaming<Note> = Streaming::empty();
        assert_send(&s);
        assert!(format!("{s:?}").contains("Note"));
    }
}
