//! htsr-exporters: htsr's history where users already look.
//!
//! - [`tensorboard`]: the store as TensorBoard runs (event files under a LOGDIR, one folder per htsr run),
//!   written once per checkpoint, whether in one go (`htsr-watch export --format tensorboard`) or live, as the
//!   daemon stores checkpoints (`htsr-watch DIR --tensorboard LOGDIR`, [`tensorboard::spawn_live`]). W&B reads the
//!   same files with `wandb.init(sync_tensorboard=True)`.
//! - [`metrics`]: a Prometheus / OpenMetrics `/metrics` endpoint with each run's latest per-layer numbers and the
//!   daemon's health (`htsr-watch DIR --metrics ADDR`).
//!
//! Both consume the daemon's [`htsr_contracts::LiveEvent`]s on threads of their own and read the rest from the
//! [`htsr_storage::Store`]: the daemon never waits for them, and the daemon crate does not depend on this one
//! (the `htsr-watch` binary subscribes them). A failing exporter logs one warning per cause and goes on.

pub mod metrics;
pub mod tensorboard;
mod warn;

pub use warn::WarnOnce;
