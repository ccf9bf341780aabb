//! htsr-contracts: what htsr's parts agree on, defined once (the role tokio-console's `console-api` plays between
//! its instrumentation and its viewer).
//!
//! - [`model`]: the records the engine produces and the store keeps: [`LayerReport`] with its fits and
//!   [`PhaseVerdict`], the compact [`EsdHistogram`], [`CheckpointRecord`] and [`FileIdentity`].
//! - [`live`]: the events the daemon emits while it works and the dashboard and exporters consume.
//! - [`marchenko_pastur`]: the Marchenko-Pastur law (density and bulk edges) that the engine fits and the views
//!   draw.
//! - [`naming`]: what a checkpoint file is called, which names are never read, and the `htsr.*` metadata keys the
//!   hook writes and the daemon reads.
//! - [`palette`]: how each phase looks in every view (terminal colour, sRGB, glyph, short name).
//! - [`row`]: the flat per-layer row with WeightWatcher's column names (CSV, JSON lines, pandas).
//! - [`spectra`]: spectra files, the eigenvalues a training process computed on its own device, per rank.
//! - [`text`]: names from checkpoints (which anyone may have written) made safe for a terminal, measured and
//!   clipped by their display width.
//!
//! Dependencies stay minimal (serde, and unicode-width for display widths), so that every crate, the training hook included, can use it.

#![warn(missing_docs)]

mod esd;
mod floats;
pub mod live;
pub mod marchenko_pastur;
pub mod model;
pub mod naming;
pub mod palette;
pub mod row;
pub mod spectra;
pub mod text;

pub use esd::{power_law_anchor, ESD_ZERO_RELATIVE};
pub use live::{DaemonStatus, LiveEvent};
pub use model::*;
