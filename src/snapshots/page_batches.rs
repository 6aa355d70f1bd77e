//! Pages read in batches straight into reused buffers, for worker threads.
//!
//! A snapshot's reader and a restore's read-back both read every page and
//! hand batches of them to other threads to hash. [`Batcher`] is the
//! [`PageSink`] they read into: the file is read straight into a batch's
//! buffer (no page is copied after the read), each full batch goes down a
//! channel, and the workers give emptied buffers back to be filled again.
//! Why: copying each page out of the reader's buffer, and faulting in a
//! fresh buffer for every batch, took a third of the reading thread's time,
//! and that thread is what the workers wait on.

use crossbeam_channel::{Receiver, Sender};

use super::sqlite::{PageSink, SqliteError};

/// Consecutive pages of a database, in one buffer.
pub struct PageBatch {
    /// The index of the first page (page number - 1).
    pub first: usize,
    /// The size of every page.
    pub page_size: usize,
    /// Room for a whole batch, of which the first `len` pages are read.
    data: Vec<u8>,
    len: usize,
}

impl PageBatch {
    /// An empty batch of room for `pages` pages from index `first`, in
    /// `spare`'s buffer when a worker gave one back.
    fn new(first: usize, page_size: usize, pages: usize, spare: &Receiver<Vec<u8>>) -> Self {
        let mut data = spare.try_recv().unwrap_or_default();
        data.resize(pages * page_size, 0);
        PageBatch {
            first,
            page_size,
            data,
            len: 0,
        }
    }

    /// How many pages it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The pages, back to back.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len * self.page_size]
    }

    /// The pages, one by one.
    pub fn pages(&self) -> std::slice::ChunksExact<'_, u8> {
        self.bytes().chunks_exact(self.page_size.max(1))
    }

    /// The buffer, for [`Batcher`]'s spare channel.
    pub fn into_buffer(self) -> Vec<u8> {
        self.data
    }
}

/// The [`PageSink`] that reads pages into batches of `per_batch` and sends
/// each full one down `full`, reusing the buffers that come back on
/// `spare`. [`Batcher::finish`] sends the last, part-full one.
pub struct Batcher<'a> {
    batch: PageBatch,
    per_batch: usize,
    full: &'a Sender<PageBatch>,
    spare: &'a Receiver<Vec<u8>>,
}

impl<'a> Batcher<'a> {
    /// Batches of `per_batch` pages from the first page on.
    pub fn new(
        per_batch: usize,
        full: &'a Sender<PageBatch>,
        spare: &'a Receiver<Vec<u8>>,
    ) -> Self {
        Batcher {
            batch: PageBatch::new(0, 0, per_batch, spare),
            per_batch,
            full,
            spare,
        }
    }

    /// Sends the last batch, when it holds a page.
    pub fn finish(self) {
        if self.batch.len > 0 {
            // A closed channel means the workers stopped; they say why.
            let _ = self.full.send(self.batch);
        }
    }
}

impl PageSink for Batcher<'_> {
    fn room(&mut self, page_size: usize) -> &mut [u8] {
        // The page size is known with the first page, and one read
        // transaction has one.
        if self.batch.page_size == 0 {
            self.batch = PageBatch::new(0, page_size, self.per_batch, self.spare);
        }
        let at = self.batch.len * page_size;
        &mut self.batch.data[at..]
    }

    fn filled(&mut self, pages: usize) -> Result<(), SqliteError> {
        self.batch.len += pages;
        if self.batch.len == self.per_batch {
            let next = PageBatch::new(
                self.batch.first + self.per_batch,
                self.batch.page_size,
                self.per_batch,
                self.spare,
            );
            let _ = self.full.send(std::mem::replace(&mut self.batch, next));
        }
        Ok(())
    }
}
