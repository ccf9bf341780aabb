// The examples need the same run path to libtorch as the hook's own binaries: one build script serves both.
include!("../tch-hook/build.rs");
