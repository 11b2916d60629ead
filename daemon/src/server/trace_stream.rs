//! `GET /admin/v1/trace`: the trace as server-sent events (HTML Living Standard section
//! 9.2, "Server-sent events"). Every stream reads one shared ring of
//! [`TRACE_BUFFER`](super::ops::TRACE_BUFFER) events that the core task writes without
//! ever waiting; a stream whose client does not keep up is overtaken, loses the oldest
//! events and says so with `event: lagged` and `{"missed": N}`. At most
//! [`MAX_TRACE_STREAMS`] at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::Stream;
use hyper::body::{Bytes, Frame};
use tokio::sync::broadcast::{self, error::RecvError};

use super::ops::TraceMsg;

/// Trace streams open at once, at most; one more is 503.
pub(crate) const MAX_TRACE_STREAMS: usize = 8;
/// A comment line goes out after this long without an event, so a client that went away
/// is noticed (the write fails) and its stream's place is given back.
pub(crate) const TRACE_KEEPALIVE: Duration = Duration::from_secs(15);
/// Trace streams open now (for `/metrics`).
pub(crate) static TRACE_STREAMS: AtomicUsize = AtomicUsize::new(0);

/// The stream's filters: `?channel=ID` and `?user=ID`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) channel: Option<String>,
    pub(crate) user: Option<String>,
}

impl Filter {
    /// From a query string; unknown parameters are ignored.
    pub(crate) fn parse(query: Option<&str>) -> Filter {
        let mut f = Filter::default();
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some(("channel", v)) if !v.is_empty() => f.channel = Some(v.to_owned()),
                Some(("user", v)) if !v.is_empty() => f.user = Some(v.to_owned()),
                _ => {}
            }
        }
        f
    }

    fn admits(&self, m: &TraceMsg) -> bool {
        let ok = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_deref() == Some(w))
        };
        ok(&self.channel, &m.channel_id) && ok(&self.user, &m.user_id)
    }
}

/// Holds one place among [`MAX_TRACE_STREAMS`] until dropped.
struct Place;

impl Place {
    fn take() -> Option<Place> {
        TRACE_STREAMS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_TRACE_STREAMS).then_some(n + 1)
            })
            .ok()
            .map(|_| Place)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        TRACE_STREAMS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One event in the SSE wire form.
fn event(kind: &str, data: &str) -> Frame<Bytes> {
    Frame::data(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")))
}

/// A new stream over `tx`'s events that pass `filter`, or `None` when
/// [`MAX_TRACE_STREAMS`] are open.
pub(crate) fn open(
    tx: &broadcast::Sender<Arc<TraceMsg>>,
    filter: Filter,
) -> Option<impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static> {
    let place = Place::take()?;
    let rx = tx.subscribe();
    // The first frame goes out at once, so the client knows the stream is open.
    let hello = Frame::data(Bytes::from_static(b": livechat trace\nretry: 1000\n\n"));
    Some(futures_util::stream::unfold(
        (rx, filter, place, Some(hello)),
        |(mut rx, filter, place, hello)| async move {
            if let Some(h) = hello {
                return Some((Ok(h), (rx, filter, place, None)));
            }
            loop {
                let got = tokio::time::timeout(TRACE_KEEPALIVE, rx.recv()).await;
                let frame = match got {
                    Err(_) => Frame::data(Bytes::from_static(b": keepalive\n\n")),
                    Ok(Ok(m)) if filter.admits(&m) => event(m.kind, &m.data),
                    Ok(Ok(_)) => continue,
                    Ok(Err(RecvError::Lagged(n))) => {
                        event("lagged", &format!("{{\"missed\":{n}}}"))
                    }
                    Ok(Err(RecvError::Closed)) => return None,
                };
                return Some((Ok(frame), (rx, filter, place, None)));
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn msg(kind: &'static str, channel: &str, user: &str) -> Arc<TraceMsg> {
        Arc::new(TraceMsg {
            kind,
            channel_id: Some(channel.to_owned()),
            user_id: Some(user.to_owned()),
            data: format!("{{\"channel_id\":\"{channel}\"}}"),
        })
    }

    fn text(f: Frame<Bytes>) -> String {
        String::from_utf8(f.into_data().expect("data").to_vec()).expect("utf-8")
    }

    #[test]
    fn filters_by_channel_and_user() {
        let f = Filter::parse(Some("channel=ops&user=alice&x=1"));
        assert_eq!(f.channel.as_deref(), Some("ops"));
        assert!(f.admits(&msg("floor", "ops", "alice")));
        assert!(!f.admits(&msg("floor", "ops", "bob")));
        assert!(!f.admits(&msg("floor", "yard", "alice")));
        assert!(Filter::parse(None).admits(&msg("floor", "yard", "bob")));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reader_that_falls_behind_is_told_how_many_it_missed_and_at_most_eight_read() {
        let (tx, _keep) = broadcast::channel(4);
        let mut s = Box::pin(open(&tx, Filter::default()).expect("a place"));
        assert!(text(s.next().await.expect("hello").expect("ok")).starts_with(':'));
        for _ in 0..10 {
            tx.send(msg("channel", "ops", "alice")).expect("a reader");
        }
        let lagged = text(s.next().await.expect("lagged").expect("ok"));
        assert_eq!(lagged, "event: lagged\ndata: {\"missed\":6}\n\n");
        let next = text(s.next().await.expect("event").expect("ok"));
        assert!(next.starts_with("event: channel\ndata: "), "{next}");
        drop(s);
        // One test opens streams, so the count is this test's alone.
        let before = TRACE_STREAMS.load(Ordering::Acquire);
        let open_now: Vec<_> = (before..MAX_TRACE_STREAMS)
            .map(|_| open(&tx, Filter::default()).expect("room"))
            .collect();
        assert!(open(&tx, Filter::default()).is_none());
        drop(open_now);
        assert_eq!(TRACE_STREAMS.load(Ordering::Acquire), before);
    }
}
