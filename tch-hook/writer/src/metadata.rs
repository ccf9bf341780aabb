//! The `__metadata__` of a checkpoint: the `htsr.*` keys of the naming contract
//! ([`htsr_contracts::naming::keys`]), filled the same way by every writer.

use std::collections::{BTreeMap, HashMap};

use htsr_contracts::naming::keys;

/// Optional facts about a step, written to the checkpoint's metadata when given.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepInfo {
    /// The training epoch (`htsr.epoch`).
    pub epoch: Option<u64>,
    /// The training loss at this step (`htsr.loss`).
    pub loss: Option<f64>,
    /// The learning rate at this step (`htsr.lr`).
    pub lr: Option<f64>,
    /// The training batch size (`htsr.batch_size`).
    pub batch_size: Option<u64>,
}

impl StepInfo {
    /// No facts set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the epoch.
    pub fn epoch(mut self, epoch: u64) -> Self {
        self.epoch = Some(epoch);
        self
    }
    /// Sets the loss.
    pub fn loss(mut self, loss: f64) -> Self {
        self.loss = Some(loss);
        self
    }
    /// Sets the learning rate.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }
    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: u64) -> Self {
        self.batch_size = Some(batch_size);
        self
    }
}

/// The metadata of the checkpoint of `step` in `run` taken at `wall_time` (Unix seconds): the writer's `extras`
/// (each key already `htsr.`-prefixed), then `htsr.step`, `htsr.run`, `htsr.wall_time` and the [`StepInfo`]
/// fields that are set, which win over an extra of the same key.
pub fn checkpoint_metadata(
    step: u64,
    run: &str,
    wall_time: f64,
    info: StepInfo,
    extras: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut metadata: HashMap<String, String> =
        extras.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    metadata.insert(keys::STEP.into(), step.to_string());
    metadata.insert(keys::RUN.into(), run.to_string());
    metadata.insert(keys::WALL_TIME.into(), format!("{wall_time:.6}"));
    if let Some(e) = info.epoch {
        metadata.insert(keys::EPOCH.into(), e.to_string());
    }
    if let Some(l) = info.loss {
        metadata.insert(keys::LOSS.into(), l.to_string());
    }
    if let Some(l) = info.lr {
        metadata.insert(keys::LR.into(), l.to_string());
    }
    if let Some(b) = info.batch_size {
        metadata.insert(keys::BATCH_SIZE.into(), b.to_string());
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_facts_win_over_extras_of_the_same_key() {
        let extras = BTreeMap::from([
            ("htsr.lr".to_string(), "0.5".to_string()),
            ("htsr.model".to_string(), "mlp".to_string()),
        ]);
        let m = checkpoint_metadata(7, "r", 12.5, StepInfo::new().lr(0.1).epoch(2), &extras);
        assert_eq!(m["htsr.step"], "7");
        assert_eq!(m["htsr.run"], "r");
        assert_eq!(m["htsr.wall_time"], "12.500000");
        assert_eq!(m["htsr.lr"], "0.1");
        assert_eq!(m["htsr.epoch"], "2");
        assert_eq!(m["htsr.model"], "mlp");
        assert!(!m.contains_key("htsr.loss"));
    }
}
