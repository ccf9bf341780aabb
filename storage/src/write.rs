//! One checkpoint's write, staged as one batch per tree and committed in a single sled transaction, so that a
//! crash leaves the checkpoint stored whole or not at all. Each step below stages one concern: the layers'
//! interned indices, what a rewrite replaces, which raw eigenvalues are kept, and the new records.

use std::collections::{HashMap, HashSet};

use htsr_contracts::{CheckpointRecord, CheckpointStatus, LayerReport};
use sled::transaction::{ConflictableTransactionError, Transactional};
use sled::Batch;

use crate::error::{Error, Result};
use crate::keys;
use crate::records::{self, TrajectoryPoint, ABSENT};
use crate::store::OpenDb;

/// The changes to each tree, applied together.
#[derive(Default)]
struct Batches {
    layer_ids: Batch,
    layer_names: Batch,
    checkpoints: Batch,
    identities: Batch,
    points: Batch,
    reports: Batch,
    phase_rows: Batch,
    raw: Batch,
}

/// What the raw-eigenvalue retention needs to know about the run (the caller reads it under the write lock).
pub(crate) struct Retention {
    /// The run's latest step before this write.
    pub previous_latest: Option<u64>,
    /// Whether this checkpoint is pinned.
    pub this_pinned: bool,
    /// Whether the previous latest checkpoint is pinned.
    pub previous_pinned: bool,
}

/// Writes `record` and its `layers` (and the `raw_eigenvalues` retention allows) to `db`, then flushes.
pub(crate) fn write_checkpoint(
    db: &OpenDb,
    record: &CheckpointRecord,
    layers: &[LayerReport],
    raw_eigenvalues: &[(String, Vec<f64>)],
    retention: Retention,
) -> Result<()> {
    let mut b = Batches::default();
    let index_of = intern_layers(db, &record.run, layers, &mut b)?;
    forget_replaced(db, record, &index_of, &mut b)?;
    keep_raw(db, record, &index_of, raw_eigenvalues, retention, &mut b)?;
    stage_records(record, layers, &index_of, &mut b)?;
    commit(db, &b)?;
    db.db.flush()?;
    Ok(())
}

/// Each layer's index in its run: existing indices are read; new ones are numbered after the run's highest and
/// staged.
fn intern_layers<'a>(
    db: &OpenDb,
    run: &str,
    layers: &'a [LayerReport],
    b: &mut Batches,
) -> Result<HashMap<&'a str, u32>> {
    let mut next_index = match db
        .t
        .layer_names
        .scan_prefix(keys::run_prefix(run))
        .next_back()
    {
        Some(kv) => {
            let (k, _) = kv?;
            keys::split_run(&k)
                .and_then(|(_, rest)| keys::be_u32(rest))
                .ok_or(Error::Corrupt {
                    tree: "layer_names",
                    detail: "bad key".into(),
                })?
                + 1
        }
        None => 0,
    };
    let mut index_of = HashMap::with_capacity(layers.len());
    for l in layers {
        let id = match db.t.layer_ids.get(keys::run_name(run, &l.name))? {
            Some(v) => keys::be_u32(&v).ok_or(Error::Corrupt {
                tree: "layer_ids",
                detail: "bad value".into(),
            })?,
            None => {
                let id = next_index;
                next_index += 1;
                b.layer_ids
                    .insert(keys::run_name(run, &l.name), &id.to_be_bytes());
                b.layer_names
                    .insert(keys::run_layer(run, id), l.name.as_bytes());
                id
            }
        };
        index_of.insert(l.name.as_str(), id);
    }
    Ok(index_of)
}

/// A rewrite of the same checkpoint: forgets the old identity, the layers the new version lacks and the old raw
/// eigenvalues; and drops failed records that earlier versions of the same file left under another step.
fn forget_replaced(
    db: &OpenDb,
    record: &CheckpointRecord,
    index_of: &HashMap<&str, u32>,
    b: &mut Batches,
) -> Result<()> {
    let (run, step) = (record.run.as_str(), record.step);
    let step_key = keys::run_step(run, step);
    if let Some(old) = db.t.checkpoints.get(&step_key)? {
        let old: CheckpointRecord = serde_json::from_slice(&old)?;
        let i = &old.identity;
        // The weights file and the spectra file of one step (`mode = both`) are one checkpoint: the newer
        // version replaces the other.
        if !htsr_contracts::spectra::same_checkpoint(&i.path, &record.identity.path) {
            return Err(Error::Conflict {
                run: run.to_string(),
                step,
                stored: i.path.clone(),
                new: record.identity.path.clone(),
            });
        }
        b.identities
            .remove(keys::identity(&i.path, i.size, i.mtime_ns, &i.header_hash));
    }
    forget_superseded_failures(db, record, b)?;
    if let Some(row) = db.t.phase_rows.get(&step_key)? {
        let new: HashSet<u32> = index_of.values().copied().collect();
        for (idx, &code) in row.iter().enumerate() {
            let idx = idx as u32;
            if code != ABSENT && !new.contains(&idx) {
                b.points.remove(keys::run_layer_step(run, idx, step));
                b.reports.remove(keys::run_layer_step(run, idx, step));
            }
        }
    }
    for k in db.t.raw.scan_prefix(&step_key).keys() {
        b.raw.remove(k?);
    }
    Ok(())
}

/// A failed record left by an earlier version of this same file under another (run, step) (its step was guessed
/// while the file was unreadable) is superseded by this one: drop it, or it would stay forever.
fn forget_superseded_failures(
    db: &OpenDb,
    record: &CheckpointRecord,
    b: &mut Batches,
) -> Result<()> {
    let mut path_prefix = Vec::new();
    keys::push_str(&mut path_prefix, &record.identity.path);
    for kv in db.t.identities.scan_prefix(&path_prefix) {
        let (ident_key, at) = kv?;
        let (old_run, old_step): (String, u64) = serde_json::from_slice(&at)?;
        if old_run == record.run && old_step == record.step {
            continue;
        }
        let old_key = keys::run_step(&old_run, old_step);
        let failed = match db.t.checkpoints.get(&old_key)? {
            Some(v) => {
                serde_json::from_slice::<CheckpointRecord>(&v)?.status == CheckpointStatus::Failed
            }
            None => false,
        };
        if failed {
            b.identities.remove(ident_key);
            b.checkpoints.remove(old_key.clone());
            b.phase_rows.remove(old_key);
        }
    }
    Ok(())
}

/// Raw eigenvalues are kept only for a run's latest checkpoint and pinned ones: this one's when it is either,
/// and the previous latest's are dropped when this one replaces it and it is not pinned.
fn keep_raw(
    db: &OpenDb,
    record: &CheckpointRecord,
    index_of: &HashMap<&str, u32>,
    raw_eigenvalues: &[(String, Vec<f64>)],
    retention: Retention,
    b: &mut Batches,
) -> Result<()> {
    let (run, step) = (record.run.as_str(), record.step);
    let is_latest = retention.previous_latest.is_none_or(|p| step >= p);
    if is_latest || retention.this_pinned {
        for (name, evals) in raw_eigenvalues {
            b.raw.insert(
                keys::run_step_layer(run, step, index_of[name.as_str()]),
                records::encode_raw(evals),
            );
        }
    }
    if let Some(prev) = retention.previous_latest {
        if is_latest && prev != step && !retention.previous_pinned {
            for k in db.t.raw.scan_prefix(keys::run_step(run, prev)).keys() {
                b.raw.remove(k?);
            }
        }
    }
    Ok(())
}

/// The checkpoint's own records: a trajectory point and a report per layer, the phase row, the checkpoint record
/// and its identity.
fn stage_records(
    record: &CheckpointRecord,
    layers: &[LayerReport],
    index_of: &HashMap<&str, u32>,
    b: &mut Batches,
) -> Result<()> {
    let (run, step) = (record.run.as_str(), record.step);
    let width = index_of
        .values()
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    let mut row = vec![ABSENT; width];
    for l in layers {
        let idx = index_of[l.name.as_str()];
        row[idx as usize] = records::phase_code(l.phase());
        let k = keys::run_layer_step(run, idx, step);
        b.points.insert(
            k.clone(),
            records::encode_point(&TrajectoryPoint::from_report(step, l))?,
        );
        b.reports.insert(k, records::encode_report(l)?);
    }
    let step_key = keys::run_step(run, step);
    b.phase_rows.insert(step_key.clone(), row);
    b.checkpoints.insert(step_key, serde_json::to_vec(record)?);
    let i = &record.identity;
    b.identities.insert(
        keys::identity(&i.path, i.size, i.mtime_ns, &i.header_hash),
        serde_json::to_vec(&(run, step))?,
    );
    Ok(())
}

/// Applies every batch in one transaction across the trees.
fn commit(db: &OpenDb, b: &Batches) -> Result<()> {
    let t = &db.t;
    (
        &t.layer_ids,
        &t.layer_names,
        &t.checkpoints,
        &t.identities,
        &t.points,
        &t.reports,
        &t.phase_rows,
        &t.raw,
    )
        .transaction(|(ids, names, cps, idents, pts, reps, rows, raw)| {
            ids.apply_batch(&b.layer_ids)?;
            names.apply_batch(&b.layer_names)?;
            cps.apply_batch(&b.checkpoints)?;
            idents.apply_batch(&b.identities)?;
            pts.apply_batch(&b.points)?;
            reps.apply_batch(&b.reports)?;
            rows.apply_batch(&b.phase_rows)?;
            raw.apply_batch(&b.raw)?;
            Ok::<(), ConflictableTransactionError<Error>>(())
        })?;
    Ok(())
}
