//! JSON Lines read on every core. One thread cuts the file into chunks of whole lines (cheap:
//! it only looks for line ends); workers parse the lines of a chunk and map each row; the
//! caller's thread takes the results back in file order. Lines are numbered, judged blank,
//! too long or malformed exactly as one-at-a-time reading does, so the two give the same rows,
//! the same skipped lines and the same errors.

use super::{LineEnd, OnMalformed, ReadError, Row, Rows, read_line_into, row_from_text, text_of_line};
use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::ops::Range;

/// Bytes of lines handed to a worker at a time.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;
/// Chunks waiting for a worker, and results waiting for the caller, per worker.
const QUEUE_PER_WORKER: usize = 2;

struct Chunk {
    seq: u64,
    first_line: u64,
    data: Vec<u8>,
    lines: Vec<Span>,
}

/// A chunk's buffers, given back for the next chunk.
type Buffers = (Vec<u8>, Vec<Span>);

/// One line of a chunk: where its bytes are in the chunk's data (none kept for a line over the
/// limit), and how it ended.
struct Span {
    range: Range<usize>,
    end: LineEnd,
}

enum Item<T> {
    Row(T),
    Malformed(u64, String),
}

impl Rows {
    /// Maps every row with `map` and hands the results to `each` in file order, stopping at the
    /// first error `each` returns or reading gives. JSON Lines are parsed and mapped on every
    /// core; other formats one row at a time on this thread. Rows are mapped in batches and
    /// `map` is told each row's position in its batch (the file's first rows are the first of
    /// the first batch), so it can keep something of a batch's first rows only.
    pub fn map_each<T, E>(
        &mut self,
        map: impl Fn(Row, usize) -> T + Sync,
        each: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: Send,
        E: From<ReadError>,
    {
        let map_line = |text: &str, line, nth| row_from_text(text, line).map(|row| map(row, nth));
        self.map_each_line(&map, map_line, each)
    }

    /// [`Rows::map_each`] for a caller that can map a JSON line read in parallel from its text
    /// (UTF-8, not blank) better than from the parsed row: `map_line` does it, and gives the
    /// message for a malformed line exactly as parsing it into a row would.
    pub(crate) fn map_each_line<T, E>(
        &mut self,
        map: impl Fn(Row, usize) -> T + Sync,
        map_line: impl Fn(&str, u64, usize) -> Result<T, String> + Sync,
        mut each: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: Send,
        E: From<ReadError>,
    {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        if workers > 1 && matches!(self.source, super::Source::Lines { .. }) && !self.done {
            return self.map_lines_in_parallel(workers, CHUNK_BYTES, &map_line, &mut each);
        }
        for (nth, row) in self.by_ref().enumerate() {
            each(map(row?, nth))?;
        }
        Ok(())
    }

    pub(super) fn map_lines_in_parallel<T, E>(
        &mut self,
        workers: usize,
        chunk_bytes: usize,
        map_line: &(impl Fn(&str, u64, usize) -> Result<T, String> + Sync),
        each: &mut impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: Send,
        E: From<ReadError>,
    {
        let super::Source::Lines { reader, line } = &mut self.source else {
            unreachable!("only JSON Lines are read in parallel")
        };
        // Whatever happens below, the source is used up.
        self.done = true;
        let first_line = *line + 1;
        let (path, policy, skipped) = (&self.path, self.policy, &mut self.skipped);
        let reader: &mut (dyn BufRead + Send) = reader.as_mut();
        std::thread::scope(|scope| {
            let (chunks_tx, chunks_rx) = crossbeam_channel::bounded::<Chunk>(workers * QUEUE_PER_WORKER);
            let (done_tx, done_rx) = crossbeam_channel::bounded::<(u64, Vec<Item<T>>)>(workers * QUEUE_PER_WORKER);
            // Chunks' buffers go back to the cutter: fresh memory costs the kernel a page of
            // zeros at a time.
            let (spare_tx, spare_rx) = crossbeam_channel::bounded::<Buffers>(workers * (QUEUE_PER_WORKER + 1));
            let cutter = scope.spawn(move || cut(reader, first_line, chunk_bytes, &chunks_tx, &spare_rx));
            for _ in 0..workers {
                let (chunks_rx, done_tx, spare_tx) = (chunks_rx.clone(), done_tx.clone(), spare_tx.clone());
                scope.spawn(move || {
                    for chunk in chunks_rx {
                        let items = parse(&chunk, map_line);
                        let _ = spare_tx.try_send((chunk.data, chunk.lines));
                        if done_tx.send((chunk.seq, items)).is_err() {
                            return; // the caller stopped
                        }
                    }
                });
            }
            drop((chunks_rx, done_tx, spare_tx));
            let mut waiting: BTreeMap<u64, Vec<Item<T>>> = BTreeMap::new();
            let mut next = 0;
            for (seq, items) in done_rx {
                waiting.insert(seq, items);
                while let Some(items) = waiting.remove(&next) {
                    next += 1;
                    for item in items {
                        match item {
                            Item::Row(t) => each(t)?,
                            Item::Malformed(line, message) => {
                                let e = ReadError::Malformed { path: path.clone(), line, message };
                                match policy {
                                    OnMalformed::Skip => skipped.note(&e),
                                    OnMalformed::Fail => return Err(e.into()),
                                }
                            }
                        }
                    }
                }
            }
            match cutter.join() {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(ReadError::Io { path: path.clone(), source }.into()),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

/// Cuts `reader` into chunks of whole lines, numbered from `first_line`, until its end or until
/// no worker takes them any more.
fn cut(
    reader: &mut (dyn BufRead + Send),
    first_line: u64,
    chunk_bytes: usize,
    chunks: &crossbeam_channel::Sender<Chunk>,
    spare: &crossbeam_channel::Receiver<Buffers>,
) -> io::Result<()> {
    let mut line = first_line;
    for seq in 0.. {
        let (mut data, mut lines) = spare.try_recv().unwrap_or_else(|_| (Vec::with_capacity(chunk_bytes), Vec::new()));
        data.clear();
        lines.clear();
        let mut chunk = Chunk { seq, first_line: line, data, lines };
        let mut end = false;
        while chunk.data.len() < chunk_bytes {
            let start = chunk.data.len();
            match read_line_into(reader, &mut chunk.data)? {
                None => {
                    end = true;
                    break;
                }
                Some(line_end) => chunk.lines.push(Span { range: start..chunk.data.len(), end: line_end }),
            }
        }
        line += chunk.lines.len() as u64;
        if !chunk.lines.is_empty() && chunks.send(chunk).is_err() {
            return Ok(());
        }
        if end {
            break;
        }
    }
    Ok(())
}

fn parse<T>(chunk: &Chunk, map_line: &impl Fn(&str, u64, usize) -> Result<T, String>) -> Vec<Item<T>> {
    let mut items = Vec::with_capacity(chunk.lines.len());
    let mut nth = 0;
    for (i, span) in chunk.lines.iter().enumerate() {
        let at = chunk.first_line + i as u64;
        match text_of_line(span.end, &chunk.data[span.range.clone()]).map(|text| map_line(text?, at, nth)) {
            None => {}
            Some(Ok(t)) => {
                items.push(Item::Row(t));
                nth += 1;
            }
            Some(Err(message)) => items.push(Item::Malformed(at, message)),
        }
    }
    items
}
