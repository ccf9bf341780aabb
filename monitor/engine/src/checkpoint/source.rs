//! A tensor of an open checkpoint as a [`SliceSource`]: each block of samples is read with one positioned read
//! (or one per feature row, when the samples are the columns of a large matrix) into a reused byte buffer, then
//! decoded and scaled into the f64 block the Gram product consumes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use faer::MatMut;

use super::dtype::ElementType;
use super::error::CheckpointError;
use super::matrices::MatrixPlan;
use super::reader::{Checkpoint, TensorEntry};
use crate::spectrum::source::{NonFinite, SliceSource};

/// Spans up to this many bytes are read in one call even when they hold more than the block needs.
const ONE_READ_BYTES: usize = 4 << 20;

/// Where a tensor's bytes are.
enum Backing<'a> {
    /// A tensor of an open checkpoint, read with positioned reads.
    File(&'a Checkpoint, &'a TensorEntry),
    /// A tensor the caller holds in memory (a training hook's snapshot).
    Memory(&'a [u8]),
}

/// One tensor read through a [`MatrixPlan`].
pub struct TensorSource<'a> {
    backing: Backing<'a>,
    element: ElementType,
    plan: &'a MatrixPlan,
    cancel: Option<&'a AtomicBool>,
    buffer: Mutex<Vec<u8>>,
}

impl<'a> TensorSource<'a> {
    /// `cancel`, when set, stops the reading between blocks with [`CheckpointError::Cancelled`].
    pub fn new(
        checkpoint: &'a Checkpoint,
        entry: &'a TensorEntry,
        element: ElementType,
        plan: &'a MatrixPlan,
        cancel: Option<&'a AtomicBool>,
    ) -> Self {
        TensorSource {
            backing: Backing::File(checkpoint, entry),
            element,
            plan,
            cancel,
            buffer: Mutex::new(Vec::new()),
        }
    }

    /// A tensor held in memory: its little-endian bytes in `element`'s type, read through `plan`.
    pub fn from_bytes(bytes: &'a [u8], element: ElementType, plan: &'a MatrixPlan) -> Self {
        TensorSource {
            backing: Backing::Memory(bytes),
            element,
            plan,
            cancel: None,
            buffer: Mutex::new(Vec::new()),
        }
    }

    /// Reads elements `first..=last` (flat indices) into the buffer; returns the buffer's element base.
    fn read_span(
        &self,
        buf: &mut Vec<u8>,
        first: usize,
        last: usize,
    ) -> Result<usize, CheckpointError> {
        let size = self.element.size();
        buf.resize((last - first + 1) * size, 0);
        match self.backing {
            Backing::File(checkpoint, entry) => {
                checkpoint.read_bytes(entry, (first * size) as u64, buf)?
            }
            Backing::Memory(bytes) => buf.copy_from_slice(&bytes[first * size..(last + 1) * size]),
        }
        Ok(first)
    }
}

impl SliceSource for TensorSource<'_> {
    fn rows(&self) -> usize {
        self.plan.rows
    }
    fn cols(&self) -> usize {
        self.plan.cols
    }
    fn slices(&self) -> usize {
        self.plan.slices
    }

    fn fill_block(
        &self,
        p: usize,
        features_are_cols: bool,
        start: usize,
        len: usize,
        mut block: MatMut<'_, f64>,
    ) -> Result<NonFinite, CheckpointError> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(CheckpointError::Cancelled);
        }
        let plan = self.plan;
        let scale = plan.scale;
        let element = self.element;
        let mut buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let mut nf = NonFinite::default();
        if features_are_cols {
            // Samples are rows start..start+len: one span from the first to the last element they need.
            let first = plan.index(p, start, 0);
            let last = plan.index(p, start + len - 1, plan.cols - 1);
            let base = self.read_span(&mut buf, first, last)?;
            for f in 0..plan.cols {
                for i in 0..len {
                    let v = scale * element.get(&buf, plan.index(p, start + i, f) - base);
                    nf.count(v);
                    block[(i, f)] = v;
                }
            }
            return Ok(nf);
        }
        // Samples are columns start..start+len; features are the rows. A small tensor is read in one span, a
        // large one row by row (each row's segment is contiguous or, for Conv1d/Conv2d, strided within its row).
        let first = plan.index(p, 0, start);
        let last = plan.index(p, plan.rows - 1, start + len - 1);
        let span_bytes = (last - first + 1) * element.size();
        if span_bytes <= ONE_READ_BYTES {
            let base = self.read_span(&mut buf, first, last)?;
            for f in 0..plan.rows {
                for i in 0..len {
                    let v = scale * element.get(&buf, plan.index(p, f, start + i) - base);
                    nf.count(v);
                    block[(i, f)] = v;
                }
            }
            return Ok(nf);
        }
        for f in 0..plan.rows {
            let row_first = plan.index(p, f, start);
            let row_last = plan.index(p, f, start + len - 1);
            let base = self.read_span(&mut buf, row_first, row_last)?;
            for i in 0..len {
                let v = scale * element.get(&buf, plan.index(p, f, start + i) - base);
                nf.count(v);
                block[(i, f)] = v;
            }
        }
        Ok(nf)
    }
}
