//! WeightWatcher's layer ids for a checkpoint file or folder.
//!
//! WeightWatcher 0.7.7 reads a safetensors file or a Hugging Face folder as a state dict (its
//! `WWPyStateDictLayerIterator` over `safe_open(...).keys()`, which are sorted) and numbers its layers by key:
//!
//! - the keys, in order: sorted by name within a file; in a sharded folder with an index, the shard files sorted
//!   by name, each with the keys the index maps to it in the index's order, numbered on across shards;
//! - the keys that count: those ending in `.weight` if any key does (whatever their shape: a 1-D LayerNorm
//!   weight takes an id), else every key;
//! - ids from 0 (WeightWatcher's folder start; a state dict handed over in Python starts at 1, which the Python
//!   package applies itself).
//!
//! htsr lists some tensors WeightWatcher gives no id (a 2-D tensor whose name does not end in `.weight`, beside
//! others that do): those get the ids after the last one, in the order htsr lists them.

use std::collections::HashMap;

/// WeightWatcher's id for each counted key of `keys` (in WeightWatcher's order, see the module docs).
pub fn weightwatcher_ids<'a>(keys: impl IntoIterator<Item = &'a str>) -> HashMap<String, u32> {
    let keys: Vec<&str> = keys.into_iter().collect();
    let any_weight = keys.iter().any(|k| k.ends_with(".weight"));
    keys.into_iter()
        .filter(|k| !any_weight || k.ends_with(".weight"))
        .enumerate()
        .map(|(i, k)| (k.to_string(), i as u32))
        .collect()
}

/// The id of every tensor in `listed` (htsr's listing order): WeightWatcher's where it gives one, else the ids
/// after its last, in listing order.
pub fn assign<'a>(
    ww_order: impl IntoIterator<Item = &'a str>,
    listed: impl IntoIterator<Item = &'a str>,
) -> Vec<u32> {
    let ids = weightwatcher_ids(ww_order);
    let mut next = ids.values().max().map_or(0, |m| m + 1);
    listed
        .into_iter()
        .map(|t| match ids.get(t) {
            Some(&id) => id,
            None => {
                next += 1;
                next - 1
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_weight_keys_count_when_there_are_any_and_the_rest_follow() {
        // MiniLM's first keys, sorted as safe_open lists them.
        let keys = [
            "embeddings.LayerNorm.bias",
            "embeddings.LayerNorm.weight",
            "embeddings.position_embeddings.weight",
            "embeddings.position_ids",
            "embeddings.token_type_embeddings.weight",
            "embeddings.word_embeddings.weight",
            "encoder.layer.0.attention.output.LayerNorm.weight",
            "encoder.layer.0.attention.output.dense.weight",
        ];
        let ids = weightwatcher_ids(keys);
        assert_eq!(ids["embeddings.LayerNorm.weight"], 0);
        assert_eq!(ids["embeddings.word_embeddings.weight"], 3);
        assert_eq!(ids["encoder.layer.0.attention.output.dense.weight"], 5);
        assert!(!ids.contains_key("embeddings.position_ids"));
        let listed = [
            "encoder.layer.0.attention.output.dense.weight",
            "proj",
            "embeddings.word_embeddings.weight",
        ];
        assert_eq!(assign(keys, listed), vec![5, 6, 3]);
    }

    #[test]
    fn without_weight_keys_every_key_counts() {
        let ids = weightwatcher_ids(["a", "b", "c.bias"]);
        assert_eq!((ids["a"], ids["b"], ids["c.bias"]), (0, 1, 2));
    }
}
