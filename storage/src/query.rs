//! The dashboard's questions, each answered from the tree laid out for it (see `store`'s table).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys;
use crate::records::{self, TrajectoryPoint, ABSENT};
use crate::store::Store;
use htsr_contracts::{
    CheckpointRecord, EsdHistogram, FileIdentity, LayerReport, LayerStatus, Phase,
};

/// One run at a glance, for the runs list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run: String,
    pub last_step: u64,
    pub checkpoints: usize,
    /// Mean alpha over the successful layers of the last checkpoint (f32 precision); None if none had a fit.
    pub mean_alpha: Option<f64>,
    /// Layers of the last checkpoint per phase, indexed like [`Phase::ALL`].
    pub phase_counts: htsr_contracts::PhaseCounts,
    /// Layers of the last checkpoint.
    pub layers: usize,
}

/// Layers x checkpoints, each cell the layer's phase at that checkpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PhaseGrid {
    /// Row labels, in first-seen order.
    pub layers: Vec<String>,
    /// Column labels (steps), ascending; the newest checkpoint is always the last column.
    pub steps: Vec<u64>,
    /// `cells[row][column]`: None where the layer is absent at that checkpoint or has no phase (skipped/failed).
    pub cells: Vec<Vec<Option<Phase>>>,
    /// Checkpoints in the run before downsampling.
    pub total_checkpoints: usize,
}

fn corrupt(tree: &'static str) -> Error {
    Error::Corrupt {
        tree,
        detail: "bad key".into(),
    }
}

/// Evenly spaced indices into `0..n`, at most `max`, always including the last (and the first when max >= 2).
pub fn downsample_indices(n: usize, max: Option<usize>) -> Vec<usize> {
    match max {
        Some(m) if m < n => match m {
            0 => Vec::new(),
            1 => vec![n - 1],
            _ => {
                let mut v: Vec<usize> = (0..m)
                    .map(|i| ((i * (n - 1)) as f64 / (m - 1) as f64).round() as usize)
                    .collect();
                v.dedup();
                v
            }
        },
        _ => (0..n).collect(),
    }
}

impl Store {
    /// Every run with its summary, ordered by run name.
    pub fn runs(&self) -> Result<Vec<RunSummary>> {
        let mut out = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        while let Some(kv) = self
            .open_db()?
            .t
            .checkpoints
            .range(from.clone()..)
            .keys()
            .next()
        {
            let k = kv?;
            let (run, _) = keys::split_run(&k).ok_or_else(|| corrupt("checkpoints"))?;
            out.push(
                self.run_summary(&run)?
                    .ok_or_else(|| corrupt("checkpoints"))?,
            );
            from = keys::after_run(&run);
        }
        Ok(out)
    }

    /// The summary of one run, None if it has no checkpoints.
    pub fn run_summary(&self, run: &str) -> Result<Option<RunSummary>> {
        let Some(last_step) = self.latest_step(run)? else {
            return Ok(None);
        };
        let checkpoints = self
            .open_db()?
            .t
            .checkpoints
            .scan_prefix(keys::run_prefix(run))
            .keys()
            .count();
        let row = self
            .open_db()?
            .t
            .phase_rows
            .get(keys::run_step(run, last_step))?
            .unwrap_or_default();
        let mut phase_counts = [0u32; htsr_contracts::Phase::COUNT];
        let (mut sum, mut n, mut layers) = (0.0, 0usize, 0usize);
        for (idx, &code) in row.iter().enumerate() {
            if code == ABSENT {
                continue;
            }
            layers += 1;
            if let Some(p) = records::phase_of_code(code) {
                phase_counts[p.index()] += 1;
            }
            if let Some(v) = self
                .open_db()?
                .t
                .points
                .get(keys::run_layer_step(run, idx as u32, last_step))?
            {
                let p = records::decode_point(last_step, &v)?;
                if let (LayerStatus::Success, Some(a)) = (p.status, p.alpha) {
                    sum += a;
                    n += 1;
                }
            }
        }
        Ok(Some(RunSummary {
            run: run.to_string(),
            last_step,
            checkpoints,
            mean_alpha: (n > 0).then(|| sum / n as f64),
            phase_counts,
            layers,
        }))
    }

    /// The checkpoints of a run, ascending by step.
    pub fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>> {
        self.open_db()?
            .t
            .checkpoints
            .scan_prefix(keys::run_prefix(run))
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    pub fn checkpoint(&self, run: &str, step: u64) -> Result<Option<CheckpointRecord>> {
        Ok(
            match self
                .open_db()?
                .t
                .checkpoints
                .get(keys::run_step(run, step))?
            {
                Some(v) => Some(serde_json::from_slice(&v)?),
                None => None,
            },
        )
    }

    /// Steps of a run, ascending.
    pub fn steps(&self, run: &str) -> Result<Vec<u64>> {
        self.open_db()?
            .t
            .phase_rows
            .scan_prefix(keys::run_prefix(run))
            .keys()
            .map(|k| {
                let k = k?;
                keys::split_run(&k)
                    .and_then(|(_, r)| keys::be_u64(r))
                    .ok_or_else(|| corrupt("phase_rows"))
            })
            .collect()
    }

    /// Layer names of a run in the order they were first seen (their index order).
    pub fn layer_names(&self, run: &str) -> Result<Vec<String>> {
        self.open_db()?
            .t
            .layer_names
            .scan_prefix(keys::run_prefix(run))
            .values()
            .map(|v| String::from_utf8(v?.to_vec()).map_err(|_| corrupt("layer_names")))
            .collect()
    }

    fn layer_index(&self, run: &str, layer: &str) -> Result<Option<u32>> {
        Ok(
            match self
                .open_db()?
                .t
                .layer_ids
                .get(keys::run_name(run, layer))?
            {
                Some(v) => Some(keys::be_u32(&v).ok_or_else(|| corrupt("layer_ids"))?),
                None => None,
            },
        )
    }

    /// One layer's history in step order: one prefix scan of the `points` tree.
    pub fn trajectory(&self, run: &str, layer: &str) -> Result<Vec<TrajectoryPoint>> {
        let Some(idx) = self.layer_index(run, layer)? else {
            return Ok(Vec::new());
        };
        let prefix = keys::run_layer(run, idx);
        self.open_db()?
            .t
            .points
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv?;
                let step = keys::be_u64(&k[prefix.len()..]).ok_or_else(|| corrupt("points"))?;
                records::decode_point(step, &v)
            })
            .collect()
    }

    /// The layers x checkpoints phase grid, with at most `max_columns` evenly spaced checkpoints (always
    /// including the newest). Reads one phase row per column, not one point per cell.
    pub fn phase_grid(&self, run: &str, max_columns: Option<usize>) -> Result<PhaseGrid> {
        let layers = self.layer_names(run)?;
        let all = self.steps(run)?;
        let picked = downsample_indices(all.len(), max_columns);
        let mut cells = vec![Vec::with_capacity(picked.len()); layers.len()];
        let mut steps = Vec::with_capacity(picked.len());
        for &i in &picked {
            let step = all[i];
            steps.push(step);
            let row = self
                .open_db()?
                .t
                .phase_rows
                .get(keys::run_step(run, step))?
                .unwrap_or_default();
            for (l, col) in cells.iter_mut().enumerate() {
                col.push(row.get(l).and_then(|&c| records::phase_of_code(c)));
            }
        }
        Ok(PhaseGrid {
            layers,
            steps,
            cells,
            total_checkpoints: all.len(),
        })
    }

    /// The full report of one layer at one checkpoint.
    pub fn layer_report(&self, run: &str, step: u64, layer: &str) -> Result<Option<LayerReport>> {
        let Some(idx) = self.layer_index(run, layer)? else {
            return Ok(None);
        };
        Ok(
            match self
                .open_db()?
                .t
                .reports
                .get(keys::run_layer_step(run, idx, step))?
            {
                Some(v) => Some(records::decode_report(&v)?),
                None => None,
            },
        )
    }

    /// All reports of one checkpoint, in layer index (first-seen) order.
    pub fn layers_at(&self, run: &str, step: u64) -> Result<Vec<LayerReport>> {
        let Some(row) = self
            .open_db()?
            .t
            .phase_rows
            .get(keys::run_step(run, step))?
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (idx, &code) in row.iter().enumerate() {
            if code == ABSENT {
                continue;
            }
            let v = self
                .open_db()?
                .t
                .reports
                .get(keys::run_layer_step(run, idx as u32, step))?
                .ok_or(Error::Corrupt {
                    tree: "reports",
                    detail: format!("missing layer {idx} of {run}@{step}"),
                })?;
            out.push(records::decode_report(&v)?);
        }
        Ok(out)
    }

    /// The compact ESD of (run, step, layer), with its fit markers.
    pub fn esd(&self, run: &str, step: u64, layer: &str) -> Result<Option<EsdHistogram>> {
        Ok(self.layer_report(run, step, layer)?.and_then(|r| r.esd))
    }

    /// Raw eigenvalues, held only for each run's latest checkpoint and for pinned ones.
    pub fn raw_eigenvalues(&self, run: &str, step: u64, layer: &str) -> Result<Option<Vec<f64>>> {
        let Some(idx) = self.layer_index(run, layer)? else {
            return Ok(None);
        };
        Ok(
            match self
                .open_db()?
                .t
                .raw
                .get(keys::run_step_layer(run, step, idx))?
            {
                Some(v) => Some(records::decode_raw(&v)?),
                None => None,
            },
        )
    }

    /// The checkpoint stored for exactly this file identity, if any: the daemon skips such files on restart.
    pub fn find_by_identity(&self, id: &FileIdentity) -> Result<Option<CheckpointRecord>> {
        let Some(v) = self.open_db()?.t.identities.get(keys::identity(
            &id.path,
            id.size,
            id.mtime_ns,
            &id.header_hash,
        ))?
        else {
            return Ok(None);
        };
        let (run, step): (String, u64) = serde_json::from_slice(&v)?;
        self.checkpoint(&run, step)
    }

    /// Whether a file with this path, size, mtime and header hash has been analyzed already.
    pub fn is_analyzed(
        &self,
        path: &str,
        size: u64,
        mtime_ns: i128,
        header_hash: &str,
    ) -> Result<bool> {
        Ok(self.open_db()?.t.identities.contains_key(keys::identity(
            path,
            size,
            mtime_ns,
            header_hash,
        ))?)
    }
}

#[cfg(test)]
mod tests {
    use super::downsample_indices;

    #[test]
    fn downsampling_is_even_and_keeps_the_newest() {
        assert_eq!(downsample_indices(10, Some(4)), vec![0, 3, 6, 9]);
        assert_eq!(downsample_indices(3, Some(10)), vec![0, 1, 2]);
        assert_eq!(downsample_indices(5, None), vec![0, 1, 2, 3, 4]);
        assert_eq!(downsample_indices(5, Some(1)), vec![4]);
        assert_eq!(downsample_indices(5, Some(0)), Vec::<usize>::new());
        let v = downsample_indices(2000, Some(200));
        assert_eq!((v.len(), v[0], *v.last().unwrap()), (200, 0, 1999));
        assert!(v.windows(2).all(|w| w[1] > w[0]));
    }
}
