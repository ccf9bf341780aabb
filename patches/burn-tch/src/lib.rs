//! Stands in for Burn's LibTorch backend (see Cargo.toml): never compiled unless Burn's `tch` feature is enabled.

compile_error!(
    "Burn's `tch` backend is not available in the htsr workspace: its torch-sys 0.22 would conflict with the tch \
     hook's torch-sys 0.26 (see patches/burn-tch/Cargo.toml)"
);
