//! The dashboard's questions, each answered from the tree laid out for it (see `store`'s table).

use htsr_api::{downsample_indices, PhaseGrid, RunSummary};

use crate::error::{Error, Result};
use crate::keys;
use crate::records::{self, TrajectoryPoint, ABSENT};
use crate::store::Store;
use htsr_contracts::{CheckpointRecord, EsdHistogram, FileIdentity, LayerReport, LayerStatus};

fn corrupt(tree: &'static str) -> Error {
    Error::Corrupt {
        tree,
        detail: "bad key".into(),
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
        let last_stored_at = self
            .checkpoint(run, last_step)?
            .map_or(0.0, |c| c.analyzed_at);
        Ok(Some(RunSummary {
            run: run.to_string(),
            last_step,
            checkpoints,
            mean_alpha: (n > 0).then(|| sum / n as f64),
            phase_counts,
            layers,
            last_stored_at,
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

    /// The record of checkpoint (run, step), or None when it is not stored.
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

    /// The layers x checkpoints phase grid of the checkpoints up to step `until` (all when None), with at most
    /// `max_columns` evenly spaced checkpoints (always including the newest). Reads one phase row per column, not
    /// one point per cell.
    pub fn phase_grid(
        &self,
        run: &str,
        max_columns: Option<usize>,
        until: Option<u64>,
    ) -> Result<PhaseGrid> {
        let layers = self.layer_names(run)?;
        let mut all = self.steps(run)?;
        if let Some(until) = until {
            all.retain(|&s| s <= until);
        }
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
