//! [`RemoteHistory`]: the history as a running daemon serves it.

use std::io::Write;

use htsr_api::wire::{Request, INFO_PATH};
use htsr_api::{
    CsvRecords, Error, History, PhaseGrid, PinOutcome, Result, RowFormat, RunSummary, ServerInfo,
    StoreStats, TrajectoryPoint,
};
use htsr_contracts::{CheckpointRecord, LayerReport};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::endpoint::Endpoint;
use crate::http;

/// A daemon's answers to every [`History`] query. Blocking: each call is one request on a runtime of its own, so
/// the dashboard's thread (or a command's) calls it as it would call the store.
pub struct RemoteHistory {
    endpoint: Endpoint,
    token: Option<String>,
    runtime: tokio::runtime::Runtime,
    info: ServerInfo,
}

impl std::fmt::Debug for RemoteHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteHistory")
            .field("endpoint", &self.endpoint)
            .field("info", &self.info)
            .finish()
    }
}

/// The runtime a blocking client drives its requests on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(Error::from)
}

/// Asks `endpoint` who it is, and checks that it speaks this client's API version.
pub(crate) async fn server_info(endpoint: &Endpoint, token: Option<&str>) -> Result<ServerInfo> {
    let response = http::send(endpoint, "GET", INFO_PATH, token).await?;
    let bytes = http::body(endpoint, response).await?;
    let info: ServerInfo = serde_json::from_slice(&bytes).map_err(|e| {
        Error::connection(format!(
            "{endpoint} does not answer as an htsr-watch daemon ({e})"
        ))
    })?;
    info.check_version(&endpoint.to_string())?;
    Ok(info)
}

impl RemoteHistory {
    /// Connects to the daemon at `endpoint`: fails when nothing answers there, when it is not an htsr daemon, when
    /// it speaks another API version (the message names both) or refuses the token.
    pub fn connect(endpoint: Endpoint, token: Option<String>) -> Result<RemoteHistory> {
        let runtime = runtime()?;
        let info = runtime.block_on(server_info(&endpoint, token.as_deref()))?;
        Ok(RemoteHistory {
            endpoint,
            token,
            runtime,
            info,
        })
    }

    /// Who answered.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// Where.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The token presented with every request.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn get<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        let target = request.target(None);
        self.runtime.block_on(async {
            let response = http::send(
                &self.endpoint,
                request.method(),
                &target,
                self.token.as_deref(),
            )
            .await?;
            let bytes = http::body(&self.endpoint, response).await?;
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::connection(format!(
                    "{}: the answer to {} does not decode: {e}",
                    self.endpoint,
                    request.name()
                ))
            })
        })
    }
}

impl History for RemoteHistory {
    fn source(&self) -> String {
        format!(
            "{} (htsr-watch daemon, pid {}, at {})",
            self.info.store, self.info.pid, self.endpoint
        )
    }

    fn runs(&self) -> Result<Vec<RunSummary>> {
        self.get(Request::Runs)
    }

    fn run_summary(&self, run: &str) -> Result<Option<RunSummary>> {
        self.get(Request::RunSummary { run: run.into() })
    }

    fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>> {
        self.get(Request::Checkpoints { run: run.into() })
    }

    fn checkpoint(&self, run: &str, step: u64) -> Result<Option<CheckpointRecord>> {
        self.get(Request::Checkpoint {
            run: run.into(),
            step,
        })
    }

    fn steps(&self, run: &str) -> Result<Vec<u64>> {
        self.get(Request::Steps { run: run.into() })
    }

    fn layer_names(&self, run: &str) -> Result<Vec<String>> {
        self.get(Request::LayerNames { run: run.into() })
    }

    fn trajectory(&self, run: &str, layer: &str) -> Result<Vec<TrajectoryPoint>> {
        self.get(Request::Trajectory {
            run: run.into(),
            layer: layer.into(),
        })
    }

    fn phase_grid(
        &self,
        run: &str,
        max_columns: Option<usize>,
        until: Option<u64>,
    ) -> Result<PhaseGrid> {
        self.get(Request::PhaseGrid {
            run: run.into(),
            max_columns,
            until,
        })
    }

    fn layer_report(&self, run: &str, step: u64, layer: &str) -> Result<Option<LayerReport>> {
        self.get(Request::LayerReport {
            run: run.into(),
            step,
            layer: layer.into(),
        })
    }

    fn layers_at(&self, run: &str, step: u64) -> Result<Vec<LayerReport>> {
        self.get(Request::LayersAt {
            run: run.into(),
            step,
        })
    }

    fn raw_eigenvalues(&self, run: &str, step: u64, layer: &str) -> Result<Option<Vec<f64>>> {
        self.get(Request::RawEigenvalues {
            run: run.into(),
            step,
            layer: layer.into(),
        })
    }

    fn stats(&self) -> Result<StoreStats> {
        self.get(Request::Stats)
    }

    fn export(&self, run: Option<&str>, format: RowFormat, out: &mut dyn Write) -> Result<u64> {
        let request = Request::Export {
            run: run.map(str::to_string),
            format,
        };
        let target = request.target(None);
        self.runtime.block_on(async {
            let response =
                http::send(&self.endpoint, "GET", &target, self.token.as_deref()).await?;
            if !response.status().is_success() {
                return Err(http::body(&self.endpoint, response)
                    .await
                    .err()
                    .unwrap_or_else(|| {
                        Error::connection(format!("{}: the export failed", self.endpoint))
                    }));
            }
            let mut body = response.into_body();
            let (mut csv, mut lines) = (CsvRecords::default(), 0u64);
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    Error::connection(format!(
                        "{}: the export was cut short ({e}); what was written is incomplete",
                        self.endpoint
                    ))
                })?;
                if let Ok(data) = frame.into_data() {
                    csv.feed(&data);
                    lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
                    out.write_all(&data)?;
                }
            }
            out.flush()?;
            Ok(match format {
                RowFormat::Csv => csv.records(),
                RowFormat::Jsonl => lines,
            })
        })
    }

    fn pin(&self, run: &str, step: u64) -> Result<PinOutcome> {
        self.get(Request::Pin {
            run: run.into(),
            step,
        })
    }

    fn unpin(&self, run: &str, step: u64) -> Result<()> {
        self.get(Request::Unpin {
            run: run.into(),
            step,
        })
    }
}
