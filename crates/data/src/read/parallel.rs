//! JSON Lines read on every core. One thread reads the file into chunks and cuts them after
//! their last line end (cheap: it only looks for line ends); workers make each chunk's rows
//! into one batch; the caller's thread takes the batches back in file order. Lines are
//! numbered, judged blank, too long or malformed exactly as one-at-a-time reading does, so the
//! two give the same rows, the same skipped lines and the same errors.

use super::{LineEnd, OnMalformed, ReadError, Row, Rows, row_from_text, text_of_line};
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

/// What a worker makes of a chunk's rows: filled row by row (nothing added for a malformed
/// line), handed to the caller whole, then cleared and given back for a later chunk. Rows kept
/// in a few buffers per chunk, rather than in allocations of their own, are not allocated on
/// one thread and freed on another, and their memory is reused rather than fresh.
pub(crate) trait Batch: Default + Send {
    /// Rows added so far.
    fn len(&self) -> usize;
    fn clear(&mut self);
}

/// The plainest batch: one value per row, taken out by the caller.
impl<T: Send> Batch for Vec<Option<T>> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn clear(&mut self) {
        Vec::clear(self);
    }
}

/// A worker's output for one chunk: its batch, and its malformed lines, each with the number
/// of the batch's rows that come before it.
struct Done<B> {
    seq: u64,
    batch: B,
    malformed: Vec<(usize, u64, String)>,
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
        if self.reads_in_parallel() {
            return self.fold_lines_in_parallel(
                workers(),
                CHUNK_BYTES,
                &|batch: &mut Vec<Option<T>>, text: &str, line, nth| {
                    batch.push(Some(map_line(text, line, nth)?));
                    Ok(())
                },
                &mut |batch, rows| batch[rows].iter_mut().filter_map(Option::take).try_for_each(&mut each),
            );
        }
        for (nth, row) in self.by_ref().enumerate() {
            each(map(row?, nth))?;
        }
        Ok(())
    }

    /// Whether [`Rows::fold_lines_in_parallel`] would read these rows on several threads.
    pub(crate) fn reads_in_parallel(&self) -> bool {
        workers() > 1 && matches!(self.source, super::Source::Lines { .. }) && !self.done
    }

    /// Reads the JSON lines left on `workers` threads in chunks of about `chunk_bytes`: `add`
    /// puts each line's row (UTF-8, not blank; the `nth` row of its chunk) into its chunk's
    /// batch, or gives the message for a malformed line exactly as parsing it into a row would;
    /// `each` is handed the batches in file order with the rows to take from it now (the rows
    /// between malformed lines), until it returns an error or reading gives one.
    pub(crate) fn fold_lines_in_parallel<B, E>(
        &mut self,
        workers: usize,
        chunk_bytes: usize,
        add: &(impl Fn(&mut B, &str, u64, usize) -> Result<(), String> + Sync),
        each: &mut impl FnMut(&mut B, Range<usize>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        B: Batch,
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
            let queue = workers * QUEUE_PER_WORKER;
            let (chunks_tx, chunks_rx) = crossbeam_channel::bounded::<Chunk>(queue);
            let (done_tx, done_rx) = crossbeam_channel::bounded::<Done<B>>(queue);
            // Chunks' buffers go back to the cutter, and batches to the workers: fresh memory
            // costs the kernel a page of zeros at a time.
            let (spare_tx, spare_rx) = crossbeam_channel::bounded::<Buffers>(queue + workers);
            let (batches_tx, batches_rx) = crossbeam_channel::bounded::<B>(queue + workers);
            let cutter = scope.spawn(move || cut(reader, first_line, chunk_bytes, &chunks_tx, &spare_rx));
            for _ in 0..workers {
                let (chunks_rx, done_tx, spare_tx) = (chunks_rx.clone(), done_tx.clone(), spare_tx.clone());
                let batches_rx = batches_rx.clone();
                scope.spawn(move || {
                    for chunk in chunks_rx {
                        let mut batch = batches_rx.try_recv().unwrap_or_default();
                        batch.clear();
                        let malformed = fill(&chunk, &mut batch, add);
                        let _ = spare_tx.try_send((chunk.data, chunk.lines));
                        if done_tx.send(Done { seq: chunk.seq, batch, malformed }).is_err() {
                            return; // the caller stopped
                        }
                    }
                });
            }
            drop((chunks_rx, done_tx, spare_tx, batches_rx));
            let mut waiting: BTreeMap<u64, Done<B>> = BTreeMap::new();
            let mut next = 0;
            for done in done_rx {
                waiting.insert(done.seq, done);
                while let Some(Done { mut batch, malformed, .. }) = waiting.remove(&next) {
                    next += 1;
                    let mut from = 0;
                    for (before, line, message) in malformed {
                        if before > from {
                            each(&mut batch, from..before)?;
                            from = before;
                        }
                        let e = ReadError::Malformed { path: path.clone(), line, message };
                        match policy {
                            OnMalformed::Skip => skipped.note(&e),
                            OnMalformed::Fail => return Err(e.into()),
                        }
                    }
                    let rows = batch.len();
                    if rows > from {
                        each(&mut batch, from..rows)?;
                    }
                    let _ = batches_tx.try_send(batch);
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

/// Threads to read on: one per core.
pub(crate) fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Cuts `reader` into chunks of whole lines, numbered from `first_line`, until its end or until
/// no worker takes them any more. The file is read straight into the chunks' buffers, a
/// buffer's worth at a time, and cut after the last line end in it; the line begun there is
/// carried to the next chunk. A line longer than a buffer grows it, up to the limit: beyond
/// that the line is counted and passed over, not held.
fn cut(
    reader: &mut (dyn BufRead + Send),
    first_line: u64,
    chunk_bytes: usize,
    chunks: &crossbeam_channel::Sender<Chunk>,
    spare: &crossbeam_channel::Receiver<Buffers>,
) -> io::Result<()> {
    let mut line = first_line;
    // The start of the line the last chunk ended in.
    let mut carried: Vec<u8> = Vec::new();
    // The bytes so far of a line over the limit, being passed over.
    let mut passing: Option<usize> = None;
    let mut end = false;
    for seq in 0.. {
        let (mut data, mut lines) = spare.try_recv().unwrap_or_default();
        lines.clear();
        // A buffer keeps its length from chunk to chunk (only `filled` of it is this chunk's),
        // so that it is not zeroed again each time.
        let size = chunk_bytes.max(carried.len() * 2).max(1);
        if data.len() < size {
            data.resize(size, 0);
        }
        data[..carried.len()].copy_from_slice(&carried);
        let (mut filled, mut start, mut scanned) = (carried.len(), 0, 0);
        carried.clear();
        loop {
            while let Some(i) = memchr::memchr(b'\n', &data[scanned..filled]) {
                let at = scanned + i;
                lines.push(span(&data, start..at, passing.take()));
                (start, scanned) = (at + 1, at + 1);
            }
            scanned = filled;
            let begun = filled - start;
            if let Some(passed) = &mut passing {
                *passed += begun;
            } else if begun > super::MAX_LINE_BYTES {
                passing = Some(begun);
            }
            if passing.is_some() {
                // Nothing of a line over the limit is kept.
                (filled, scanned) = (start, start);
            }
            if end {
                if filled > start || passing.is_some() {
                    lines.push(span(&data, start..filled, passing.take()));
                }
                start = filled;
                break;
            }
            if filled == data.len() {
                if start > 0 {
                    break;
                }
                // No line ends in the whole buffer: it must grow to hold one.
                data.resize(data.len() * 2, 0);
            }
            match reader.read(&mut data[filled..]) {
                Ok(0) => end = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        carried.extend_from_slice(&data[start..filled]);
        let chunk = Chunk { seq, first_line: line, data, lines };
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

/// The line at `range` of a chunk's data (without its `\n`), as `read_line_into` in
/// `read.rs` would end it: without a final `\r`, or refused for its length (`passed` bytes of it already gone).
fn span(data: &[u8], range: Range<usize>, passed: Option<usize>) -> Span {
    let total = passed.unwrap_or(0) + range.len();
    if passed.is_some() || total > super::MAX_LINE_BYTES {
        return Span { range: 0..0, end: LineEnd::TooLong(total) };
    }
    let end = if data[range.clone()].last() == Some(&b'\r') { range.end - 1 } else { range.end };
    Span { range: range.start..end, end: LineEnd::Kept }
}

/// Adds a chunk's rows to `batch`; its malformed lines, each after the rows before it.
fn fill<B: Batch>(
    chunk: &Chunk,
    batch: &mut B,
    add: &impl Fn(&mut B, &str, u64, usize) -> Result<(), String>,
) -> Vec<(usize, u64, String)> {
    let mut malformed = Vec::new();
    for (i, span) in chunk.lines.iter().enumerate() {
        let at = chunk.first_line + i as u64;
        let nth = batch.len();
        if let Some(Err(message)) =
            text_of_line(span.end, &chunk.data[span.range.clone()]).map(|text| add(batch, text?, at, nth))
        {
            malformed.push((batch.len(), at, message));
        }
    }
    malformed
}
